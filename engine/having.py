"""HAVING as a condition on released outputs, evaluated by the analyst's client.

A HAVING condition may only compare released outputs (aggregates or group keys named in
SELECT) with constants (comparisons, IS [NOT] NULL, BETWEEN, IN), combined with
AND/OR/NOT: the rule is :func:`engine.sql.having.encode`. It is applied to the released
cells by the client, after recombination: it releases no more than the same query without HAVING,
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

from engine.errors import QueryError
from engine.sql.having import encode

__all__ = ["encode", "keep"]

_APPLY: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


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
