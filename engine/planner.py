"""Resolve a parsed query against the catalog, enforce the policies, and build its plan.

Rules enforced here and in :mod:`engine.sql.resolve` (each refusal names the column and the
rule):

- every dataset exists, is available, and the analyst is granted it;
- ``hidden`` columns are never usable; ``join_key`` columns only link datasets (never
  output, filtered, grouped or aggregated);
- GROUP BY keys have public labels only (:mod:`engine.sql.domains`): ``group_by`` columns,
  buckets with constant labels, expressions of ``group_by`` columns; outputs are group keys
  or aggregates; every label of the keys' domains is a result row;
- numeric aggregates only on numeric ``aggregate`` or ``group_by`` columns; MIN, MAX and
  quantiles only on columns whose owner allows order statistics;
- the release rules of :mod:`engine.release_plan` (dominance, differential privacy);
- WHERE predicates use ``group_by`` or ``aggregate`` columns and the safe SQL subset of
  :mod:`engine.sql.predicate`; they are pushed down to each owner and run in plaintext.

Queries with JOIN are planned by :mod:`engine.join_planner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from engine import having as having_json
from engine.catalog import Catalog, ColumnInfo, DatasetInfo
from engine.config import ColumnPolicy, ReleaseMode
from engine.errors import QueryError, UnsupportedError
from engine.labels import Label
from engine.plan import (
    COMPONENT_ORDER,
    Charge,
    Measure,
    NoisyTotal,
    Output,
    Plan,
    QueryPlan,
    Scan,
)
from engine.release_plan import (
    charges,
    check_dp,
    check_order_statistic,
    dominance_of,
    noisy_totals,
    query_epsilon,
    release_mode,
    scaled_bound,
)
from engine.sql import arithmetic, predicate
from engine.sql.domains import KeyDomain, groups_of, key_domain
from engine.sql.parse import parse_query
from engine.sql.query import Aggregate, AggregateCall, ParsedQuery
from engine.sql.resolve import (
    FILTERABLE,
    Bound,
    ResolvedBranch,
    Resolver,
    resolve_relations,
)

NEEDS: dict[Aggregate, tuple[str, ...]] = {
    Aggregate.COUNT: ("n",),
    Aggregate.SUM: ("n", "s"),
    Aggregate.AVG: ("n", "s"),
    Aggregate.VAR_SAMP: ("n", "s", "q"),
    Aggregate.VAR_POP: ("n", "s", "q"),
    Aggregate.STDDEV_SAMP: ("n", "s", "q"),
    Aggregate.STDDEV_POP: ("n", "s", "q"),
}
AGGREGATABLE = frozenset({ColumnPolicy.AGGREGATE, ColumnPolicy.GROUP_BY})
PAIR_COMPONENTS = ("n", "s", "q", "sy", "syy", "sxy")


def plan_query(sql: str, catalog: Catalog, analyst: str) -> Plan:
    """Parse, check and plan ``sql`` for ``analyst``.

    Raises QueryError / UnsupportedError for malformed or unsupported SQL and PolicyError
    when a policy or grant forbids the query.
    """
    query = parse_query(sql)
    if query.joins or len(query.relations) > 1:
        from engine.join_planner import build_join_plan

        return build_join_plan(query, catalog, analyst)
    return build_plan(query, catalog, analyst)


class MeasureBuilder:
    """Collects the measures a query's aggregates need, merging what can be shared.

    Checks as it goes the column rules of every dataset a column comes from: the policy,
    numeric types, order statistics only where allowed, and adds the dominance rule's
    components to SUM and AVG measures whose dataset has one.
    """

    def __init__(self, resolver: Resolver, qualify: bool) -> None:
        self.resolver = resolver
        self.qualify = qualify  # name columns "alias.column" (joins) or just "column"
        self.measures: list[Measure] = []
        # measure column -> (relation, row expression) of aggregates over expressions
        self.expressions: dict[str, tuple[int, exp.Expression]] = {}
        # per measure: each dataset its column lives in, with the column there
        self.sources: list[list[tuple[DatasetInfo, ColumnInfo]]] = []

    def name(self, column: exp.Column) -> str:
        bound = self.resolver.column(column)
        if not self.qualify:
            return bound.name
        return f"{self.resolver.relations[bound.relation].alias}.{bound.name}"

    def _sources(self, bound: Bound) -> list[tuple[DatasetInfo, ColumnInfo]]:
        relation = self.resolver.relations[bound.relation]
        infos = self.resolver.infos(bound)
        return [(rb.dataset, info) for rb, info in zip(relation.branches, infos, strict=True)]

    def add(self, call: AggregateCall) -> int:
        """Return the index of the measure serving ``call``, adding or widening one."""
        function = call.function
        what = function.value.upper()
        if call.expression is not None:
            return self._add_expression(call)
        if call.argument is None:
            return self._merge(Measure(None, ("n",), 0), [])
        bound = self.resolver.column(call.argument)
        self.resolver.require(bound, AGGREGATABLE, f"in {what}")
        column = self.name(call.argument)
        sources = self._sources(bound)
        if function.bivariate:
            assert call.second is not None
            second = self.resolver.column(call.second)
            self.resolver.require(second, AGGREGATABLE, f"in {what}")
            measure = Measure(
                column,
                PAIR_COMPONENTS,
                self.resolver.numeric(bound, what),
                self.name(call.second),
                self.resolver.numeric(second, what),
            )
            return self._merge(measure, sources + self._sources(second))
        if function is Aggregate.COUNT and call.distinct:
            if len(sources) > 1 or self.qualify:
                raise UnsupportedError(
                    f"not supported yet: COUNT(DISTINCT {call.argument.sql()}) over a UNION ALL "
                    "or a join; want it over one dataset (its owner counts the values)"
                )
            return self._add(Measure(column, ("n",), 0, distinct=True), sources)
        if function is Aggregate.COUNT:
            return self._merge(Measure(column, ("n",), 0), sources)
        decimals = self.resolver.numeric(bound, what)
        if function.order_statistic:
            check_order_statistic(function, sources)
            order, fraction = {
                Aggregate.MIN: ("min", (0, 1)),
                Aggregate.MAX: ("max", (1, 1)),
                Aggregate.MEDIAN: ("quantile", (1, 2)),
            }.get(function, ("quantile", None))
            if fraction is None:
                assert call.fraction is not None
                fraction = (call.fraction.numerator, call.fraction.denominator)
            if fraction[1] >= 1 << 16:
                raise QueryError(f"{what}: got q with denominator {fraction[1]}, want < 65536")
            return self._add(
                Measure(column, ("n", "s", "q"), decimals, order=order, fraction=fraction),
                sources,
            )
        components = NEEDS[function]
        dominance = None
        if function in (Aggregate.SUM, Aggregate.AVG):
            dominance = dominance_of([d for d, _ in sources])
            if dominance is not None:
                components = (*components, "a", "t")
        return self._merge(Measure(column, components, decimals, dominance=dominance), sources)

    def _add_expression(self, call: AggregateCall) -> int:
        """Return the measure of an aggregate over a row expression of one relation.

        The owner evaluates the expression on each of its rows in plaintext, scaled to an
        integer by the decimals it needs exactly (see :func:`engine.sql.arithmetic.decimals`);
        from there on it is a column like any other.
        """
        function, expression = call.function, call.expression
        assert expression is not None
        what = function.value.upper()
        text = expression.sql(dialect="duckdb")
        where = f"{what}({text})"
        predicate.check_safe(expression, where, (exp.Case, exp.If))
        columns = list(expression.find_all(exp.Column))
        if not columns:
            raise QueryError(f"{where}: got a constant, want an expression of columns")
        for column in columns:
            self.resolver.require(self.resolver.column(column), AGGREGATABLE, f"in {what}")
        relations = {self.resolver.column(c).relation for c in columns}
        if len(relations) > 1:
            raise UnsupportedError(
                f"not supported yet: {where} on columns of several agencies; want each "
                "aggregate's expression on one agency's columns"
            )
        relation = relations.pop()
        self.resolver.check_row_expression(expression, where)
        datasets = [rb.dataset for rb in self.resolver.relations[relation].branches]
        if any(d.release is ReleaseMode.DP for d in datasets):
            raise UnsupportedError(
                f"not supported yet: {where} over a dp dataset (an expression has no declared "
                "bounds to set the noise); want an aggregate of a column"
            )
        decimals = 0
        if function is not Aggregate.COUNT:
            decimals = arithmetic.decimals(expression, self._column_decimals, where)
        sources = [(d, d.columns[0]) for d in datasets]
        alias = self.resolver.relations[relation].alias
        key = f"{alias}.{text}" if self.qualify else text
        self.expressions[key] = (relation, expression)
        components = ("n",) if function is Aggregate.COUNT else NEEDS[function]
        dominance = None
        if function in (Aggregate.SUM, Aggregate.AVG):
            dominance = dominance_of(datasets)
            if dominance is not None:
                components = (*components, "a", "t")
        return self._merge(Measure(key, components, decimals, dominance=dominance), sources)

    def _column_decimals(self, column: exp.Column, where: str) -> int:
        return self.resolver.numeric(self.resolver.column(column), where)

    def _add(self, measure: Measure, sources: list[tuple[DatasetInfo, ColumnInfo]]) -> int:
        if measure in self.measures:
            return self.measures.index(measure)
        self.measures.append(measure)
        self.sources.append(sources)
        return len(self.measures) - 1

    def _merge(self, measure: Measure, sources: list[tuple[DatasetInfo, ColumnInfo]]) -> int:
        for index, old in enumerate(self.measures):
            same = (old.column, old.second, old.order, old.distinct) == (
                measure.column,
                measure.second,
                None,
                False,
            )
            if same and measure.order is None:
                components = tuple(
                    c for c in COMPONENT_ORDER if c in old.components or c in measure.components
                )
                self.measures[index] = Measure(
                    old.column,
                    components,
                    max(old.decimals, measure.decimals),
                    old.second,
                    max(old.second_decimals, measure.second_decimals),
                    dominance=old.dominance or measure.dominance,
                )
                return index
        return self._add(measure, sources)


def outputs_of(query: ParsedQuery, builder: MeasureBuilder, group_texts: list[str]) -> list[Output]:
    """Return the outputs: group keys by position, aggregates by measure."""
    outputs = []
    for item in query.select:
        if item.group is not None:
            outputs.append(
                Output(item.name, group_texts.index(item.group.sql(dialect="duckdb")), None, None)
            )
            continue
        assert item.aggregate is not None
        outputs.append(
            Output(item.name, None, item.aggregate.function, builder.add(item.aggregate))
        )
    if not any(o.function is not None for o in outputs):
        raise QueryError(
            "SELECT: got no aggregate, want at least one (jointstat releases aggregates only)"
        )
    return outputs


@dataclass(frozen=True)
class Disclosure:
    """The plan fields that say how its cells may be released (engine.release_plan)."""

    groups: tuple[Label, ...]
    release: str
    noisy: tuple[NoisyTotal, ...]
    charges: tuple[Charge, ...]
    min_group_size: int


def disclosure(
    builder: MeasureBuilder,
    outputs: list[Output],
    domains: list[KeyDomain],
    datasets: list[DatasetInfo],
    *,
    join_keys_unique: bool = True,
) -> Disclosure:
    """Decide the release mode and its parameters for a plan (no data is read)."""
    mode = release_mode(datasets)
    groups = groups_of(domains)
    if mode is ReleaseMode.EXACT:
        return Disclosure(groups, mode.value, (), (), max(d.min_group_size for d in datasets))
    check_dp(outputs, datasets, join_keys_unique)
    epsilon = query_epsilon(datasets)
    sensitivity = []
    for measure, sources in zip(builder.measures, builder.sources, strict=True):
        if measure.column is None:
            sensitivity.append(1)
            continue
        sensitivity.append(
            max(scaled_bound(_bounds(info), measure.decimals) for _, info in sources)
        )
    # A dp release is noisy instead of suppressed: no minimum group size applies.
    return Disclosure(
        groups,
        mode.value,
        noisy_totals(builder.measures, outputs, sensitivity, epsilon),
        charges(datasets, epsilon),
        1,
    )


def _bounds(info: ColumnInfo) -> tuple[float, float] | None:
    if info.bounds is not None:
        return info.bounds
    if info.domain:  # a numeric group_by column: its labels bound it
        numbers = [float(v) for v in info.domain if isinstance(v, int | float)]
        if numbers:
            return min(numbers), max(numbers)
    return None


def build_plan(query: ParsedQuery, catalog: Catalog, analyst: str) -> QueryPlan:
    """Return the plan of a parsed query over one relation (see :func:`plan_query`)."""
    (relation,) = resolve_relations(query.relations, catalog, analyst)
    resolver = Resolver([relation])
    group_texts: list[str] = []
    domains: list[KeyDomain] = []
    for key in query.group_by:
        text = key.sql(dialect="duckdb")
        if text not in group_texts:
            domains.append(key_domain(resolver, key))
            group_texts.append(text)
    groups = [next(k for k in query.group_by if k.sql(dialect="duckdb") == t) for t in group_texts]
    where = query.where
    if where is not None:
        predicate.check_safe(where, "WHERE")
        for column in predicate.columns_of(where):
            resolver.require(resolver.column(column), FILTERABLE, "in WHERE")
        resolver.check_row_expression(where, "WHERE")
    builder = MeasureBuilder(resolver, qualify=False)
    outputs = outputs_of(query, builder, group_texts)
    if len(relation.branches) > 1 and any(m.order for m in builder.measures):
        raise UnsupportedError(
            "not supported yet: MIN, MAX, MEDIAN or QUANTILE_CONT over a UNION ALL of several "
            "datasets"
        )
    released = disclosure(builder, outputs, domains, [rb.dataset for rb in relation.branches])
    scans = tuple(
        _scan(rb, where, groups, builder.measures, builder.expressions) for rb in relation.branches
    )
    return QueryPlan(
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
        scans=scans,
    )


def _scan(
    rb: ResolvedBranch,
    where: exp.Expression | None,
    groups: list[exp.Expression],
    measures: list[Measure],
    expressions: dict[str, tuple[int, exp.Expression]],
) -> Scan:
    def rename(column: exp.Column) -> str:
        return rb.names[column.name]

    def column_of(name: str | None) -> str | None:
        if name is None or name in expressions:
            return None
        return rb.names[name]

    parts = []
    if rb.branch.where is not None:
        parts.append(predicate.render(rb.branch.where, lambda c: c.name))
    if where is not None:
        parts.append(predicate.render(where, rename))
    filter_sql = " AND ".join(f"({p})" for p in parts) if parts else None
    return Scan(
        party=rb.dataset.owner,
        dataset=rb.dataset.name,
        filter_sql=filter_sql,
        group_sql=tuple(predicate.render(g, rename) for g in groups),
        measure_columns=tuple((column_of(m.column), column_of(m.second)) for m in measures),
        measure_sql=tuple(
            predicate.render(expressions[m.column][1], rename) if m.column in expressions else None
            for m in measures
        ),
    )
