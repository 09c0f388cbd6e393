"""Plan an aggregate over an inner join of datasets held by different agencies.

Supported: two or three datasets, each at a different agency, joined by equalities of
their ``join_key`` columns that all link one key (a star, e.g. citizen_id). Each owner
filters its rows with the WHERE conditions on its own columns and aggregates them per key
(:class:`engine.plan.JoinScan`); a private join aligns those per-key columns onto the
hub's rows without revealing which rows matched; each released total is a sum over the
aligned rows of a product of one column per owner:

- COUNT(*) = Σ c_A·c_B(·c_C), with c an owner's row count per key;
- SUM(x), for x at owner X = Σ s_x·Π_{others} c, and likewise counts and sums of squares;
- a pair (y, x) at different owners X, Y: n = Σ n_x·n_y, sx = Σ s_x·n_y, sxy = Σ s_x·s_y, …
  (products of per-key sums give the sums over the joined pairs of rows, exactly);
- a GROUP BY key of owner X makes X's columns per group label;
- MIN, MAX, MEDIAN and QUANTILE_CONT of a column of owner X: X is the hub and must hold one
  row per key; its values stay in plaintext at X, which inputs them to the secure order
  statistics (:mod:`engine.mpc._order`) with each joined row's weight, the product of the
  other owners' per-key counts. Their GROUP BY keys must all be of one owner.

The hub is the owner of order statistics' values if any, else of the GROUP BY keys (its
columns are the cheapest to group by).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from engine import cross_filter
from engine import having as having_json
from engine.catalog import Catalog, ColumnType
from engine.cells import VALUE_BITS
from engine.config import ColumnPolicy
from engine.errors import PolicyError, QueryError, UnsupportedError
from engine.local_scan import component_sql, guarded, scaled
from engine.plan import JoinColumn, JoinOrder, JoinPlan, JoinScan, Measure
from engine.planner import MeasureBuilder, disclosure, outputs_of
from engine.sql import predicate
from engine.sql.domains import KeyDomain, key_domain
from engine.sql.query import ParsedQuery
from engine.sql.resolve import (
    FILTERABLE,
    Bound,
    ResolvedRelation,
    Resolver,
    resolve_relations,
)


@dataclass
class _Side:
    """What one relation contributes: its value expressions and per-key columns."""

    relation: ResolvedRelation
    # (relation column, decimals) -> value alias; None decimals: the column unscaled
    values: dict[tuple[str, int | None], str] = field(default_factory=dict)
    value_sql: list[tuple[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=lambda: ["COUNT(*)"])
    tops: list[tuple[int, str, int]] = field(default_factory=list)  # (measure, value, n)

    def value(self, column: str, decimals: int | None) -> str:
        """Return the alias of ``column`` scaled by 10**decimals (adding it once per scale).

        One column may be read at several scales in one query (its own decimals in a sum,
        a comparison's common decimals in a cross-agency WHERE, unscaled when only counted):
        each scale is a value of its own, never shared. ``None``: the column as it is.
        """
        key = (column, decimals)
        if key not in self.values:
            alias = f"__v{len(self.values)}"
            source = self.relation.branches[0].names[column]
            self.values[key] = alias
            sql = f'"{source}"' if decimals is None else scaled(source, decimals)
            self.value_sql.append((alias, sql))
        return self.values[key]

    def expression(self, key: str, node: exp.Expression, decimals: int | None) -> str:
        """Return the alias of a row expression's value (AVG(j.wage * 12)), scaled like
        :meth:`value` (None: unscaled, when only counted)."""
        if (key, decimals) not in self.values:
            alias = f"__v{len(self.values)}"
            sql = f"({predicate.render(node, _renamer(self.relation.branches[0].names))})"
            if decimals is not None:
                sql = f"CAST(ROUND({sql} * {10**decimals}) AS BIGINT)"
            sql = guarded(sql)  # a row that fails counts as NULL (engine.local_scan.guarded)
            self.values[(key, decimals)] = alias
            self.value_sql.append((alias, sql))
        return self.values[(key, decimals)]

    def column(self, sql: str) -> int:
        if sql not in self.columns:
            self.columns.append(sql)
        return self.columns.index(sql)


def build_join_plan(query: ParsedQuery, catalog: Catalog, analyst: str) -> JoinPlan:
    """Return the plan of a parsed query with JOINs (see the module docstring)."""
    relations = resolve_relations(query.relations, catalog, analyst)
    resolver = Resolver(relations)
    keys = _join_keys(query, resolver)
    owners = [r.branches[0].dataset.owner for r in relations]
    if len(set(owners)) != len(owners):
        raise UnsupportedError(
            "not supported yet: joining datasets of the same agency "
            f"({', '.join(sorted({o for o in owners if owners.count(o) > 1}))}); each joined "
            "dataset must be held by a different agency"
        )

    # GROUP BY keys: each from one relation; the hub is the owner of the group keys.
    group_texts: list[str] = []
    group_nodes: list[exp.Expression] = []
    group_relation: list[int] = []
    domains: list[KeyDomain] = []
    for key in query.group_by:
        text = key.sql(dialect="duckdb")
        if text not in group_texts:
            domain = key_domain(resolver, key)
            domains.append(domain)
            group_texts.append(text)
            group_nodes.append(key)
            group_relation.append(domain.relation)
    builder = MeasureBuilder(resolver, qualify=True)
    outputs = outputs_of(query, builder, group_texts)
    valued = _value_owner(builder.measures, relations, group_relation)
    hub = valued if valued is not None else group_relation[0] if group_relation else 0
    order = [hub] + [i for i in range(len(relations)) if i != hub]
    sides = [_Side(relations[i]) for i in range(len(relations))]
    terms = _terms(builder.measures, sides, relations, order, builder.expressions)
    orders, order_sql = _orders(builder.measures, sides[hub])

    # WHERE: conditions on one relation's columns run at its owner, in plaintext; the
    # others become a formula evaluated per joined row inside MPC (engine.cross_filter).
    filters: dict[int, list[str]] = {i: [] for i in range(len(relations))}
    for i, relation in enumerate(relations):
        own = relation.branches[0].branch.where  # a derived table's filter (its columns)
        if own is not None:
            filters[i].append(predicate.render(own, lambda c: c.name))
    formulas = []
    strict: set[int] = set()
    per_key: dict[int, set[int]] = {i: set() for i in range(len(relations))}

    def render(relation: int, node: exp.Expression) -> str:
        return predicate.render(node, _renamer(relations[relation].branches[0].names))

    def add_column(relation: int, sql: str) -> int:
        index = sides[relation].column(sql)
        per_key[relation].add(index)
        return index

    def add_value(relation: int, column: str, decimals: int) -> str:
        return sides[relation].value(column, decimals)

    for condition in predicate.conjuncts(query.where):
        predicate.check_safe(condition, "WHERE")
        for column in predicate.columns_of(condition):
            resolver.require(resolver.column(column), FILTERABLE, "in WHERE")
        resolver.check_row_expression(condition, "WHERE")
        touching = {resolver.column(c).relation for c in predicate.columns_of(condition)}
        if len(touching) > 1:
            tree, used = cross_filter.formula(condition, resolver, render, add_column, add_value)
            formulas.append(tree)
            strict |= used
            continue
        target = touching.pop() if touching else hub
        filters[target].append(render(target, condition))
    if orders:
        strict.add(hub)  # one value per joined row of the hub
    unique = {i: resolver.infos(keys[i])[0].unique for i in range(len(relations))}
    for i in sorted(strict):
        if not unique[i]:
            dataset = relations[i].branches[0].dataset
            raise QueryError(
                f"join on {dataset.qualified_name}: a WHERE condition on columns of several "
                "agencies, or MIN, MAX, MEDIAN or QUANTILE_CONT of its values, needs one row "
                f"per {keys[i].name!r} there, but its key repeats (published by its owner)"
            )
    released = disclosure(
        builder,
        outputs,
        domains,
        [r.branches[0].dataset for r in relations],
        join_keys_unique=all(unique.values()),
    )

    scans = []
    for i in order:
        resolved = relations[i]
        branch = resolved.branches[0]
        slots = tuple(s for s, r in enumerate(group_relation) if r == i)
        scans.append(
            JoinScan(
                party=branch.dataset.owner,
                dataset=branch.dataset.name,
                alias=resolved.alias,
                key=branch.names[keys[i].name],
                filter_sql=" AND ".join(f"({f})" for f in filters[i]) or None,
                group_slots=slots,
                group_sql=tuple(
                    predicate.render(group_nodes[s], _renamer(branch.names)) for s in slots
                ),
                value_sql=tuple(sides[i].value_sql),
                columns=tuple(
                    JoinColumn(f"c{j}", sql, bool(slots) and j not in per_key[i], _magnitude(sql))
                    for j, sql in enumerate(sides[i].columns)
                ),
                one_row_per_key=i in strict,
                order_sql=order_sql if i == hub else (),
                tops=tuple(sides[i].tops),
            )
        )
    position = {relation: scan for scan, relation in enumerate(order)}
    return JoinPlan(
        group_names=tuple(group_texts),
        measures=tuple(builder.measures),
        outputs=tuple(outputs),
        min_group_size=released.min_group_size,
        order_by=tuple((k.output, k.descending) for k in query.order_by),
        limit=query.limit,
        having=having_json.encode(query),
        groups=released.groups,
        release=released.release,
        noisy=released.noisy,
        charges=released.charges,
        scans=tuple(scans),
        terms=terms,
        row_filter=cross_filter.encode([cross_filter.to_scans(f, position) for f in formulas]),
        orders=orders,
    )


def _value_owner(
    measures: list[Measure], relations: list[ResolvedRelation], group_relation: list[int]
) -> int | None:
    """Return the relation whose values the order statistics rank (None if there are none)."""
    alias_of = {r.alias: i for i, r in enumerate(relations)}
    owners = {
        alias_of[m.column.split(".", 1)[0]]
        for m in measures
        if m.order is not None and m.column is not None
    }
    if not owners:
        return None
    if len(owners) > 1:
        raise UnsupportedError(
            "not supported yet: MIN, MAX, MEDIAN or QUANTILE_CONT over a join of columns of "
            "several agencies in one query; want them all on one agency's columns"
        )
    if len(set(group_relation)) > 1:
        raise UnsupportedError(
            "not supported yet: MIN, MAX, MEDIAN or QUANTILE_CONT over a join grouped by "
            "columns of several agencies; want every GROUP BY key from one agency"
        )
    return owners.pop()


def _orders(measures: list[Measure], hub: _Side) -> tuple[tuple[JoinOrder, ...], tuple[str, ...]]:
    """Return the order statistics per value column of the hub, and their per-key values."""
    columns: dict[str, list[int]] = {}
    for index, measure in enumerate(measures):
        if measure.order is not None and measure.column is not None:
            columns.setdefault(measure.column, []).append(index)
    orders: list[JoinOrder] = []
    order_sql: list[str] = []
    for name, indices in columns.items():
        v = hub.value(name.split(".", 1)[1], measures[indices[0]].decimals)
        orders.append(JoinOrder(len(order_sql), hub.column(f"COUNT({v})"), tuple(indices)))
        order_sql.append(f"MIN({v})")  # the key's one value (NULL if none)
    return tuple(orders), tuple(order_sql)


def _magnitude(sql: str) -> int:
    """Return the bits of a per-key column's value per joined row (see JoinColumn.bits).

    Counts and 0/1 flags are 0; sums of scaled values and their maxima VALUE_BITS; sums of
    squares and products twice that (every per-key column is built in this module or in
    :mod:`engine.cross_filter`, in one of these forms).
    """
    if sql.startswith("COUNT(") or sql.endswith("THEN 1 ELSE 0 END)"):
        return 0
    if sql.startswith("SUM(") and " * " in sql:
        return 2 * VALUE_BITS
    return VALUE_BITS


def _renamer(names: dict[str, str]) -> Callable[[exp.Column], str]:
    """Return a function naming a relation column by its dataset's own name."""
    return lambda column: names[column.name]


def _join_keys(query: ParsedQuery, resolver: Resolver) -> dict[int, Bound]:
    """Check the ON equalities form a star on one key; return each relation's key column."""
    keys: dict[int, Bound] = {}
    links: list[tuple[int, int]] = []
    for condition in query.joins:
        left, right = resolver.column(condition.left), resolver.column(condition.right)
        if left.relation == right.relation:
            raise UnsupportedError(
                f"not supported: join condition {condition.left.sql()} = "
                f"{condition.right.sql()} within one table"
            )
        for bound in (left, right):
            infos = resolver.infos(bound)
            if infos[0].policy is not ColumnPolicy.JOIN_KEY:
                dataset = resolver.relations[bound.relation].branches[0].dataset
                raise PolicyError(
                    f"policy: column {bound.name!r} of {dataset.qualified_name} used in JOIN "
                    f"is {infos[0].policy.value}; want a join_key column"
                )
            known = keys.setdefault(bound.relation, bound)
            if known != bound:
                raise UnsupportedError(
                    "not supported yet: a join on two different keys of one table (want a "
                    "star on one key, e.g. citizen_id)"
                )
        left_type = resolver.infos(left)[0].type
        right_type = resolver.infos(right)[0].type
        if (left_type is ColumnType.TEXT) != (right_type is ColumnType.TEXT):
            raise QueryError(
                f"JOIN: {condition.left.sql()} is {left_type.value} but {condition.right.sql()} "
                f"is {right_type.value}, want keys of the same type"
            )
        links.append((left.relation, right.relation))
    count = len(resolver.relations)
    reached = {0}
    for _ in range(count):
        for a, b in links:
            if a in reached or b in reached:
                reached |= {a, b}
    if len(reached) != count or len(keys) != count:
        raise UnsupportedError(
            "not supported: a table not linked by JOIN ... ON (a cross join); want every "
            "table joined on its key"
        )
    return keys


def _terms(
    measures: list[Measure],
    sides: list[_Side],
    relations: list[ResolvedRelation],
    order: list[int],
    expressions: dict[str, tuple[int, exp.Expression]],
) -> tuple[tuple[int, ...], ...]:
    """Return, per component of every measure, the column of each scan (hub first)."""
    alias_of = {r.alias: i for i, r in enumerate(relations)}

    def split(name: str) -> tuple[int, str]:
        alias, column = name.split(".", 1)
        return alias_of[alias], column

    terms: list[tuple[int, ...]] = []
    for index, measure in enumerate(measures):
        for component in measure.components:
            factors = {i: 0 for i in range(len(sides))}  # column 0 is COUNT(*) per key
            if measure.column is None:
                pass
            elif measure.second is None:
                scale = None if measure.counted_only else measure.decimals
                if measure.column in expressions:
                    relation, node = expressions[measure.column]
                    side = sides[relation]
                    v = side.expression(measure.column, node, scale)
                else:
                    relation, column = split(measure.column)
                    side = sides[relation]
                    v = side.value(column, scale)
                if component == "t":
                    # The top contributions come from the owner (JoinScan.tops), not a sum.
                    side.tops.append((index, v, (measure.dominance or (1, 0))[0]))
                else:
                    # An order statistic's "s" and "q" come from the order statistics; the
                    # count stands in for them here (its sum is computed once).
                    factors[relation] = side.column(
                        component_sql("n" if measure.order is not None else component, v)
                    )
            else:
                factors.update(_pair_factors(measure, component, sides, split))
            terms.append(tuple(factors[i] for i in order))
    return tuple(terms)


def _pair_factors(
    measure: Measure, component: str, sides: list[_Side], split: object
) -> dict[int, int]:
    """Return the columns one pair component needs from the owners of y and x."""
    assert callable(split) and measure.column is not None and measure.second is not None
    ry, cy = split(measure.column)
    rx, cx = split(measure.second)
    y = sides[ry].value(cy, measure.decimals)
    x = sides[rx].value(cx, measure.second_decimals)
    if rx == ry:
        return {rx: sides[rx].column(component_sql(component, y, x))}
    # Owners apart: each sums its own value per key; the product happens in MPC.
    x_part, y_part = {
        "n": ("n", "n"),
        "s": ("s", "n"),
        "q": ("q", "n"),
        "sy": ("n", "s"),
        "syy": ("n", "q"),
        "sxy": ("s", "s"),
    }[component]
    return {
        rx: sides[rx].column(component_sql(x_part, x)),
        ry: sides[ry].column(component_sql(y_part, y)),
    }
