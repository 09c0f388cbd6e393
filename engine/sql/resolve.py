"""Resolve column references against the catalog and check every use against its policy.

A query's relations (datasets, or UNION ALLs of datasets) each get an alias; a column
reference is resolved to (relation, column name) by its qualifier, or, unqualified, to the
one relation that has it. Every use is checked against the column's policy in every
dataset it comes from; each refusal names the column, the dataset, the rule and what would
be allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from engine.catalog import Catalog, ColumnInfo, ColumnType, DatasetInfo
from engine.config import ColumnPolicy
from engine.errors import CatalogMissError, PolicyError, QueryError, UnsupportedError
from engine.sql import predicate
from engine.sql.query import Branch, Relation
from engine.sql.types import check_types

FILTERABLE = frozenset({ColumnPolicy.GROUP_BY, ColumnPolicy.AGGREGATE})
_HINT = {
    ColumnPolicy.HIDDEN: "it is hidden and may not be used at all",
    ColumnPolicy.JOIN_KEY: "it is a join_key and may only link datasets",
    ColumnPolicy.AGGREGATE: "it is an aggregate column and may only be aggregated, filtered "
    "on or bucketed",
    ColumnPolicy.GROUP_BY: "it is a group_by column",
}


@dataclass
class ResolvedBranch:
    branch: Branch
    dataset: DatasetInfo
    names: dict[str, str]  # relation column name -> dataset column name


@dataclass
class ResolvedRelation:
    alias: str
    branches: list[ResolvedBranch] = field(default_factory=list)

    @property
    def single(self) -> bool:
        return len(self.branches) == 1


@dataclass(frozen=True)
class Bound:
    """A resolved column: its relation and its name in that relation."""

    relation: int
    name: str


def resolve_relations(
    relations: tuple[Relation, ...], catalog: Catalog, analyst: str
) -> list[ResolvedRelation]:
    """Look every dataset up, check grants and branch filters, and UNION ALL schemas."""
    out = []
    for relation in relations:
        resolved = ResolvedRelation(
            relation.alias, [_resolve_branch(b, catalog, analyst) for b in relation.branches]
        )
        check_union(resolved.branches)
        out.append(resolved)
    return out


def _resolve_branch(branch: Branch, catalog: Catalog, analyst: str) -> ResolvedBranch:
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
            if col.policy not in FILTERABLE:
                raise PolicyError(
                    f"policy: column {col.name!r} of {dataset.qualified_name} used in WHERE "
                    f"is {col.policy.value}; want a group_by or aggregate column"
                )
        check_types(
            branch.where,
            lambda c: (c.name, dataset.column(c.name).type),
            f"WHERE of {dataset.qualified_name}",
        )
    return ResolvedBranch(branch, dataset, names)


def check_union(branches: list[ResolvedBranch]) -> None:
    """Raise QueryError unless the UNION ALL branches line up by position and type."""
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
            rb.names = {
                out: src
                for (out, _), (_, src) in zip(first.branch.columns, rb.branch.columns, strict=True)
            }
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


class Resolver:
    """Resolves column references of one query and checks their uses."""

    def __init__(self, relations: list[ResolvedRelation]) -> None:
        self.relations = relations

    def column(self, column: exp.Column) -> Bound:
        """Return the relation and name of ``column``; raise QueryError if unknown/ambiguous."""
        qualifier = column.table
        name = column.name
        if qualifier:
            for index, relation in enumerate(self.relations):
                allowed = {relation.alias}
                if relation.single:
                    allowed.add(relation.branches[0].dataset.name)
                if qualifier in allowed:
                    self._check_present(relation, name)
                    return Bound(index, name)
            aliases = ", ".join(r.alias for r in self.relations)
            raise QueryError(
                f"column {column.sql()}: got qualifier {qualifier!r}, want one of {aliases}"
            )
        having = [i for i, r in enumerate(self.relations) if name in r.branches[0].names]
        if not having:
            self._check_present(self.relations[0], name)
        if len(having) > 1:
            raise QueryError(
                f"column {name!r}: ambiguous (in {len(having)} tables), want it qualified "
                "by a table alias"
            )
        self._check_present(self.relations[having[0]], name)
        return Bound(having[0], name)

    @staticmethod
    def _check_present(relation: ResolvedRelation, name: str) -> None:
        for rb in relation.branches:
            if name not in rb.names:
                known = ", ".join(
                    n
                    for n in rb.names
                    if rb.dataset.column(rb.names[n]).policy is not ColumnPolicy.HIDDEN
                )
                raise CatalogMissError(
                    f"column: got {name!r}, want a column of {rb.dataset.qualified_name} "
                    f"as used in this query ({known})"
                )

    def type_of(self, column: exp.Column) -> tuple[str, ColumnType]:
        """Return a key naming ``column`` in the query and its published type (the first
        branch's: UNION ALL branches agree on it, see check_union)."""
        bound = self.column(column)
        return f"{bound.relation}.{bound.name}", self.infos(bound)[0].type

    def check_row_expression(self, node: exp.Expression, where: str) -> None:
        """Raise QueryError unless ``node``'s types fit (engine.sql.types), at plan time."""
        check_types(node, self.type_of, where)

    def infos(self, bound: Bound) -> list[ColumnInfo]:
        relation = self.relations[bound.relation]
        return [rb.dataset.column(rb.names[bound.name]) for rb in relation.branches]

    def require(
        self, bound: Bound, allowed: set[ColumnPolicy] | frozenset[ColumnPolicy], use: str
    ) -> list[ColumnInfo]:
        """Return the column's infos; raise PolicyError if a dataset forbids ``use``."""
        relation = self.relations[bound.relation]
        infos = self.infos(bound)
        for rb, col in zip(relation.branches, infos, strict=True):
            if col.policy in allowed:
                continue
            wanted = " or ".join(sorted(p.value for p in allowed))
            raise PolicyError(
                f"policy: column {col.name!r} of {rb.dataset.qualified_name} used {use}: "
                f"{_HINT[col.policy]}; want a column with policy {wanted}"
            )
        return infos

    def numeric(self, bound: Bound, what: str) -> int:
        """Raise QueryError unless the column is numeric; return its decimals."""
        relation = self.relations[bound.relation]
        infos = self.infos(bound)
        for rb, col in zip(relation.branches, infos, strict=True):
            if not col.type.numeric:
                raise QueryError(
                    f"{what}: column {bound.name!r} of {rb.dataset.qualified_name} has type "
                    f"{col.type.value}, want numeric"
                )
        return max(col.decimals for col in infos)

    def relation_of(self, node: exp.Expression, what: str) -> int | None:
        """Return the one relation all columns of ``node`` belong to (None if no column)."""
        owners = {self.column(c).relation for c in node.find_all(exp.Column)}
        if len(owners) > 1:
            raise UnsupportedError(
                f"not supported yet: {what} {node.sql(dialect='duckdb')!r} on columns of "
                "several tables"
            )
        return owners.pop() if owners else None


def check_group_key(resolver: Resolver, key: exp.Expression) -> int:
    """Check a GROUP BY key (a column, or a bucket expression); return its relation."""
    if isinstance(key, exp.Column):
        bound = resolver.column(key)
        resolver.require(bound, {ColumnPolicy.GROUP_BY}, "in GROUP BY")
        return bound.relation
    text = key.sql(dialect="duckdb")
    predicate.check_safe(key, f"GROUP BY {text!r}", predicate.BUCKETS)
    columns = list(key.find_all(exp.Column))
    if not columns:
        raise QueryError(f"GROUP BY {text!r}: got a constant, want a column or bucket of one")
    for column in columns:
        resolver.require(resolver.column(column), FILTERABLE, f"in GROUP BY {text!r}")
    relation = resolver.relation_of(key, "GROUP BY")
    assert relation is not None
    return relation
