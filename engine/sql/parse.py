"""Parse an analyst's SQL into a :class:`ParsedQuery`, rejecting what is not supported.

The grammar accepted (DuckDB dialect, through sqlglot)::

    SELECT item [, item ...]
    FROM source
    [WHERE predicate]
    [GROUP BY column [, column ...]]
    [ORDER BY output [ASC|DESC] [, ...]]
    [LIMIT n]

    source := party.dataset [[AS] alias]
            | ( branch UNION ALL branch [UNION ALL ...] ) [AS] alias
    branch := SELECT * | column [AS name], ... FROM party.dataset [WHERE predicate]
    item   := column [AS name] | aggregate [AS name]
    aggregate := COUNT(*) | COUNT(col) | SUM(col) | AVG(col) | VAR_SAMP(col) | VAR_POP(col)
               | VARIANCE(col) | STDDEV(col) | STDDEV_SAMP(col) | STDDEV_POP(col)

Column references are resolved later, against the catalog, by :mod:`engine.planner`.
Anything else raises :class:`UnsupportedError` naming the construct.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine.errors import CapacityError, QueryError, UnsupportedError

MAX_SQL_BYTES = 64 * 1024
MAX_UNION_BRANCHES = 64
MAX_SELECT_ITEMS = 256


class Aggregate(StrEnum):
    """An aggregate function the engine computes securely."""

    COUNT = "count"  # COUNT(*) when the argument is None
    SUM = "sum"
    AVG = "avg"
    VAR_SAMP = "var_samp"
    VAR_POP = "var_pop"
    STDDEV_SAMP = "stddev_samp"
    STDDEV_POP = "stddev_pop"


_AGGREGATES: dict[type[exp.Expression], Aggregate] = {
    exp.Count: Aggregate.COUNT,
    exp.Sum: Aggregate.SUM,
    exp.Avg: Aggregate.AVG,
    exp.Variance: Aggregate.VAR_SAMP,
    exp.VariancePop: Aggregate.VAR_POP,
    exp.Stddev: Aggregate.STDDEV_SAMP,
    exp.StddevSamp: Aggregate.STDDEV_SAMP,
    exp.StddevPop: Aggregate.STDDEV_POP,
}

# Aggregates that exist in SQL but not (yet) in jointstat: named in the error message.
_LATER_AGGREGATES = (
    exp.Min,
    exp.Max,
    exp.Median,
    exp.Quantile,
    exp.PercentileCont,
    exp.PercentileDisc,
    exp.Corr,
    exp.CovarPop,
    exp.CovarSamp,
    exp.ArrayAgg,
    exp.GroupConcat,
    exp.AnyValue,
    exp.First,
    exp.Last,
    exp.ApproxDistinct,
    exp.CountIf,
    exp.LogicalAnd,
    exp.LogicalOr,
)

_SELECT_ARGS = {"expressions", "from", "from_", "where", "group", "order", "limit", "kind"}
_BRANCH_ARGS = {"expressions", "from", "from_", "where", "kind"}


@dataclass(frozen=True)
class TableRef:
    """A dataset named in SQL as ``party.dataset``."""

    party: str
    dataset: str

    def __str__(self) -> str:
        return f"{self.party}.{self.dataset}"


@dataclass(frozen=True)
class Branch:
    """One input of a relation: a dataset, the columns it contributes, its own filter.

    ``columns`` maps each output name to the dataset column it comes from; ``None`` means
    every column under its own name (``SELECT *`` or a plain table).
    """

    table: TableRef
    columns: tuple[tuple[str, str], ...] | None
    where: exp.Expression | None


@dataclass(frozen=True)
class Relation:
    """A FROM source: one dataset, or a UNION ALL of same-schema datasets."""

    alias: str
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class AggregateCall:
    """An aggregate in the select list; ``argument`` is None for COUNT(*)."""

    function: Aggregate
    argument: exp.Column | None


@dataclass(frozen=True)
class SelectItem:
    """One output column: either a group key (a column) or an aggregate."""

    name: str
    column: exp.Column | None
    aggregate: AggregateCall | None


@dataclass(frozen=True)
class OrderKey:
    """ORDER BY on an output column (by position in the select list)."""

    output: int
    descending: bool


@dataclass(frozen=True)
class ParsedQuery:
    """A supported SELECT, with column references still unresolved."""

    relation: Relation
    select: tuple[SelectItem, ...]
    where: exp.Expression | None
    group_by: tuple[exp.Column, ...]
    order_by: tuple[OrderKey, ...]
    limit: int | None


def _name(node: exp.Expr) -> str:
    return node.sql(dialect="duckdb")


def _check_args(node: exp.Expression, allowed: set[str], where: str) -> None:
    names = {
        "with": "WITH (common table expressions)",
        "with_": "WITH (common table expressions)",
        "distinct": "SELECT DISTINCT",
        "having": "HAVING",
        "qualify": "QUALIFY",
        "windows": "WINDOW",
        "joins": "JOIN",
        "laterals": "LATERAL",
        "offset": "OFFSET",
        "pivots": "PIVOT",
        "sample": "TABLESAMPLE",
    }
    for key, value in node.args.items():
        if key in allowed or value in (None, [], False):
            continue
        construct = names.get(key, key.upper())
        raise UnsupportedError(f"not supported yet: {construct} {where}")


def parse_query(sql: str) -> ParsedQuery:
    """Parse ``sql`` into a ParsedQuery.

    Raises QueryError for malformed SQL and UnsupportedError for constructs outside the
    grammar in this module's docstring.
    """
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise CapacityError(f"SQL: got {len(sql.encode())} bytes, want at most {MAX_SQL_BYTES}")
    try:
        statements = sqlglot.parse(sql, dialect="duckdb")
    except (ParseError, TokenError) as exc:
        raise QueryError(f"SQL syntax: {_first_line(str(exc))}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise QueryError(f"SQL: got {len(statements)} statements, want exactly one SELECT")
    root = statements[0]
    assert root is not None
    if isinstance(root, exp.Union | exp.Intersect | exp.Except):
        raise UnsupportedError(
            "not supported yet: a set operation at the top level; put UNION ALL in FROM"
        )
    if not isinstance(root, exp.Select):
        raise UnsupportedError(f"not supported: {root.key.upper()} statements; want SELECT")
    _check_args(root, _SELECT_ARGS, "in the query")
    relation = _relation(root)
    select = tuple(_select_item(item) for item in root.expressions)
    if not select:
        raise QueryError("SELECT: got no output columns, want at least one")
    if len(select) > MAX_SELECT_ITEMS:
        raise QueryError(f"SELECT: got {len(select)} outputs, want at most {MAX_SELECT_ITEMS}")
    group = root.args.get("group")
    group_by: tuple[exp.Column, ...] = ()
    if group is not None:
        _check_args(group, {"expressions"}, "in GROUP BY")
        group_by = tuple(_group_key(e) for e in group.expressions)
    where_node = root.args.get("where")
    where = where_node.this if where_node is not None else None
    if where is not None:
        _reject_nested(where, "WHERE")
    return ParsedQuery(
        relation=relation,
        select=select,
        where=where,
        group_by=group_by,
        order_by=_order(root, select),
        limit=_limit(root),
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid SQL"


def _from(select: exp.Select) -> exp.Expression:
    node = select.args.get("from_") or select.args.get("from")
    if node is None:
        raise QueryError("FROM: got none, want FROM party.dataset")
    if not isinstance(node, exp.From):
        raise QueryError(f"FROM: got {node.key}, want a table")
    source: exp.Expression = node.this
    return source


def _table(node: exp.Expression, where: str) -> TableRef:
    if not isinstance(node, exp.Table) or isinstance(node.this, exp.Func | exp.Anonymous):
        raise UnsupportedError(f"not supported yet: {node.key.upper()} as a source {where}")
    if node.args.get("catalog") is not None:
        raise QueryError(f"table {_name(node)}: got three name parts, want party.dataset")
    if node.args.get("joins"):
        raise UnsupportedError(f"not supported yet: JOIN {where}")
    party = node.args.get("db")
    if party is None:
        raise QueryError(f"table {node.name!r}: got no party, want party.dataset (e.g. tax.income)")
    return TableRef(party.name, node.name)


def _relation(select: exp.Select) -> Relation:
    source = _from(select)
    if isinstance(source, exp.Table):
        table = _table(source, "in FROM")
        alias = source.alias_or_name
        return Relation(alias, (Branch(table, None, None),))
    if isinstance(source, exp.Subquery):
        inner = source.this
        alias = source.alias or "subquery"
        branches = _union_branches(inner)
        if len(branches) > MAX_UNION_BRANCHES:
            raise QueryError(
                f"UNION ALL: got {len(branches)} branches, want at most {MAX_UNION_BRANCHES}"
            )
        return Relation(alias, tuple(branches))
    raise UnsupportedError(f"not supported yet: {source.key.upper()} in FROM")


def _union_branches(node: exp.Expression) -> list[Branch]:
    if isinstance(node, exp.Union):
        if node.args.get("distinct"):
            raise UnsupportedError("not supported yet: UNION (distinct); use UNION ALL")
        return _union_branches(node.this) + _union_branches(node.expression)
    if isinstance(node, exp.Intersect | exp.Except):
        raise UnsupportedError(f"not supported yet: {node.key.upper()}; use UNION ALL")
    if not isinstance(node, exp.Select):
        raise UnsupportedError(f"not supported yet: {node.key.upper()} as a subquery")
    _check_args(node, _BRANCH_ARGS, "in a UNION ALL branch")
    table = _table(_from(node), "in a UNION ALL branch")
    columns: list[tuple[str, str]] | None = []
    for item in node.expressions:
        if isinstance(item, exp.Star):
            if len(node.expressions) != 1:
                raise UnsupportedError("not supported yet: * mixed with columns in a branch")
            columns = None
            break
        target = item.this if isinstance(item, exp.Alias) else item
        if not isinstance(target, exp.Column) or isinstance(target.this, exp.Star):
            raise UnsupportedError(
                f"not supported yet: expression {_name(item)!r} in a UNION ALL branch; "
                "want plain columns"
            )
        assert columns is not None
        columns.append((item.alias_or_name, target.name))
    where_node = node.args.get("where")
    where = where_node.this if where_node is not None else None
    if where is not None:
        _reject_nested(where, "WHERE of a UNION ALL branch")
    return [Branch(table, tuple(columns) if columns is not None else None, where)]


def _reject_nested(node: exp.Expression, where: str) -> None:
    for sub in node.walk():
        if isinstance(sub, exp.Subquery | exp.Select | exp.Exists):
            raise UnsupportedError(f"not supported yet: subquery in {where}")
        if isinstance(sub, exp.Window):
            raise UnsupportedError(f"not supported yet: window function in {where}")
        if isinstance(sub, exp.AggFunc):
            raise QueryError(f"{where}: got aggregate {_name(sub)!r}, want a row predicate")


def _select_item(item: exp.Expression) -> SelectItem:
    name = item.alias_or_name if isinstance(item, exp.Alias) else _name(item)
    node = item.this if isinstance(item, exp.Alias) else item
    if isinstance(node, exp.Window) or node.find(exp.Window):
        raise UnsupportedError(f"not supported yet: window function {_name(node)!r}")
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return SelectItem(name, node, None)
    if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and node.is_star):
        raise UnsupportedError("not supported: SELECT *; jointstat releases aggregates only")
    return SelectItem(name, None, _aggregate(node))


def _aggregate(node: exp.Expression) -> AggregateCall:
    if isinstance(node, _LATER_AGGREGATES):
        raise UnsupportedError(f"not supported yet: aggregate {node.key.upper()}")
    function = _AGGREGATES.get(type(node))
    if function is None:
        if isinstance(node, exp.AggFunc):
            raise UnsupportedError(f"not supported yet: aggregate {_name(node)!r}")
        raise UnsupportedError(
            f"not supported yet: output {_name(node)!r}; want a group column or an aggregate "
            "(COUNT, SUM, AVG, VAR_SAMP, VAR_POP, STDDEV_SAMP, STDDEV_POP)"
        )
    argument = node.this
    if isinstance(argument, exp.Distinct):
        raise UnsupportedError(f"not supported yet: DISTINCT inside {function.value.upper()}")
    extra = [k for k, v in node.args.items() if k not in ("this", "big_int") and v]
    if extra:
        raise UnsupportedError(f"not supported yet: {_name(node)!r} with extra arguments")
    if function is Aggregate.COUNT and (
        isinstance(argument, exp.Star) or (isinstance(argument, exp.Column) and argument.is_star)
    ):
        return AggregateCall(function, None)
    if not isinstance(argument, exp.Column) or isinstance(argument.this, exp.Star):
        raise UnsupportedError(
            f"not supported yet: expression inside {function.value.upper()} "
            f"({_name(node)!r}); want a plain column"
        )
    return AggregateCall(function, argument)


def _group_key(node: exp.Expression) -> exp.Column:
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return node
    if isinstance(node, exp.Literal):
        raise UnsupportedError("not supported yet: GROUP BY position; name the column")
    raise UnsupportedError(f"not supported yet: GROUP BY expression {_name(node)!r}")


def _order(select: exp.Select, items: tuple[SelectItem, ...]) -> tuple[OrderKey, ...]:
    order = select.args.get("order")
    if order is None:
        return ()
    keys = []
    for ordered in order.expressions:
        node = ordered.this
        index: int | None = None
        if isinstance(node, exp.Literal) and not node.is_string:
            position = int(node.this)
            if not 1 <= position <= len(items):
                raise QueryError(f"ORDER BY: got position {position}, want 1..{len(items)}")
            index = position - 1
        else:
            text = _name(node)
            for i, item in enumerate(items):
                column_name = item.column.name if item.column is not None else None
                if text in (item.name, column_name) or (
                    item.aggregate is not None and text == _aggregate_text(item)
                ):
                    index = i
                    break
        if index is None:
            raise QueryError(f"ORDER BY: got {_name(node)!r}, want an output column")
        keys.append(OrderKey(index, bool(ordered.args.get("desc"))))
    return tuple(keys)


def _aggregate_text(item: SelectItem) -> str:
    assert item.aggregate is not None
    arg = "*" if item.aggregate.argument is None else _name(item.aggregate.argument)
    return f"{item.aggregate.function.value.upper()}({arg})"


def _limit(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if limit is None:
        return None
    value = limit.expression
    if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
        raise QueryError(f"LIMIT: got {_name(value)!r}, want a non-negative integer")
    return int(value.this)
