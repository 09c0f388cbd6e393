"""WHERE conditions on the columns of several agencies, in a join.

A condition on one agency's columns runs at that agency, in plaintext. One that mixes
agencies (``p.sex = 'F' OR t.sector = 'health'``, ``t.income > s.pension``) cannot: it
becomes a formula over per-key columns the owners compute, evaluated inside MPC on every
aligned row of the join:

- an *atom* on one agency's columns is a 0/1 column its owner computes per key;
- a comparison of numeric columns of two agencies is a secure comparison per row (the
  expensive part: about half a millisecond per joined row);
- AND and OR cost one multiplication per row (a·b, a + b − a·b); NOT is pushed down to the
  atoms (a NULL operand makes an atom and its negation both not TRUE, as in SQL).

The formula travels as JSON: ``["and", a, b]``, ``["or", a, b]``, ``["not", a]``,
``["bit", scan, column]``, ``["cmp", op, [scan, value, present], [scan, value, present]]``
where ``scan`` is the position of the owner's scan in the plan (hub first) and ``column``
an index into that scan's per-key columns. An owner with such columns must have at most one
row per key (checked by the owner), so that a per-key value is the row's value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from engine.errors import UnsupportedError
from engine.local_scan import guarded
from engine.sql.predicate import COMPARISONS
from engine.sql.resolve import Resolver

_NEGATED = {"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}

# (relation, SQL of a per-key aggregate) -> column index in that relation's scan
AddColumn = Callable[[int, str], int]
# (relation, column, decimals) -> alias of the scaled value at that relation
AddValue = Callable[[int, str, int], str]


def formula(
    condition: exp.Expression,
    resolver: Resolver,
    render: Callable[[int, exp.Expression], str],
    add_column: AddColumn,
    add_value: AddValue,
) -> tuple[list[Any], set[int]]:
    """Return the JSON formula of a cross-agency condition and the relations it reads.

    ``render(relation, node)`` gives DuckDB SQL for a node over one relation's columns.
    Scan positions in the formula are relation indices; :func:`to_scans` remaps them.
    Raises UnsupportedError for a construct that cannot run securely here.
    """
    used: set[int] = set()

    def build(node: exp.Expression, negated: bool = False) -> list[Any]:
        # NOT is pushed down to the atoms (De Morgan), where the owner evaluates it in SQL
        # and a comparison flips: each atom is then 1 exactly when it is TRUE, so a NULL
        # stays not-TRUE under NOT, as in SQL's three-valued logic (NOT (x < y) with x NULL
        # keeps no row; 1 − [x < y] would keep it).
        if isinstance(node, exp.Paren):
            return build(node.this, negated)
        owner = resolver.relation_of(node, "condition") if _single(node, resolver) else None
        if owner is not None:
            used.add(owner)
            text = render(owner, node)
            if negated:
                text = f"NOT ({text})"
            sql = f"MAX(CASE WHEN {guarded(text)} THEN 1 ELSE 0 END)"
            return ["bit", owner, add_column(owner, sql)]
        if isinstance(node, exp.And | exp.Or):
            kind = "and" if isinstance(node, exp.And) != negated else "or"
            return [kind, build(node.this, negated), build(node.expression, negated)]
        if isinstance(node, exp.Not):
            return build(node.this, not negated)
        op = COMPARISONS.get(type(node))
        if op is not None:
            if negated:
                op = _NEGATED[op]
            return ["cmp", op, side(node.this, node), side(node.expression, node)]
        raise UnsupportedError(
            f"not supported yet: {node.key.upper()} on columns of several agencies in WHERE "
            f"({node.sql(dialect='duckdb')!r})"
        )

    def side(node: exp.Expression, whole: exp.Expression) -> list[int]:
        if not isinstance(node, exp.Column):
            raise UnsupportedError(
                "not supported yet: comparing expressions of two agencies in WHERE "
                f"({whole.sql(dialect='duckdb')!r}); want a column on each side"
            )
        bound = resolver.column(node)
        infos = resolver.infos(bound)
        if not infos[0].type.numeric:
            raise UnsupportedError(
                "not supported yet: comparing non-numeric columns of two agencies in WHERE "
                f"({whole.sql(dialect='duckdb')!r})"
            )
        used.add(bound.relation)
        decimals = _common_decimals(whole, resolver)
        value = add_value(bound.relation, bound.name, decimals)
        present = f"MAX(CASE WHEN {value} IS NOT NULL THEN 1 ELSE 0 END)"
        return [
            bound.relation,
            add_column(bound.relation, f"MAX({value})"),
            add_column(bound.relation, present),
        ]

    return build(condition), used


def _single(node: exp.Expression, resolver: Resolver) -> bool:
    owners = {resolver.column(c).relation for c in node.find_all(exp.Column)}
    return len(owners) == 1


def _common_decimals(comparison: exp.Expression, resolver: Resolver) -> int:
    return max(
        resolver.infos(resolver.column(c))[0].decimals for c in comparison.find_all(exp.Column)
    )


def to_scans(node: list[Any], position: dict[int, int]) -> list[Any]:
    """Return the formula with relation indices replaced by scan positions."""
    kind = node[0]
    if kind == "bit":
        return ["bit", position[node[1]], node[2]]
    if kind == "cmp":
        return ["cmp", node[1], *([position[s[0]], s[1], s[2]] for s in node[2:])]
    return [kind, *(to_scans(child, position) for child in node[1:])]


def comparisons(node: list[Any]) -> int:
    """Return how many secure comparisons per row the formula costs."""
    if node[0] == "cmp":
        return {"=": 2, "<>": 2}.get(node[1], 1)
    if node[0] == "bit":
        return 0
    return sum(comparisons(child) for child in node[1:])


def encode(nodes: list[list[Any]]) -> str:
    """Return the JSON of the AND of several formulas ("" for none)."""
    if not nodes:
        return ""
    combined = nodes[0]
    for node in nodes[1:]:
        combined = ["and", combined, node]
    return json.dumps(combined)
