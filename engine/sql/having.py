"""The one HAVING rule: which conditions on released outputs a query may have, as JSON.

:func:`encode` is called by the parser (to refuse early) and by the planners (the plan
carries its result); :mod:`engine.having` evaluates it at the client. The JSON:
``["and", a, b]``, ``["or", a, b]``, ``["not", a]``, ``["null", operand]`` (IS NULL),
``[op, left, right]`` with op one of ``= <> < <= > >=``, and operands ``["out", i]`` or
``["lit", value]``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

from engine.errors import UnsupportedError
from engine.sql.predicate import COMPARISONS
from engine.sql.query import ParsedQuery, output_index


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
        op = COMPARISONS.get(type(node))
        if op is None:
            raise UnsupportedError(f"not supported yet: {node.key.upper()} in HAVING")
        return [op, operand(node.this), operand(node.expression)]

    return json.dumps(condition(query.having))
