"""The fixed-point precision of a row expression inside an aggregate (``AVG(wage * 12)``).

An owner scales every value it aggregates to an integer, ``round(v · 10**d)``. For a row
expression, ``d`` is the number of decimals its value has exactly, from its columns'
declared decimals: a sum or difference has the larger of its operands', a product the sum
of both, a CASE the largest of its results', a constant its own digits, ABS its operand's,
ROUND(x, k) at most k, FLOOR and CEIL none. Division and other functions have no fixed
precision and are refused, so that the released statistic stays the exact value over the
data as declared (README "SQL supported").
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from engine.errors import QueryError, UnsupportedError

MAX_DECIMALS = 12  # 10**12 times a value must still fit a BIGINT at the owner


def decimals(node: exp.Expression, of_column: Callable[[exp.Column, str], int], where: str) -> int:
    """Return the decimals ``node`` needs; ``of_column(column, where)`` gives a numeric
    column's declared decimals (raising QueryError for a column that is not numeric)."""
    places = _places(node, of_column, where)
    if places > MAX_DECIMALS:
        raise QueryError(
            f"{where}: got a value with {places} decimals, want at most {MAX_DECIMALS} "
            "(fewer factors with decimals)"
        )
    return places


def _places(node: exp.Expression, of_column: Callable[[exp.Column, str], int], where: str) -> int:
    def inner(child: exp.Expression) -> int:
        return _places(child, of_column, where)

    if isinstance(node, exp.Column):
        return of_column(node, where)
    if isinstance(node, exp.Paren | exp.Neg | exp.Abs):
        return inner(node.this)
    if isinstance(node, exp.Null):
        return 0
    if isinstance(node, exp.Literal):
        if node.is_string:
            raise QueryError(f"{where}: got the text {node.sql()}, want a number")
        text = node.this.lower()
        if "e" in text:
            raise UnsupportedError(f"not supported yet: the constant {text} in {where}")
        return len(text.split(".", 1)[1].rstrip("0")) if "." in text else 0
    if isinstance(node, exp.Add | exp.Sub):
        return max(inner(node.this), inner(node.expression))
    if isinstance(node, exp.Mul):
        return inner(node.this) + inner(node.expression)
    if isinstance(node, exp.Case):
        results = [inner(branch.args["true"]) for branch in node.args.get("ifs") or []]
        default = node.args.get("default")
        return max([*results, inner(default) if default is not None else 0])
    if isinstance(node, exp.If):
        false = node.args.get("false")
        return max(inner(node.args["true"]), inner(false) if false is not None else 0)
    if isinstance(node, exp.Round):
        digits = node.args.get("decimals")
        if digits is None:
            return 0
        if not isinstance(digits, exp.Literal) or digits.is_string or not digits.this.isdigit():
            raise UnsupportedError(f"not supported yet: ROUND with digits {digits.sql()!r}")
        return min(inner(node.this), int(digits.this))
    if isinstance(node, exp.Floor | exp.Ceil):
        inner(node.this)
        return 0
    label = "division" if isinstance(node, exp.Div | exp.IntDiv | exp.Mod) else node.key.upper()
    raise UnsupportedError(
        f"not supported yet: {label} in {where} (its result has no fixed number of decimals); "
        "want + - * of columns and constants, CASE, ABS, ROUND, FLOOR or CEIL"
    )
