"""Resolve a parsed query against the catalog, enforce the policies, and build its plan.

Rules enforced here (each refusal names the column and the rule):

- every dataset exists, is available, and the analyst is granted it;
- ``hidden`` columns are never usable; ``join_key`` columns only link datasets (never
  output, filtered, grouped or aggregated);
- GROUP BY only on ``group_by`` columns; outputs are group columns or aggregates;
- SUM/AVG/VAR/STDDEV only on numeric ``aggregate`` or ``group_by`` columns;
- WHERE predicates use ``group_by`` or ``aggregate`` columns and the safe SQL subset of
  :mod:`engine.sql.predicate`; they are pushed down to each owner and run in plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from engine.catalog import Catalog, ColumnInfo, DatasetInfo
from engine.config import ColumnPolicy
from engine.errors import PolicyError, QueryError
from engine.plan import COMPONENT_ORDER, Measure, Output, QueryPlan, Scan
from engine.sql import predicate
from engine.sql.parse import Aggregate, Branch, ParsedQuery, parse_query

_NEEDS: dict[Aggregate, tuple[str, ...]] = {
    Aggregate.COUNT: ("n",),
    Aggregate.SUM: ("n", "s"),
    Aggregate.AVG: ("n", "s"),
    Aggregate.VAR_SAMP: ("n", "s", "q"),
    Aggregate.VAR_POP: ("n", "s", "q"),
    Aggregate.STDDEV_SAMP: ("n", "s", "q"),
    Aggregate.STDDEV_POP: ("n", "s", "q"),
}


@dataclass(frozen=True)
class _ResolvedBranch:
    branch: Branch
    dataset: DatasetInfo
    names: dict[str, str]  # relation column name -> dataset column name


def plan_query(sql: str, catalog: Catalog, analyst: str) -> QueryPlan:
    """Parse, check and plan ``sql`` for ``analyst``.

    Raises QueryError / UnsupportedError for malformed or unsupported SQL and PolicyError
    when a policy or grant forbids the query.
    """
    return build_plan(parse_query(sql), catalog, analyst)


def build_plan(query: ParsedQuery, catalog: Catalog, analyst: str) -> QueryPlan:
    """Return the plan of an already parsed query (see :func:`plan_query`)."""
    branches = [_resolve_branch(b, catalog, analyst) for b in query.relation.branches]
    _check_union(branches)
    alias = query.relation.alias

    def relation_column(column: exp.Column) -> str:
        qualifier = column.table
        single = len(branches) == 1
        allowed = {alias} | ({branches[0].dataset.name} if single else set())
        if qualifier and qualifier not in allowed:
            raise QueryError(
                f"column {column.sql()}: got qualifier {qualifier!r}, "
                f"want {' or '.join(sorted(allowed))}"
            )
        name = column.name
        for rb in branches:
            if name not in rb.names:
                known = ", ".join(rb.names)
                raise QueryError(
                    f"column: got {name!r}, want a column of {rb.dataset.qualified_name} "
                    f"as used in this query ({known})"
                )
        return name

    def info(name: str) -> list[ColumnInfo]:
        return [rb.dataset.column(rb.names[name]) for rb in branches]

    def require(name: str, allowed: set[ColumnPolicy], use: str) -> list[ColumnInfo]:
        infos = info(name)
        for rb, col in zip(branches, infos, strict=True):
            if col.policy in allowed:
                continue
            wanted = " or ".join(sorted(p.value for p in allowed))
            hint = {
                ColumnPolicy.HIDDEN: "it is hidden and may not be used at all",
                ColumnPolicy.JOIN_KEY: "it is a join_key and may only link datasets",
                ColumnPolicy.AGGREGATE: "it is an aggregate column and may only be aggregated "
                "or filtered on",
                ColumnPolicy.GROUP_BY: "it is a group_by column",
            }[col.policy]
            raise PolicyError(
                f"policy: column {col.name!r} of {rb.dataset.qualified_name} used {use}: "
                f"{hint}; want a {wanted} column"
            )
        return infos

    # GROUP BY
    group_names: list[str] = []
    for key in query.group_by:
        name = relation_column(key)
        require(name, {ColumnPolicy.GROUP_BY}, "in GROUP BY")
        if name not in group_names:
            group_names.append(name)

    # WHERE: every column must be filterable; the whole predicate runs at each owner.
    where = query.where
    if where is not None:
        predicate.check_safe(where, "WHERE")
        for column in predicate.columns_of(where):
            name = relation_column(column)
            require(name, {ColumnPolicy.GROUP_BY, ColumnPolicy.AGGREGATE}, "in WHERE")

    # SELECT
    measures: list[Measure] = []
    measure_keys: list[str | None] = []
    outputs: list[Output] = []
    for item in query.select:
        if item.column is not None:
            name = relation_column(item.column)
            if name not in group_names:
                if not group_names:
                    raise QueryError(
                        f"output {item.name!r}: got a plain column without GROUP BY, "
                        "want it in GROUP BY or inside an aggregate"
                    )
                raise QueryError(
                    f"output {item.name!r}: got a column that is not in GROUP BY, "
                    f"want one of {', '.join(group_names)} or an aggregate"
                )
            outputs.append(Output(item.name, group_names.index(name), None, None))
            continue
        assert item.aggregate is not None
        call = item.aggregate
        column_name: str | None = None
        decimals = 0
        if call.argument is not None:
            column_name = relation_column(call.argument)
            use = f"in {call.function.value.upper()}"
            cols = require(column_name, {ColumnPolicy.AGGREGATE, ColumnPolicy.GROUP_BY}, use)
            if call.function is not Aggregate.COUNT:
                for rb, col in zip(branches, cols, strict=True):
                    if not col.type.numeric:
                        raise QueryError(
                            f"{call.function.value.upper()}({column_name}): column of "
                            f"{rb.dataset.qualified_name} has type {col.type.value}, want numeric"
                        )
                decimals = max(col.decimals for col in cols)
        needs = _NEEDS[call.function]
        if column_name in measure_keys:
            index = measure_keys.index(column_name)
            old = measures[index]
            merged = tuple(c for c in COMPONENT_ORDER if c in old.components or c in needs)
            measures[index] = Measure(column_name, merged, max(old.decimals, decimals))
        else:
            index = len(measures)
            measure_keys.append(column_name)
            measures.append(Measure(column_name, needs, decimals))
        outputs.append(Output(item.name, None, call.function, index))
    if not any(o.function is not None for o in outputs):
        raise QueryError(
            "SELECT: got no aggregate, want at least one (jointstat releases aggregates only)"
        )

    scans = tuple(_scan(rb, where, group_names, measure_keys) for rb in branches)
    return QueryPlan(
        scans=scans,
        group_names=tuple(group_names),
        measures=tuple(measures),
        outputs=tuple(outputs),
        min_group_size=max(rb.dataset.min_group_size for rb in branches),
        order_by=tuple((k.output, k.descending) for k in query.order_by),
        limit=query.limit,
    )


def _resolve_branch(branch: Branch, catalog: Catalog, analyst: str) -> _ResolvedBranch:
    dataset = catalog.dataset(branch.table.party, branch.table.dataset)
    dataset.check_analyst(analyst)
    if branch.columns is None:
        names = {c.name: c.name for c in dataset.columns}
    else:
        names = {}
        for out, source in branch.columns:
            dataset.column(source)
            names[out] = source
    if branch.where is not None:
        predicate.check_safe(branch.where, f"WHERE of {dataset.qualified_name}")
        for column in predicate.columns_of(branch.where):
            col = dataset.column(column.name)
            if col.policy not in (ColumnPolicy.GROUP_BY, ColumnPolicy.AGGREGATE):
                raise PolicyError(
                    f"policy: column {col.name!r} of {dataset.qualified_name} used in WHERE "
                    f"is {col.policy.value}; want a group_by or aggregate column"
                )
    return _ResolvedBranch(branch, dataset, names)


def _check_union(branches: list[_ResolvedBranch]) -> None:
    if len(branches) < 2:
        return
    first = branches[0]
    first_names = list(first.names)
    for rb in branches[1:]:
        if rb.branch.columns is not None and first.branch.columns is not None:
            if len(rb.branch.columns) != len(first.branch.columns):
                raise QueryError(
                    f"UNION ALL: {rb.dataset.qualified_name} gives {len(rb.branch.columns)} "
                    f"columns, want {len(first.branch.columns)} like the first branch"
                )
            # SQL matches UNION ALL columns by position and names them after the first branch.
            rb.names.clear()
            rb.names.update(
                {
                    out: src
                    for (out, _), (_, src) in zip(
                        first.branch.columns, rb.branch.columns, strict=True
                    )
                }
            )
        elif list(rb.names) != first_names:
            raise QueryError(
                f"UNION ALL: {rb.dataset.qualified_name} has columns ({', '.join(rb.names)}), "
                f"want the same columns in the same order as {first.dataset.qualified_name} "
                f"({', '.join(first_names)})"
            )
        for name in first_names:
            a = first.dataset.column(first.names[name]).type
            b = rb.dataset.column(rb.names[name]).type
            if a.numeric != b.numeric or (not a.numeric and a != b):
                raise QueryError(
                    f"UNION ALL: column {name!r} is {a.value} in {first.dataset.qualified_name} "
                    f"but {b.value} in {rb.dataset.qualified_name}, want the same type"
                )


def _scan(
    rb: _ResolvedBranch,
    where: exp.Expression | None,
    group_names: list[str],
    measure_keys: list[str | None],
) -> Scan:
    parts = []
    if rb.branch.where is not None:
        parts.append(predicate.render(rb.branch.where, lambda c: c.name))
    if where is not None:
        parts.append(predicate.render(where, lambda c: rb.names[c.name]))
    filter_sql = " AND ".join(f"({p})" for p in parts) if parts else None
    return Scan(
        party=rb.dataset.owner,
        dataset=rb.dataset.name,
        filter_sql=filter_sql,
        group_columns=tuple(rb.names[g] for g in group_names),
        measure_columns=tuple(None if k is None else rb.names[k] for k in measure_keys),
    )
