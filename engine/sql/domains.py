"""GROUP BY keys and their public labels: every label comes from the plan, never from data.

A result has one row for every label of its group keys' domains, released or suppressed, so
that neither the presence of a row nor a label can tell anything about the rows. The labels
of a key are decided at plan time, identically at every party, from public facts only:

- a ``group_by`` column: its domain in the catalogue (declared by its owner, or published
  by it once at start-up), with NULL last when the column holds NULLs; over a UNION ALL, the
  union of the branches' domains;
- ``WIDTH_BUCKET(x, lo, hi, n)`` with constant bounds: the buckets ``0 .. n + 1`` (below,
  inside, above), NULL too when x may be NULL;
- ``CASE WHEN … THEN <constant> … [ELSE <constant>] END`` (or ``IF``): its constants, NULL
  too without ELSE; its conditions may read any group_by or aggregate column;
- any other expression of group_by columns only (``birth_year // 10 * 10``): the values it
  takes over the product of their domains, computed by DuckDB at plan time.

An expression of an aggregate column is a group key only through a bucket: otherwise it
would release the column's values as labels (``GROUP BY income + 0``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from engine.catalog import LabelValue
from engine.config import MAX_DOMAIN_LABELS, ColumnPolicy
from engine.errors import CapacityError, PolicyError, QueryError, UnsupportedError
from engine.labels import Label, label_sort_key, label_value, value_sort_key
from engine.sql import predicate
from engine.sql.resolve import FILTERABLE, Resolver
from engine.sql.types import DUCK_TYPES, ENGINE, ENGINE_LOCK

MAX_BUCKETS = 1_000  # buckets of one WIDTH_BUCKET
MAX_GROUPS = 100_000  # result rows of one query (the product of its keys' domains)
MAX_EVALUATED = 100_000  # label combinations an expression of group_by columns is tried on

_FORMS = (
    "want a group_by column, WIDTH_BUCKET(column, low, high, n) with constant bounds, or "
    "CASE WHEN ... THEN <constant> ... END"
)


@dataclass(frozen=True)
class KeyDomain:
    """A GROUP BY key's relation and its public labels, sorted (NULL last)."""

    relation: int
    labels: tuple[LabelValue, ...]


def key_domain(resolver: Resolver, key: exp.Expression) -> KeyDomain:
    """Check a GROUP BY key and return its public labels (see the module docstring).

    Raises PolicyError when the key would release data values as labels, QueryError or
    UnsupportedError for a malformed key, CapacityError for too many labels.
    """
    text = key.sql(dialect="duckdb")
    if isinstance(key, exp.Column):
        bound = resolver.column(key)
        infos = resolver.require(bound, {ColumnPolicy.GROUP_BY}, "in GROUP BY")
        labels: set[LabelValue] = set()
        for info in infos:
            labels.update(info.labels())
        return KeyDomain(bound.relation, _sorted(labels, text))
    predicate.check_safe(key, f"GROUP BY {text!r}", predicate.BUCKETS)
    columns = list(key.find_all(exp.Column))
    if not columns:
        raise QueryError(f"GROUP BY {text!r}: got a constant, want a column or bucket of one")
    for column in columns:
        resolver.require(resolver.column(column), FILTERABLE, f"in GROUP BY {text!r}")
    relation = resolver.relation_of(key, "GROUP BY")
    assert relation is not None
    if isinstance(key, exp.WidthBucket):
        return KeyDomain(relation, _width_bucket(resolver, key, text))
    if isinstance(key, exp.Case | exp.If):
        return KeyDomain(relation, _case(key, text))
    aggregate = [
        c
        for c in columns
        if resolver.infos(resolver.column(c))[0].policy is not ColumnPolicy.GROUP_BY
    ]
    if aggregate:
        raise PolicyError(
            f"policy: GROUP BY {text!r} would release the values of aggregate column "
            f"{aggregate[0].name!r} as group labels; {_FORMS}"
        )
    return KeyDomain(relation, _image(resolver, key, columns, text))


def groups_of(domains: list[KeyDomain]) -> tuple[Label, ...]:
    """Return every label of a result: the product of its keys' domains, sorted.

    Raises CapacityError beyond MAX_GROUPS.
    """
    sizes = [len(d.labels) for d in domains]
    count = 1
    for size in sizes:
        count *= size
    if count > MAX_GROUPS:
        shown = " × ".join(str(s) for s in sizes)
        raise CapacityError(
            f"GROUP BY: got {count} groups ({shown} labels), want at most {MAX_GROUPS}; drop "
            "a key, filter it, or bucket it"
        )
    product = [tuple(p) for p in itertools.product(*(d.labels for d in domains))]
    return tuple(sorted(product, key=label_sort_key))


def _sorted(labels: set[LabelValue] | list[LabelValue], text: str) -> tuple[LabelValue, ...]:
    if len(labels) > MAX_DOMAIN_LABELS:
        raise CapacityError(
            f"GROUP BY {text!r}: got {len(labels)} labels, want at most {MAX_DOMAIN_LABELS}"
        )
    return tuple(sorted(set(labels), key=value_sort_key))


def _constant(node: exp.Expression | None) -> float | None:
    if isinstance(node, exp.Paren):
        return _constant(node.this)
    if isinstance(node, exp.Neg):
        inner = _constant(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    return None


def _width_bucket(resolver: Resolver, key: exp.WidthBucket, text: str) -> tuple[LabelValue, ...]:
    low = _constant(key.args.get("min_value"))
    high = _constant(key.args.get("max_value"))
    count = _constant(key.args.get("num_buckets"))
    if low is None or high is None or count is None:
        raise QueryError(
            f"GROUP BY {text!r}: got bounds or a bucket count that are not constants, want "
            "WIDTH_BUCKET(column, low, high, n) with numbers"
        )
    if not count.is_integer() or not 1 <= count <= MAX_BUCKETS or not low < high:
        raise QueryError(
            f"GROUP BY {text!r}: got low {low:g}, high {high:g}, n {count:g}; want low < high "
            f"and 1 <= n <= {MAX_BUCKETS}"
        )
    value = key.this
    nullable = True
    if isinstance(value, exp.Column):
        nullable = any(info.nullable for info in resolver.infos(resolver.column(value)))
    labels: list[LabelValue] = list(range(int(count) + 2))
    return (*labels, None) if nullable else tuple(labels)


def _case(key: exp.Case | exp.If, text: str) -> tuple[LabelValue, ...]:
    """Return the labels of a CASE (or IF) whose every result is a constant."""
    if isinstance(key, exp.If):
        results = [key.args.get("true"), key.args.get("false")]
    else:
        if key.this is not None:
            raise UnsupportedError(f"not supported yet: CASE <value> WHEN ... in GROUP BY {text!r}")
        results = [branch.args.get("true") for branch in key.args.get("ifs") or []]
        results.append(key.args.get("default"))
    literals: list[str] = []
    for result in results:
        if result is None:
            literals.append("NULL")
            continue
        if (
            not isinstance(result, exp.Literal | exp.Null | exp.Boolean)
            and _constant(result) is None
        ):
            raise PolicyError(
                f"policy: GROUP BY {text!r} has the result {result.sql(dialect='duckdb')!r}, "
                "which is not a constant (it would release data values as labels); want "
                "constant results, e.g. THEN 'high'"
            )
        literals.append(result.sql(dialect="duckdb"))
    # The same CASE shape as the owner's, so DuckDB gives the labels the owner's type.
    whens = " ".join(f"WHEN __k = {i} THEN {lit}" for i, lit in enumerate(literals[:-1]))
    sql = f"SELECT DISTINCT CASE {whens} ELSE {literals[-1]} END FROM range({len(literals)}) t(__k)"
    return _sorted(_evaluate(sql, [], text), text)


def _image(
    resolver: Resolver, key: exp.Expression, columns: list[exp.Column], text: str
) -> tuple[LabelValue, ...]:
    """Return the values an expression of group_by columns takes over their domains."""
    names: dict[str, int] = {}
    domains: list[tuple[LabelValue, ...]] = []
    types: list[str] = []
    for column in columns:
        bound = resolver.column(column)
        ident = f"{bound.relation}.{bound.name}"
        if ident in names:
            continue
        infos = resolver.infos(bound)
        labels: set[LabelValue] = set()
        for info in infos:
            labels.update(info.labels())
        names[ident] = len(domains)
        domains.append(tuple(sorted(labels, key=value_sort_key)))
        types.append(DUCK_TYPES.get(infos[0].type, "VARCHAR"))
    combinations = 1
    for domain in domains:
        combinations *= len(domain)
    if combinations > MAX_EVALUATED:
        raise CapacityError(
            f"GROUP BY {text!r}: got {combinations} combinations of its columns' labels, want "
            f"at most {MAX_EVALUATED}"
        )

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            bound = resolver.column(node)
            return exp.column(f"__c{names[f'{bound.relation}.{bound.name}']}", quoted=True)
        return node

    body = predicate.standard(key.copy().transform(rename)).sql(dialect="duckdb")
    sources = ", ".join(
        f"(SELECT CAST(unnest(?) AS {kind}) AS __c{i})" for i, kind in enumerate(types)
    )
    sql = f"SELECT DISTINCT TRY({body}) FROM {sources}"
    parameters = [[v for v in domain] for domain in domains]
    return _sorted(_evaluate(sql, parameters, text), text)


def _evaluate(sql: str, parameters: Sequence[object], text: str) -> list[LabelValue]:
    with ENGINE_LOCK:
        try:
            rows = ENGINE.execute(sql, parameters).fetchall()
        except duckdb.Error as exc:
            raise QueryError(
                f"GROUP BY {text!r}: cannot be evaluated ({type(exc).__name__}); want an "
                "expression valid for the columns' types"
            ) from None
    out: list[LabelValue] = []
    for (value,) in rows:
        converted = label_value(value)
        assert converted is None or isinstance(converted, str | int | float | bool)
        out.append(converted)
    return out
