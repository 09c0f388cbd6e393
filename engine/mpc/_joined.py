"""The secure step of a join query: private join, sums of products, exact cells.

Run inside the MPC worker (which passes MPyC's runtime in). The owners' per-key columns are
aligned onto the hub's rows by the helper-aligned private join (:mod:`engine.mpc._join`),
without revealing which rows matched. Each total is a sum over the aligned rows of the
product of one hub column and one column of each spoke: with two spokes, their columns are
first multiplied row by row (one round); then every total is an entry of a matrix product
of the hub's columns with the spokes' (local products, one resharing for all). The totals
are released as cells exactly as for a single dataset (:mod:`engine.mpc._release`). See
docs/join-protocol.md, "How the engine computes on the aligned rows".
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from fractions import Fraction
from typing import Any, Literal, cast

import numpy as np

from engine.cells import VALUE_BITS
from engine.mpc._join import JoinNoise, JoinSide, Spoke, star_join
from engine.mpc._join_field import secure_array
from engine.mpc._join_overlap import OVERLAP_BITS, convert_small, join_overlap
from engine.mpc._order import GroupColumns, GroupLabels, OrderRequest, order_statistics
from engine.mpc._release import PowerPool, _Shares, release_cells
from engine.mpc.job import COMPARE_BITS, JobResult, JoinInput, JoinJob, OrderJob, OverlapWindow

OrderKind = Literal["min", "max", "quantile"]

log = logging.getLogger(__name__)


async def run_join_job(
    mpc: Any,
    secint: Any,
    job: JoinJob,
    inputs: tuple[JoinInput | None, tuple[int, ...]]
    | tuple[JoinInput | None, tuple[int, ...], OverlapWindow | None],
    pool: PowerPool | None,
    join_type: Any = None,
) -> JobResult:
    """Run ``job`` with this party's side (None if it owns no table of the join), its
    extra inputs, one per total (dominance tops, dp noise; see JoinJob.from_extras), and,
    under overlap control, its kept join row sets (:mod:`engine.mpc._join_overlap`).

    ``secint`` is the cells' secure type, ``join_type`` the join's (default: the same).
    """
    side, extras = inputs[0], inputs[1]
    window = inputs[2] if len(inputs) > 2 else None
    cells_type = secint
    secint = join_type or secint
    field = secint.field
    p = field.order
    began = time.perf_counter()
    dummies, numerator, denominator = job.noise
    my_side = None
    if side is not None:
        my_side = JoinSide(keys=list(side.keys), columns=[list(c) for c in side.columns])
    star = await star_join(
        mpc,
        secint,
        hub=job.hub,
        hub_width=job.hub_width,
        spokes=[Spoke(owner=o, helper=h, width=w) for o, h, w in job.spokes],
        my_side=my_side,
        padded_length=job.padded_length,
        noise=JoinNoise(dummies=dummies, epsilon=Fraction(numerator, denominator)),
        agreed=_overlap_terms(job),
    )
    joined = time.perf_counter()
    hub = [(await mpc.gather(c)).value for c in star.hub_columns]
    spokes = [[(await mpc.gather(c)).value for c in s.columns] for s in star.spokes]
    arithmetic = _Shares(mpc, field)
    join_bits = p.bit_length()

    # Right-hand factors: a spoke's column, or the row-wise product of two spokes' columns.
    rights: list[tuple[int, ...]] = sorted({t[1:] for t in job.terms})
    vectors: dict[tuple[int, ...], Any] = {}
    if len(job.spokes) == 1:
        vectors = {r: spokes[0][r[0]] for r in rights}
    else:
        products = await arithmetic.products(*((spokes[0][r[0]], spokes[1][r[1]]) for r in rights))
        vectors = dict(zip(rights, products, strict=True))
    keep = None
    if job.row_filter:
        # A WHERE condition on several agencies' columns: a 0/1 value per aligned row.
        sides = [hub, *spokes]
        keep = await _row_filter(mpc, secint, arithmetic, json.loads(job.row_filter), sides)
        filtered = await arithmetic.products(*((vectors[r], keep) for r in rights))
        vectors = dict(zip(rights, filtered, strict=True))
    lefts = sorted({t[0] for t in job.terms})
    left = np.stack([hub[a] for a in lefts])
    right = np.stack([vectors[r] for r in rights])
    local = np.dot(left, right.T) % p  # degree-2 shares of every Σ hub·right
    sums = (await arithmetic.reshare(local.ravel())).reshape(local.shape)
    totals = np.array(
        [sums[lefts.index(t[0]), rights.index(t[1:])] for t in job.terms], dtype=object
    )
    if job.from_extras or job.noisy:
        totals = await _add_extras(mpc, secint, job, extras, totals)
    overlapped = time.perf_counter()
    withhold = record = None
    if job.overlap is not None:
        withhold, record = await join_overlap(
            mpc, secint, job, side, star.hub_rows, vectors, window
        )
    ordered = time.perf_counter()
    for order in job.orders:
        await _order_statistics(
            mpc,
            secint,
            arithmetic,
            job,
            order,
            side,
            star.hub_rows,
            hub,
            spokes,
            keep,
            totals,
            vectors,
        )

    if cells_type is not secint:
        # The cells need a larger field (CORR, REGR_R2, ...): convert the few totals.
        converted = mpc.convert([secint(field(int(v))) for v in totals], cells_type)
        totals = np.array([v.value for v in await mpc.gather(converted)], dtype=object)
        secint = cells_type
        field = secint.field
        p = field.order
    summed = time.perf_counter()
    m = len(job.cells)
    own = np.array([secrets.randbelow(p - 1) + 1 for _ in range(3 * m)], dtype=object)
    shared = mpc.input(secint.array(own), senders=list(range(len(mpc.parties))))
    parts = await mpc.gather(shared)
    masks = sum((part.value for part in parts[1:]), parts[0].value) % p
    allowed = None
    if job.overlap is not None and withhold is not None:
        overlap_type = mpc.SecInt(OVERLAP_BITS)
        bits = await convert_small(mpc, overlap_type, secint, withhold, 1)
        allowed = (1 - bits[np.array(job.overlap.cell_sketch, dtype=int)]) % p
    checked = time.perf_counter()
    released = await release_cells(
        mpc, secint, job.cells, totals, masks.reshape(3, m), pool, allowed=allowed
    )
    log.info(
        "join job %s: N=%d, %d+%s columns, %d totals, %d-bit join field, %d-bit cells field: "
        "join %.2f s, sums %.2f s, overlap %.2f s, order statistics %.2f s, release %.2f s",
        job.job_id,
        job.padded_length,
        job.hub_width,
        [w for _, _, w in job.spokes],
        len(job.terms),
        join_bits,
        p.bit_length(),
        joined - began,
        overlapped - joined,
        ordered - overlapped + checked - summed,
        summed - ordered,
        time.perf_counter() - checked,
    )
    return JobResult(job.job_id, p, mpc.pid + 1, *released, overlap=record)


def _overlap_terms(job: JoinJob) -> str:
    """Return the public overlap parameters every party must hold equal ("" for none)."""
    control = job.overlap
    if control is None:
        return ""
    return f"overlap m={control.minimum} W={control.window} field={OVERLAP_BITS}"


async def _add_extras(
    mpc: Any, secint: Any, job: JoinJob, extras: tuple[int, ...], totals: Any
) -> Any:
    """Add every party's extra inputs to the totals (each party inputs one per total):
    the totals in ``job.from_extras`` become the extras' sum (an owner's dominance tops),
    the others get it added (noise)."""
    p = secint.field.order
    own = list(extras) or [0] * len(totals)
    if len(own) != len(totals):
        raise ValueError(f"extras: got {len(own)}, want one per total ({len(totals)})")
    shared = mpc.input(
        secint.array(np.array([v % p for v in own], dtype=object)),
        senders=list(range(len(mpc.parties))),
    )
    parts = await mpc.gather(shared)
    extras = sum((part.value for part in parts[1:]), parts[0].value) % p
    out = (totals + extras) % p
    for index in job.from_extras:
        out[index] = extras[index]
    return out


async def _order_statistics(
    mpc: Any,
    secint: Any,
    arithmetic: _Shares,
    job: JoinJob,
    order: OrderJob,
    side: JoinInput | None,
    hub_rows: Any,
    hub: list[Any],
    spokes: list[list[Any]],
    keep: Any,
    totals: Any,
    rights: dict[tuple[int, ...], Any],
) -> None:
    """Compute one value column's order statistics; put each exact fraction in ``totals``.

    A joined row's weight is the product of its owners' counts (and the row filter); the
    hub inputs its values, and its labels, in the joined order (``hub_rows``, hub only).
    ``rights`` are the sums' right-hand factors: the spokes' product (with the row filter)
    is usually one of them already.
    """
    weight = sum((hub[c] for c in order.hub_weight[1:]), hub[order.hub_weight[0]]) % arithmetic.p
    counts = tuple(order.spoke_weight)
    if None not in counts and counts in rights:
        factors = [rights[counts]]  # type: ignore[index]
    else:
        factors = [spokes[s][c] for s, c in enumerate(counts) if c is not None]
        factors += [] if keep is None else [keep]
    for factor in factors:
        (weight,) = await arithmetic.products((weight, factor))
    grouping: GroupColumns | GroupLabels | None = None
    if order.group_columns:
        owner = order.spoke_weight.index(None)
        grouping = GroupColumns(
            [secure_array(secint, spokes[owner][c]) for c in order.group_columns]
        )
    elif order.labels:
        labels = None
        if hub_rows is not None and side is not None:
            labels = [side.labels[r] if r >= 0 else 0 for r in hub_rows]
        grouping = GroupLabels(order.labels, labels)
    values = None
    if hub_rows is not None and side is not None:
        column = side.values[order.value]
        values = [column[r] if r >= 0 else 0 for r in hub_rows]
    result = await order_statistics(
        mpc,
        secint,
        owner=job.hub,
        weights=secure_array(secint, weight),
        groups=grouping,
        my_values=values,
        requests=[
            OrderRequest(cast(OrderKind, kind), Fraction(a, b)) for kind, a, b in order.requests
        ],
        value_bits=VALUE_BITS,
        count_bits=order.count_bits,
    )
    numerators = (await mpc.gather(result.numerators)).value
    for g, slots in enumerate(order.slots):
        for r, (numerator, denominator) in enumerate(slots):
            totals[numerator] = int(numerators[g, r])
            totals[denominator] = result.denominators[r]  # public: every share is b


async def _row_filter(
    mpc: Any, secint: Any, arithmetic: _Shares, node: list[Any], sides: list[list[Any]]
) -> Any:
    """Return shares of the formula's 0/1 value on every aligned row (engine.cross_filter)."""
    p = arithmetic.p
    kind = node[0]
    if kind == "bit":
        return sides[node[1]][node[2]]
    if kind == "not":
        return (1 - await _row_filter(mpc, secint, arithmetic, node[1], sides)) % p
    if kind in ("and", "or"):
        left = await _row_filter(mpc, secint, arithmetic, node[1], sides)
        right = await _row_filter(mpc, secint, arithmetic, node[2], sides)
        (both,) = await arithmetic.products((left, right))
        return both if kind == "and" else (left + right - both) % p
    op, (sx, vx, px), (sy, vy, py) = node[1], node[2], node[3]
    x, y = sides[sx][vx], sides[sy][vy]

    async def less(a: Any, b: Any) -> Any:  # [a < b], one secure comparison per row
        diff = secure_array(secint, (a - b) % p)
        return (await mpc.gather(mpc.np_sgn(diff, l=COMPARE_BITS, LT=True))).value % p

    if op in ("=", "<>"):
        below, above = await less(x, y), await less(y, x)
        value = (below + above) % p if op == "<>" else (1 - below - above) % p
    elif op in ("<", ">="):
        value = await less(x, y)
        value = value if op == "<" else (1 - value) % p
    else:  # ">" or "<="
        value = await less(y, x)
        value = value if op == ">" else (1 - value) % p
    (present,) = await arithmetic.products((sides[sx][px], sides[sy][py]))
    (result,) = await arithmetic.products((value, present))  # NULL on either side: false
    return result
