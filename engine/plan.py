"""Query plans: the plaintext steps at each owner and the secure step that combines them.

Two shapes, both plain data so that every party computes the same plan from the same SQL
and catalog and can compare digests:

- :class:`QueryPlan` — an aggregate over one relation (a dataset, or a UNION ALL of
  datasets held by several agencies). Each owner runs a :class:`Scan` in plaintext —
  filter, group, and compute per group the *components* of every :class:`Measure` (counts,
  sums and sums of squares and products of values scaled to integers by ``10**decimals``;
  an order statistic's exact fraction) — and MPC sums the components and releases cells.
- :class:`JoinPlan` — an aggregate over an inner join of two or three datasets held by
  different agencies on one key. Each owner filters and aggregates its rows per key
  (:class:`JoinScan`); a private join aligns the per-key columns onto a hub's rows without
  revealing which rows matched; MPC sums products of aligned columns into the same
  components, and releases cells exactly as for a :class:`QueryPlan`.

Every released cell is an exact fraction of those components (:mod:`engine.cells`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

from engine.labels import Label
from engine.sql.query import Aggregate

# The totals a measure may need, in this order: count, sum, sum of squares, the rest of a
# pair's sums, and for the dominance rule the sum of absolute values and the top-n sum.
COMPONENT_ORDER = ("n", "s", "q", "sy", "syy", "sxy", "a", "t")


@dataclass(frozen=True)
class Measure:
    """What aggregates need from the data, as components (a subset of COMPONENT_ORDER).

    - ``column`` None: COUNT(*), components ("n",);
    - one column: "n" non-null count, "s" sum, "q" sum of squares;
    - a pair (``column`` is y, ``second`` is x; rows where both are present): "n", "s"
      (sum of x), "q" (of x²), "sy", "syy", "sxy";
    - an order statistic (``order`` is "min", "max" or "quantile" with ``fraction``
      (a, b) = q): "n", and its exact value as "s" / "q";
    - ``dominance`` (n, k) on a SUM or AVG's column adds "a" (Σ|v|) and "t" (the sum of
      the n largest |v|, an upper bound over several owners: the sum of their own tops);
    - ``distinct``: COUNT(DISTINCT column) over one dataset, "n" the owner's count of the
      column's distinct non-NULL values (also what the minimum group size applies to).
    """

    column: str | None
    components: tuple[str, ...]
    decimals: int
    second: str | None = None
    second_decimals: int = 0
    order: str | None = None
    fraction: tuple[int, int] | None = None
    dominance: tuple[int, int] | None = None
    distinct: bool = False  # "n" counts the column's distinct values (one owner's rows)

    @property
    def counted_only(self) -> bool:
        """Whether only the column's non-NULL rows are counted (COUNT(col) of any type).

        Such a column is read as it is, never scaled: it may be text or boolean, and a
        scale of its own would differ from the column's scale in other measures.
        """
        return self.column is not None and self.second is None and self.components == ("n",)


@dataclass(frozen=True)
class NoisyTotal:
    """A total released with differential-privacy noise (release mode dp).

    The noise is discrete Laplace with parameter alpha = exp(-epsilon / sensitivity) in the
    total's integer units (values scaled by 10**decimals), generated inside MPC.
    """

    measure: int
    component: str  # "n" or "s"
    sensitivity: int  # how much one row can change the total (scaled units)
    epsilon: float  # this total's share of the query's epsilon


@dataclass(frozen=True)
class Charge:
    """The epsilon a dp query charges to one dataset's budget (kept on the ledger)."""

    owner: str
    dataset: str
    epsilon: float
    analyst_budget: float
    budget: float


@dataclass(frozen=True)
class Scan:
    """The plaintext step at one owner over one of its datasets.

    ``group_sql`` are DuckDB expressions over the dataset's own columns (a UNION ALL
    branch may rename them), ``measure_columns`` the dataset columns (column, second) of
    each measure (None for one over an expression: ``measure_sql``), ``filter_sql`` a
    DuckDB predicate.
    """

    party: str
    dataset: str
    filter_sql: str | None
    group_sql: tuple[str, ...]
    measure_columns: tuple[tuple[str | None, str | None], ...]
    # per measure: the DuckDB row expression it aggregates (AVG(wage * 12)), or None
    measure_sql: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Output:
    """An output column: a group key (``group``) or an aggregate of ``measure``."""

    name: str
    group: int | None
    function: Aggregate | None
    measure: int | None


@dataclass(frozen=True)
class _Common:
    """Fields every plan has."""

    group_names: tuple[str, ...]
    measures: tuple[Measure, ...]
    outputs: tuple[Output, ...]
    min_group_size: int
    order_by: tuple[tuple[int, bool], ...]
    limit: int | None
    having: str  # JSON of the HAVING condition on outputs (see engine.having), "" for none
    groups: tuple[Label, ...]  # every public label of the result (engine.sql.domains)
    release: str  # "exact" or "dp"
    noisy: tuple[NoisyTotal, ...]  # dp: per group, the totals released with noise
    charges: tuple[Charge, ...]  # dp: what the query costs each dp dataset's budget

    @property
    def components_per_group(self) -> int:
        return sum(len(m.components) for m in self.measures)

    def component_index(self, group: int, measure: int, component: str) -> int:
        """Return the position of one component in the flat per-query total vector."""
        offset = group * self.components_per_group
        offset += sum(len(m.components) for m in self.measures[:measure])
        return offset + self.measures[measure].components.index(component)

    def aggregate_outputs(self) -> tuple[Output, ...]:
        return tuple(o for o in self.outputs if o.function is not None)

    def to_json(self) -> dict[str, object]:
        body = asdict(self)
        body["kind"] = type(self).__name__
        return dict(body)

    def digest(self) -> str:
        """Return a hex SHA-256 of the canonical plan: equal plans have equal digests."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        body = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class QueryPlan(_Common):
    """An aggregate over one dataset or a UNION ALL of datasets."""

    scans: tuple[Scan, ...] = ()

    @property
    def parties(self) -> tuple[str, ...]:
        """Return the owners whose data the plan reads, in first-use order."""
        seen: dict[str, None] = {}
        for scan in self.scans:
            seen.setdefault(scan.party, None)
        return tuple(seen)


@dataclass(frozen=True)
class JoinColumn:
    """A per-key column an owner computes for a join: a DuckDB aggregate over its rows."""

    name: str
    sql: str
    grouped: bool  # computed per group label of this owner's group keys
    bits: int = 0  # |value| < 2**bits times the key's row count (0: a count or a 0/1 flag)


@dataclass(frozen=True)
class JoinScan:
    """One owner's plaintext step for a join: filter, aggregate per key, label groups.

    ``group_slots`` are the positions (in the query's group keys) of the keys this owner
    computes, with ``group_sql`` their DuckDB expressions.
    """

    party: str
    dataset: str
    alias: str
    key: str
    filter_sql: str | None
    group_slots: tuple[int, ...]
    group_sql: tuple[str, ...]
    value_sql: tuple[tuple[str, str], ...]  # (name, scaled BIGINT expression) per value
    columns: tuple[JoinColumn, ...]
    one_row_per_key: bool = False  # a cross-agency condition or an order statistic reads
    # this owner's row values
    order_sql: tuple[str, ...] = ()  # per-key values of order statistics (the hub's; kept
    # in plaintext at the owner, never secret-shared as columns)
    tops: tuple[tuple[int, str, int], ...] = ()  # dominance: (measure, value alias, n) whose
    # top-n sum of |value| per own group label (or overall) the owner inputs


@dataclass(frozen=True)
class JoinOrder:
    """Order statistics over a join of one value column of the hub (its owner).

    ``value`` is the index of the column's per-key values in the hub's ``order_sql``,
    ``count`` the hub's per-key column counting them (0 or 1: the value is not NULL),
    ``measures`` the plan's measures computed from it (each "min", "max" or "quantile").
    """

    value: int
    count: int
    measures: tuple[int, ...]


@dataclass(frozen=True)
class JoinPlan(_Common):
    """An aggregate over an inner join on one key; the first scan is the hub.

    ``terms[k]`` says, for component k of the per-group total vector (measure by measure
    as in :meth:`component_index`), which column of each scan multiplies into it. An order
    statistic's "n" is such a sum (the joined rows with a value); its "s" and "q" (the exact
    value as a fraction) come from the secure order statistics of ``orders`` instead.
    """

    scans: tuple[JoinScan, ...] = ()
    terms: tuple[tuple[int, ...], ...] = ()
    row_filter: str = ""  # JSON formula on per-key columns of several owners (cross_filter)
    orders: tuple[JoinOrder, ...] = ()

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(scan.party for scan in self.scans)


Plan = QueryPlan | JoinPlan
