"""The MPC job of a batch of queries, as plain data shared by the daemon and the worker.

A batch runs as one MPC job so that many small queries share the rounds of one secure
computation. Every party builds the same :class:`MpcJob` from the same batch (the layout
depends only on the plans and the agreed group domains) and supplies its own private
input vector; the worker returns this party's Shamir shares of the released cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.cells import DOMINANCE_BITS, CellKind, field_bits
from engine.plan import COMPONENT_ORDER

COMPONENTS = COMPONENT_ORDER  # the totals a cell may use, in this order
COMPARE_BITS = 63 + 2  # comparisons of two agencies' scaled values (|v| < 2**63) in a join


@dataclass(frozen=True)
class CellProgram:
    """The released cells of a batch: per cell its kind and where its totals are.

    ``totals[i]`` gives, for cell i, the position of each of COMPONENTS in the job's total
    vector (-1 where the kind does not use it): n the count; s and q the sum and sum of
    squares of a column (sx and sxx of a pair, v and w of an order statistic's fraction);
    sy, syy and sxy the rest of a pair's sums; a and t the sum of absolute values and the
    top-n sum for the dominance rule. ``min_size[i]`` 0 releases the cell whatever its
    count (dp); ``dominance[i]`` k > 0 suppresses it when 100·t > k·a.
    """

    kinds: tuple[CellKind, ...]
    totals: tuple[tuple[int, ...], ...]
    min_size: tuple[int, ...]
    dominance: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.kinds)


def cells_field_bits(cells: CellProgram) -> int:
    """Return the secure integers' bit length for a cell program: room for every fraction
    and, with a dominance rule, for its comparison."""
    bits = field_bits(set(cells.kinds))
    if any(cells.dominance):
        bits = max(bits, DOMINANCE_BITS + 1)
    return bits


@dataclass(frozen=True)
class MpcJob:
    """One secure computation: sum the parties' inputs, release the cells.

    Every party inputs ``input_length`` partial totals (summed) and one 0/1 per cell, its
    say on the cell's release (multiplied: any owner's 0 suppresses the cell).
    """

    job_id: str
    field_bits: int
    input_length: int
    cells: CellProgram


@dataclass(frozen=True)
class JobResult:
    """This party's shares of the released cells: numerators, denominators, flags.

    ``x`` is this party's Shamir evaluation point (index + 1). A flag share reconstructs
    to 0 when a cell is suppressed and to a random non-zero value otherwise.
    """

    job_id: str
    modulus: int
    x: int
    num: tuple[int, ...]
    den: tuple[int, ...]
    flag: tuple[int, ...]
    sign: tuple[int, ...]  # non-zero where a CORR cell is negative (0 elsewhere)
    overlap: OverlapRecord | None = None  # a join under overlap control: what to keep


@dataclass(frozen=True)
class JoinOverlap:
    """Overlap control of one join job (:mod:`engine.mpc._join_overlap`).

    ``minimum`` is m (a cell differing from a kept row set by 1..m − 1 keys is withheld),
    ``window`` W the kept row sets compared. ``sketches`` are the distinct count terms of
    the cells (a hub column and each spoke's column, as in ``JoinJob.terms``),
    ``bits[s]`` a bound on the bits of sketch s's spoke factor, ``sizes[s]`` its cells'
    minimum group size, ``cell_sketch[c]`` the sketch of cell c.
    """

    minimum: int
    window: int
    sketches: tuple[tuple[int, ...], ...]
    bits: tuple[int, ...]
    sizes: tuple[int, ...]
    cell_sketch: tuple[int, ...]

    @property
    def terms(self) -> int:
        return 2 * self.minimum - 1


@dataclass(frozen=True)
class OverlapWindow:
    """A party's kept join row sets, oldest first: per row its tag, its power-sum terms
    and this party's shares of them (in the field of ``modulus``)."""

    modulus: int
    tags: tuple[int, ...] = ()
    rows: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class OverlapRecord:
    """What a join job under overlap control hands back to keep: this party's shares of
    each cell sketch times its released bit (tags in ``tags``), and the tags of the kept
    rows that every party held (``agreed``; ``complete`` false when some party lacked one)."""

    modulus: int
    tags: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]
    agreed: tuple[int, ...]
    complete: bool


@dataclass(frozen=True)
class JobFailure:
    """The worker could not finish a job; ``reason`` names what failed (no data).

    ``lost_party`` is the index of the party whose MPC link dropped (-1: another cause);
    the daemon names that party to the analyst.
    """

    job_id: str
    reason: str
    lost_party: int = -1


@dataclass(frozen=True)
class SessionReady:
    """Sent once by the worker when all MPC links are up."""

    epoch: int
    modulus_hint: int = 0


@dataclass(frozen=True)
class OrderJob:
    """Order statistics of one value column of the join's hub (:mod:`engine.mpc._order`).

    A joined row's weight is the sum of the hub's ``hub_weight`` columns (its count of
    values) times, per spoke, its ``spoke_weight`` column (None for the grouping spoke) and
    the row filter. Groups are the hub's own labels (``labels`` of them), or the grouping
    spoke's per-group count columns ``group_columns``, or none. ``requests`` are
    (kind, a, b) with q = a/b; ``slots[g][r]`` the positions in the job's total vector of
    request r's numerator and denominator in group g.
    """

    value: int
    hub_weight: tuple[int, ...]
    spoke_weight: tuple[int | None, ...]
    group_columns: tuple[int, ...]
    labels: int
    requests: tuple[tuple[str, int, int], ...]
    slots: tuple[tuple[tuple[int, int], ...], ...]
    count_bits: int


@dataclass(frozen=True)
class JoinJob:
    """One query over a private join: align the owners' per-key columns, sum products, release.

    The join and the sums run in a field of ``join_bits`` (enough for every total); the
    totals are converted to the field of ``field_bits`` when the cells need a larger one.

    ``spokes`` are (owner index, helper index, width); ``terms[t]`` gives, for total t, the
    column of the hub and of each spoke whose product is summed over the aligned rows.
    ``noise`` is (dummies D, ε numerator, ε denominator) for the helpers' noisy counts.
    """

    job_id: str
    field_bits: int  # the field of the released cells
    join_bits: int  # the (smaller) field of the join and its sums
    hub: int
    hub_width: int
    spokes: tuple[tuple[int, int, int], ...]
    padded_length: int
    noise: tuple[int, int, int]
    terms: tuple[tuple[int, ...], ...]
    cells: CellProgram
    row_filter: str = ""  # JSON formula over side columns (engine.cross_filter), "" for none
    orders: tuple[OrderJob, ...] = ()
    # totals that are the sum of the parties' extra inputs (JoinInput.extras) instead of a
    # sum of products; the extras are added to every other total
    from_extras: tuple[int, ...] = ()
    noisy: bool = False  # dp: every party inputs noise for the noisy totals as extras
    overlap: JoinOverlap | None = None  # exact mode with overlap control


@dataclass(frozen=True)
class JoinInput:
    """This party's side of a join: per key, its columns (None: no side in this join).

    The hub of a join with order statistics also has, per key, its values of each order
    column (``values``, 0 for none) and its group label's index (``labels``); they stay at
    the hub, which inputs them to the order statistics in the joined order.
    """

    keys: tuple[bytes, ...]
    columns: tuple[tuple[int, ...], ...]
    values: tuple[tuple[int, ...], ...] = ()
    labels: tuple[int, ...] = ()
    extras: tuple[int, ...] = ()  # one per total of the job, added (see JoinJob.from_extras)
    identities: tuple[int, ...] = ()  # the hub's, per key: its overlap identity
