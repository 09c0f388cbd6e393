"""How a planned query's cells may be released: the owners' disclosure rules, at plan time.

Every rule here is decided from the plan and the published catalogue alone, before any row
is read, so that no refusal depends on data:

- *release mode*: a query reading any dataset whose owner chose ``release = "dp"`` is
  released under differential privacy; otherwise exactly (``exact``, the default);
- *exact*: SUM and AVG cells of a column whose dataset has a dominance rule (n, k) carry the
  components the rule needs (:class:`engine.plan.Measure`); MIN, MAX and quantiles only on
  columns whose owner allows order statistics;
- *dp*: only COUNT, SUM and AVG; every total a cell needs gets discrete-Laplace noise inside
  MPC with the query's epsilon split evenly over the noisy totals of a group (groups are
  disjoint: parallel composition); the epsilon charged to each dp dataset's budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.catalog import ColumnInfo, DatasetInfo
from engine.config import ReleaseMode
from engine.errors import PolicyError, UnsupportedError
from engine.plan import Charge, Measure, NoisyTotal, Output
from engine.sql.query import Aggregate

DP_AGGREGATES = frozenset({Aggregate.COUNT, Aggregate.SUM, Aggregate.AVG})


def release_mode(datasets: Sequence[DatasetInfo]) -> ReleaseMode:
    """Return dp if any dataset read is released under differential privacy."""
    if any(d.release is ReleaseMode.DP for d in datasets):
        return ReleaseMode.DP
    return ReleaseMode.EXACT


def check_order_statistic(
    function: Aggregate, sources: Sequence[tuple[DatasetInfo, ColumnInfo]]
) -> None:
    """Raise PolicyError unless every dataset allows order statistics of the column
    (UnsupportedError when a dataset is released under differential privacy)."""
    dp = sorted(d.qualified_name for d, _ in sources if d.release is ReleaseMode.DP)
    if dp:
        raise UnsupportedError(
            f"not supported with release mode dp ({', '.join(dp)}): "
            f"{function.value.upper()}; want COUNT, SUM or AVG"
        )
    for dataset, info in sources:
        if not info.order_statistics:
            raise PolicyError(
                f"policy: {function.value.upper()}({info.name}) on {dataset.qualified_name}: "
                f"column {info.name!r} does not allow order statistics (an exact MIN, MAX or "
                "quantile is one person's value); want order_statistics = true in its policy"
            )


def dominance_of(datasets: Sequence[DatasetInfo]) -> tuple[int, int] | None:
    """Return the strictest (n, k) dominance rule among the datasets (None if none has one)."""
    rules = [d.dominance for d in datasets if d.dominance is not None]
    if not rules:
        return None
    return max(r.n for r in rules), min(r.k for r in rules)


def check_dp(
    outputs: Sequence[Output], datasets: Sequence[DatasetInfo], join_keys_unique: bool
) -> None:
    """Raise UnsupportedError or PolicyError for what release mode dp cannot answer."""
    names = ", ".join(sorted(d.qualified_name for d in datasets if d.release is ReleaseMode.DP))
    for output in outputs:
        if output.function is not None and output.function not in DP_AGGREGATES:
            raise UnsupportedError(
                f"not supported with release mode dp ({names}): {output.function.value.upper()};"
                " want COUNT, SUM or AVG"
            )
    if not join_keys_unique:
        raise PolicyError(
            f"policy: a join over dp data ({names}) needs one row per key in every joined "
            "dataset (so that one row changes one joined row), got a join key that repeats"
        )


def noisy_totals(
    measures: Sequence[Measure],
    outputs: Sequence[Output],
    sensitivity_of: Sequence[int],
    epsilon: float,
) -> tuple[NoisyTotal, ...]:
    """Return the totals to noise, each with its sensitivity and share of ``epsilon``.

    ``sensitivity_of[i]`` is how much one row changes measure i's sum (its column's largest
    absolute value, scaled); a count changes by one.
    """
    wanted: list[tuple[int, str]] = []
    for output in outputs:
        if output.function is None or output.measure is None:
            continue
        components = {
            Aggregate.COUNT: ("n",),
            Aggregate.SUM: ("s",),
            Aggregate.AVG: ("n", "s"),
        }[output.function]
        for component in components:
            if (output.measure, component) not in wanted:
                wanted.append((output.measure, component))
    share = epsilon / len(wanted) if wanted else epsilon
    return tuple(
        NoisyTotal(m, c, 1 if c == "n" else max(1, sensitivity_of[m]), share) for m, c in wanted
    )


def scaled_bound(bounds: tuple[float, float] | None, decimals: int) -> int:
    """Return the largest |value·10^decimals| a column's declared bounds allow."""
    assert bounds is not None, "a dp aggregate column without bounds (config checks it)"
    largest: float = max(abs(bounds[0]), abs(bounds[1])) * 10**decimals
    return math.ceil(largest)


def query_epsilon(datasets: Sequence[DatasetInfo]) -> float:
    """Return a dp query's epsilon: the smallest epsilon_per_query of its dp datasets."""
    return min(d.budget.epsilon_per_query for d in datasets if d.budget is not None)


def charges(datasets: Sequence[DatasetInfo], epsilon: float) -> tuple[Charge, ...]:
    """Return what a dp query charges each dp dataset it reads (once per dataset)."""
    seen: dict[str, Charge] = {}
    for d in datasets:
        if d.release is ReleaseMode.DP and d.budget is not None:
            seen.setdefault(
                d.qualified_name,
                Charge(d.owner, d.name, epsilon, d.budget.analyst_budget, d.budget.budget),
            )
    return tuple(seen.values())
