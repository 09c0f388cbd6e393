"""Type checks of row expressions at plan time, from the catalogue's column types alone.

A WHERE condition (or a UNION ALL branch's) runs at each owner in DuckDB; a condition whose
types do not fit (``district > 5`` on a text column) would fail there only after the query
was approved and logged. Here it is bound by DuckDB against an empty relation with the
columns' published types, before any row is read, and refused with a message naming the
operands and the types that met. Nothing but the SQL and the catalogue is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
from sqlglot import exp

from engine.catalog import ColumnType
from engine.errors import QueryError
from engine.sql import predicate

DUCK_TYPES = {  # the DuckDB type of a published column type
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.TEXT: "VARCHAR",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
}
# One in-memory DuckDB for plan-time evaluation (no data): types here, labels in domains.
ENGINE = duckdb.connect(":memory:")
ENGINE_LOCK = threading.Lock()
_WORDS = {
    ColumnType.INTEGER: "integer",
    ColumnType.FLOAT: "number",
    ColumnType.TEXT: "text",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.OTHER: "value",
}

ColumnTypeOf = Callable[[exp.Column], tuple[str, ColumnType]]  # column -> (key, type)


def check_types(node: exp.Expression, type_of: ColumnTypeOf, where: str) -> None:
    """Raise QueryError if ``node`` cannot be evaluated over columns of their types.

    ``type_of(column)`` returns a key naming the column uniquely in the query and its
    published type.
    """
    culprit = _mismatch(node, type_of)
    if culprit is None:
        if _binds(node, type_of):
            return
        culprit = node
        for sub in node.walk():  # the smallest part that does not bind names the types
            part = isinstance(sub, exp.Expression) and _operand(sub) and sub is not node
            if part and not _binds(sub, type_of):  # type: ignore[arg-type]
                culprit = sub  # type: ignore[assignment]
    raise QueryError(
        f"{where}: {culprit.sql(dialect='duckdb')!r} {_describe(culprit, type_of)}; want "
        "operands of compatible types (a text constant is quoted: 'north')"
    )


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)


def _operand(node: object) -> bool:
    """Whether ``node`` is a value of its own (not an identifier, type or column part)."""
    if not isinstance(node, exp.Expression) or isinstance(node, exp.Identifier | exp.DataType):
        return False
    return not isinstance(node.parent, exp.Column)


def _mismatch(node: exp.Expression, type_of: ColumnTypeOf) -> exp.Expression | None:
    """Return the first comparison of text with a number in ``node`` (None if none).

    DuckDB binds some of them (``district = 5`` casts district to a number, row by row)
    and fails on the rows only; SQL gives them no meaning, so they are refused here.
    """
    for sub in node.walk():
        if not isinstance(sub, _COMPARISONS):
            continue
        operands = [sub.this]
        if isinstance(sub, exp.Between):
            operands += [sub.args["low"], sub.args["high"]]
        elif isinstance(sub, exp.In):
            operands += list(sub.expressions)
        else:
            operands.append(sub.expression)
        kinds = {_kind(o, type_of) for o in operands}
        text, number = kinds & {"text", "word"}, kinds & {"number", "number column"}
        if text and number and text | number != {"word", "number"}:
            return sub
    return None


def _kind(node: exp.Expression, type_of: ColumnTypeOf) -> str:
    """Return "text" (a text column), "number column", "number" (a constant) or "word"
    (a text constant that is not a number), or "" for anything else."""
    if isinstance(node, exp.Paren):
        return _kind(node.this, type_of)
    if isinstance(node, exp.Column):
        kind = type_of(node)[1]
        if kind is ColumnType.TEXT:
            return "text"
        return "number column" if kind.numeric else ""
    if isinstance(node, exp.Neg):
        return _kind(node.this, type_of)
    if isinstance(node, exp.Literal):
        if not node.is_string:
            return "number"
        try:
            float(node.this)
        except ValueError:
            return "word"
        return ""
    return ""


def _describe(node: exp.Expression, type_of: ColumnTypeOf) -> str:
    """Return 'compares X (text) with Y (an integer)' or the like, for the operands met."""
    operands = [c for c in node.iter_expressions() if isinstance(c, exp.Expression)]
    if isinstance(node, exp.In):
        operands = [node.this, *node.expressions]
    parts = [f"{o.sql(dialect='duckdb')} ({_type_word(o, type_of)})" for o in operands[:3]]
    verb = (
        "compares"
        if isinstance(node, exp.Predicate | exp.Between | exp.In | exp.Like)
        else "combines"
    )
    if len(parts) < 2:
        return f"cannot be evaluated on {' '.join(parts) or 'its operands'}"
    return f"{verb} {parts[0]} with {' and '.join(parts[1:])}"


def _type_word(node: exp.Expression, type_of: ColumnTypeOf) -> str:
    if isinstance(node, exp.Column):
        return _WORDS[type_of(node)[1]]
    if isinstance(node, exp.Literal):
        return "a text constant" if node.is_string else "a number"
    if isinstance(node, exp.Boolean):
        return "a boolean"
    if isinstance(node, exp.Null):
        return "NULL"
    return "an expression"


def _binds(node: exp.Expression, type_of: ColumnTypeOf) -> bool:
    columns: dict[str, tuple[int, ColumnType]] = {}

    def rename(sub: exp.Expression) -> exp.Expression:
        if isinstance(sub, exp.Column):
            key, kind = type_of(sub)
            index = columns.setdefault(key, (len(columns), kind))[0]
            return exp.column(f"__c{index}", quoted=True)
        return sub

    body = predicate.standard(node.copy().transform(rename)).sql(dialect="duckdb")
    typed = ", ".join(
        f"CAST(NULL AS {DUCK_TYPES.get(kind, 'VARCHAR')}) AS __c{index}"
        for index, kind in columns.values()
    )
    source = f"(SELECT {typed or '1 AS __one'})"
    with ENGINE_LOCK:
        try:
            ENGINE.execute(f"SELECT {body} FROM {source} LIMIT 0").fetchall()
        except duckdb.Error:
            return False
    return True
