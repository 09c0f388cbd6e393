"""The parsed form of an analyst's query, before columns are resolved against the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from sqlglot import exp


class Aggregate(StrEnum):
    """An aggregate function the engine computes securely."""

    COUNT = "count"  # COUNT(*) when the argument is None
    SUM = "sum"
    AVG = "avg"
    VAR_SAMP = "var_samp"
    VAR_POP = "var_pop"
    STDDEV_SAMP = "stddev_samp"
    STDDEV_POP = "stddev_pop"
    MIN = "min"
    MAX = "max"
    MEDIAN = "median"
    QUANTILE_CONT = "quantile_cont"
    COVAR_POP = "covar_pop"
    COVAR_SAMP = "covar_samp"
    CORR = "corr"
    REGR_SLOPE = "regr_slope"
    REGR_INTERCEPT = "regr_intercept"
    REGR_R2 = "regr_r2"
    REGR_COUNT = "regr_count"

    @property
    def bivariate(self) -> bool:
        return self in BIVARIATE

    @property
    def order_statistic(self) -> bool:
        return self in (Aggregate.MIN, Aggregate.MAX, Aggregate.MEDIAN, Aggregate.QUANTILE_CONT)


BIVARIATE = frozenset(
    {
        Aggregate.COVAR_POP,
        Aggregate.COVAR_SAMP,
        Aggregate.CORR,
        Aggregate.REGR_SLOPE,
        Aggregate.REGR_INTERCEPT,
        Aggregate.REGR_R2,
        Aggregate.REGR_COUNT,
    }
)


@dataclass(frozen=True)
class TableRef:
    """A dataset named in SQL as ``party.dataset``."""

    party: str
    dataset: str

    def __str__(self) -> str:
        return f"{self.party}.{self.dataset}"


@dataclass(frozen=True)
class Branch:
    """One input of a relation: a dataset, the columns it contributes, its own filter.

    ``columns`` maps each output name to the dataset column it comes from; ``None`` means
    every column under its own name (``SELECT *`` or a plain table).
    """

    table: TableRef
    columns: tuple[tuple[str, str], ...] | None
    where: exp.Expression | None


@dataclass(frozen=True)
class Relation:
    """A FROM source: one dataset, or a UNION ALL of same-schema datasets, with an alias."""

    alias: str
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class JoinCondition:
    """``left = right`` in a JOIN's ON clause."""

    left: exp.Column
    right: exp.Column


@dataclass(frozen=True)
class AggregateCall:
    """An aggregate: ``argument`` is None for COUNT(*); ``second`` is the x of a bivariate
    aggregate such as CORR(y, x); ``fraction`` the q of a quantile; ``expression`` the
    argument of a univariate aggregate over a row expression (``AVG(wage * 12)``, or a
    FILTER rewritten as CASE), ``argument`` then None."""

    function: Aggregate
    argument: exp.Column | None
    second: exp.Column | None = None
    fraction: Fraction | None = None
    expression: exp.Expression | None = None
    distinct: bool = False  # COUNT(DISTINCT argument)


@dataclass(frozen=True)
class SelectItem:
    """One output column: a group key (a column or bucket expression) or an aggregate."""

    name: str  # as the analyst wrote it (the result's column name)
    group: exp.Expression | None
    aggregate: AggregateCall | None
    text: str = ""  # the output's expression as SQL, identifiers folded (HAVING, ORDER BY)
    key: str = ""  # its alias or column name, folded (how GROUP BY, HAVING, ORDER BY name it)


@dataclass(frozen=True)
class OrderKey:
    """ORDER BY on an output column (by position in the select list)."""

    output: int
    descending: bool


@dataclass(frozen=True)
class ParsedQuery:
    """A supported SELECT, with column references still unresolved."""

    relations: tuple[Relation, ...]
    joins: tuple[JoinCondition, ...]
    select: tuple[SelectItem, ...]
    where: exp.Expression | None
    group_by: tuple[exp.Expression, ...]
    having: exp.Expression | None
    order_by: tuple[OrderKey, ...]
    limit: int | None

    @property
    def relation(self) -> Relation:
        """Return the single relation of a query without joins."""
        return self.relations[0]


def output_index(node: exp.Expression, items: tuple[SelectItem, ...]) -> int | None:
    """Return the output that ``node`` names in HAVING or ORDER BY (None if none): by alias
    or column name, or as the same expression (an aggregate, a group key)."""
    text = node.sql(dialect="duckdb")
    for i, item in enumerate(items):
        column_name = item.group.name if isinstance(item.group, exp.Column) else None
        if text in (item.key, item.text, column_name):
            return i
    if isinstance(node, exp.Column) and not node.table:
        for i, item in enumerate(items):
            if node.name == item.key:
                return i
    return None
