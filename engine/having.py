"""HAVING as a condition on released outputs, evaluated by the analyst's client.

A HAVING condition may only compare released outputs (aggregates or group keys named in
SELECT) with constants, combined with AND/OR/NOT. It is applied to the released cells by
the client, after recombination: it releases no more than the same query without HAVING,
which the analyst could run anyway. Suppressed or NULL cells make a comparison unknown, and
an unknown condition drops the row, as in SQL.

The plan carries the condition as JSON: ``["and", a, b]``, ``["or", a, b]``, ``["not", a]``,
``[op, left, right]`` with op one of ``= <> < <= > >=``, and operands ``["out", i]`` or
``["lit", value]``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from engine.errors import QueryError, UnsupportedError
from engine.sql.query import ParsedQuery

_OPS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
_APPLY: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def encode(query: ParsedQuery) -> str:
    """Return the JSON of the query's HAVING condition ("" when there is none)."""
    if query.having is None:
        return ""
    texts = []
    for item in query.select:
        node = item.group if item.group is not None else None
        texts.append((item.name, node.sql(dialect="duckdb") if node is not None else None))

    def operand(node: exp.Expression) -> list[Any]:
        if isinstance(node, exp.Paren):
            return operand(node.this)
        if isinstance(node, exp.Literal):
            return ["lit", node.this if node.is_string else float(node.this)]
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            return ["lit", -float(node.this.this)]
        text = node.sql(dialect="duckdb")
        for index, (name, group) in enumerate(texts):
            item = query.select[index]
            aggregate_text = _aggregate_text(item) if item.aggregate is not None else None
            if text in (name, group, aggregate_text) or (
                isinstance(node, exp.Column) and not node.table and node.name == name
            ):
                return ["out", index]
        raise UnsupportedError(f"not supported yet: HAVING on {text!r}; want a SELECT output")

    def condition(node: exp.Expression) -> list[Any]:
        if isinstance(node, exp.Paren):
            return condition(node.this)
        if isinstance(node, exp.And):
            return ["and", condition(node.this), condition(node.expression)]
        if isinstance(node, exp.Or):
            return ["or", condition(node.this), condition(node.expression)]
        if isinstance(node, exp.Not):
            return ["not", condition(node.this)]
        op = _OPS.get(type(node))
        if op is None:
            raise UnsupportedError(f"not supported yet: {node.key.upper()} in HAVING")
        return [op, operand(node.this), operand(node.expression)]

    return json.dumps(condition(query.having))


def _aggregate_text(item: Any) -> str:
    from engine.sql.parse import _name

    call = item.aggregate
    if call.argument is None:
        return "COUNT(*)"
    args = _name(call.argument)
    if call.second is not None:
        args += ", " + _name(call.second)
    return f"{call.function.value.upper()}({args})"


def keep(condition: str, row: Sequence[object], missing: Callable[[object], bool]) -> bool:
    """Return whether ``row`` satisfies the HAVING condition (unknown counts as false)."""
    if not condition:
        return True
    return _evaluate(json.loads(condition), row, missing) is True


def _evaluate(
    node: list[Any], row: Sequence[object], missing: Callable[[object], bool]
) -> bool | None:
    kind = node[0]
    if kind == "and":
        left, right = _evaluate(node[1], row, missing), _evaluate(node[2], row, missing)
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if kind == "or":
        left, right = _evaluate(node[1], row, missing), _evaluate(node[2], row, missing)
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if kind == "not":
        inner = _evaluate(node[1], row, missing)
        return None if inner is None else not inner
    values = []
    for operand in node[1:]:
        value = row[operand[1]] if operand[0] == "out" else operand[1]
        if value is None or missing(value):
            return None
        values.append(value)
    try:
        return bool(_APPLY[kind](values[0], values[1]))
    except TypeError:
        raise QueryError(
            f"HAVING: cannot compare {type(values[0]).__name__} with {type(values[1]).__name__}"
        ) from None
