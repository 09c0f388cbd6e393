"""HAVING as a condition on released outputs, evaluated by the analyst's client.

A HAVING condition may only compare released outputs (aggregates or group keys named in
SELECT) with constants (comparisons, IS [NOT] NULL, BETWEEN, IN), combined with
AND/OR/NOT. It is applied to the released cells by
the client, after recombination: it releases no more than the same query without HAVING,
which the analyst could run anyway. Suppressed or NULL cells make a comparison unknown, and
an unknown condition drops the row, as in SQL.

The plan carries the condition as JSON: ``["and", a, b]``, ``["or", a, b]``, ``["not", a]``,
``["null", operand]`` (IS NULL), ``[op, left, right]`` with op one of ``= <> < <= > >=``,
and operands ``["out", i]`` or ``["lit", value]``.
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
    """Return the JSON of the query's HAVING condition ("" when there is none).

    The one HAVING rule (the parser calls this too, to refuse early): operands are released
    outputs — named by alias or column name, or written as the same expression (an
    aggregate SELECT carries under an alias is still that aggregate) — and constants;
    conditions are comparisons, IS [NOT] NULL, BETWEEN and IN lists of them, combined with
    AND, OR and NOT. Raises UnsupportedError naming anything else.
    """
    if query.having is None:
        return ""
    from engine.sql.parse import output_index

    def operand(node: exp.Expression) -> list[Any]:
        if isinstance(node, exp.Paren):
            return operand(node.this)
        if isinstance(node, exp.Literal):
            return ["lit", node.this if node.is_string else float(node.this)]
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            return ["lit", -float(node.this.this)]
        if isinstance(node, exp.Null):
            return ["lit", None]
        if isinstance(node, exp.Boolean):
            return ["lit", bool(node.this)]
        index = output_index(node, query.select)
        if index is not None:
            return ["out", index]
        text = node.sql(dialect="duckdb")
        if isinstance(node, exp.AggFunc | exp.Column | exp.WithinGroup):
            raise UnsupportedError(
                f"not supported yet: HAVING on {text!r}, which is not in SELECT; want "
                "conditions on released outputs"
            )
        raise UnsupportedError(
            f"not supported yet: {text!r} in HAVING; want released outputs and constants"
        )

    def condition(node: exp.Expression) -> list[Any]:
        if isinstance(node, exp.Paren):
            return condition(node.this)
        if isinstance(node, exp.And):
            return ["and", condition(node.this), condition(node.expression)]
        if isinstance(node, exp.Or):
            return ["or", condition(node.this), condition(node.expression)]
        if isinstance(node, exp.Not):
            return ["not", condition(node.this)]
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return ["null", operand(node.this)]
        if isinstance(node, exp.Between):
            value = operand(node.this)
            low, high = operand(node.args["low"]), operand(node.args["high"])
            return ["and", [">=", value, low], ["<=", value, high]]
        if isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
            value = operand(node.this)
            tree = ["=", value, operand(node.expressions[0])]
            for item in node.expressions[1:]:
                tree = ["or", tree, ["=", value, operand(item)]]
            return tree
        op = _OPS.get(type(node))
        if op is None:
            raise UnsupportedError(f"not supported yet: {node.key.upper()} in HAVING")
        return [op, operand(node.this), operand(node.expression)]

    return json.dumps(condition(query.having))


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
    if kind == "null":  # IS NULL: a suppressed cell's value is unknown
        operand = node[1]
        value = row[operand[1]] if operand[0] == "out" else operand[1]
        return None if value is not None and missing(value) else value is None
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
