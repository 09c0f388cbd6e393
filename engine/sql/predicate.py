"""Row predicates: check that a WHERE expression is safe to run at an owner, and render it.

A predicate runs in plaintext inside the owner's DuckDB, so only a small, side-effect-free
subset of SQL is accepted: comparisons, AND/OR/NOT, IN lists, BETWEEN, IS [NOT] NULL,
LIKE, arithmetic, literals and a few scalar functions. Column references are checked
against the column policies and rewritten to the owner's own column names.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

from engine.errors import UnsupportedError

# The comparison operators conditions are made of, with their SQL (HAVING, cross-agency
# filters): one map for every module that encodes a comparison.
COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}

_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Abs,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Coalesce,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Cast,
    exp.DataType,
    exp.Tuple,
)


def columns_of(predicate: exp.Expression) -> list[exp.Column]:
    """Return the column references in ``predicate``."""
    return list(predicate.find_all(exp.Column))


BUCKETS: tuple[type[exp.Expression], ...] = (exp.WidthBucket, exp.Case, exp.If, exp.IntDiv)


def check_safe(
    predicate: exp.Expression, where: str, extra: tuple[type[exp.Expression], ...] = ()
) -> None:
    """Raise UnsupportedError if ``predicate`` uses anything outside the safe subset
    (plus the node types in ``extra``)."""
    allowed = _ALLOWED + extra
    for node in predicate.walk():
        if isinstance(node, exp.Cast) and not _plain_type(node.to):
            raise UnsupportedError(f"not supported yet: CAST to {node.to.sql()} in {where}")
        if not isinstance(node, allowed):
            label = node.key.upper()
            if isinstance(node, exp.Anonymous):
                label = f"function {node.name.upper()}()"
            elif isinstance(node, exp.Func):
                label = f"function {node.sql_name().upper()}()"
            raise UnsupportedError(f"not supported yet: {label} in {where}")
        if isinstance(node, exp.Column) and node.is_star:
            raise UnsupportedError(f"not supported: * in {where}")


def _plain_type(datatype: exp.DataType) -> bool:
    return datatype.this in {
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.DECIMAL,
    }


def conjuncts(predicate: exp.Expression | None) -> list[exp.Expression]:
    """Split a predicate into its top-level AND terms (parentheses removed)."""
    if predicate is None:
        return []
    node = predicate.unnest() if isinstance(predicate, exp.Paren) else predicate
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    assert isinstance(node, exp.Expression)
    return [node]


def render(predicate: exp.Expression, rename: Callable[[exp.Column], str]) -> str:
    """Return DuckDB SQL for ``predicate`` with each column replaced by ``rename(column)``.

    The result references unqualified, quoted column names of the owner's table.
    """

    def transform(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return exp.column(rename(node), quoted=True)
        return node

    return standard(predicate.copy().transform(transform)).sql(dialect="duckdb")


def standard(node: exp.Expression) -> exp.Expression:
    """Rewrite SQL-standard functions DuckDB lacks (WIDTH_BUCKET) into plain expressions.

    WIDTH_BUCKET(x, lo, hi, n) is 0 below lo, n + 1 from hi on, and else the 1-based bucket
    of n equal-width buckets, as in SQL:2003 and PostgreSQL; NULL stays NULL.
    """

    def transform(sub: exp.Expression) -> exp.Expression:
        if not isinstance(sub, exp.WidthBucket):
            return sub
        x = sub.this.sql(dialect="duckdb")
        lo = sub.args["min_value"].sql(dialect="duckdb")
        hi = sub.args["max_value"].sql(dialect="duckdb")
        n = sub.args["num_buckets"].sql(dialect="duckdb")
        text = (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} < {lo} THEN 0 WHEN {x} >= {hi} "
            f"THEN {n} + 1 ELSE CAST(FLOOR(({x} - {lo}) * {n} / ({hi} - {lo})) AS BIGINT) + 1 END"
        )
        parsed = sqlglot.parse_one(text, dialect="duckdb")
        assert isinstance(parsed, exp.Expression)
        return parsed

    result = node.transform(transform)
    assert isinstance(result, exp.Expression)
    return result
