"""Parse an analyst's SQL into a :class:`ParsedQuery`, rejecting what is not supported.

The grammar accepted (DuckDB dialect, through sqlglot)::

    [EXPLAIN] SELECT item [, item ...]
    FROM source
    [WHERE predicate]
    [GROUP BY group [, group ...]]
    [HAVING condition on outputs]
    [ORDER BY output [ASC|DESC] [, ...]]
    [LIMIT n]

    source := party.dataset [[AS] alias]
            | party.dataset [AS] a JOIN party.dataset [AS] b ON a.key = b.key [JOIN ...]
            | ( branch UNION ALL branch [UNION ALL ...] ) [AS] alias
    branch := SELECT * | column [AS name], ... FROM party.dataset [WHERE predicate]
    group  := column | WIDTH_BUCKET(column, lo, hi, n) | CASE ... END (by alias or expression)
    item   := group [AS name] | aggregate [AS name]
    aggregate := COUNT(*) | COUNT(col) | SUM | AVG | VAR_SAMP | VAR_POP | VARIANCE | STDDEV
               | STDDEV_SAMP | STDDEV_POP | MIN | MAX | MEDIAN | QUANTILE_CONT(col, q)
               | PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY col)
               | COVAR_POP | COVAR_SAMP | CORR | REGR_SLOPE | REGR_INTERCEPT | REGR_R2
               | REGR_COUNT   (the bivariate ones over two columns)

Column references are resolved later, against the catalog, by :mod:`engine.planner` and
:mod:`engine.join_planner`. Anything else raises :class:`UnsupportedError` naming the
construct.
"""

from __future__ import annotations

import re
from fractions import Fraction

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from engine.errors import CapacityError, QueryError, UnsupportedError
from engine.sql.having import encode as encode_having
from engine.sql.query import (
    Aggregate,
    AggregateCall,
    Branch,
    JoinCondition,
    OrderKey,
    ParsedQuery,
    Relation,
    SelectItem,
    TableRef,
    output_index,
)

__all__ = [
    "Aggregate",
    "AggregateCall",
    "Branch",
    "JoinCondition",
    "OrderKey",
    "ParsedQuery",
    "Relation",
    "SelectItem",
    "TableRef",
    "parse_query",
]

MAX_SQL_BYTES = 64 * 1024
MAX_NESTING = 24  # parentheses and CASE blocks inside one another (sqlglot recurses on each)
MAX_UNARY_RUN = 16  # NOT, -, + or ~ in a row
MAX_SQL_TOKENS = 4000  # a 20,000-item IN list (60 KB) took sqlglot 2 s and the plan 20 s
MAX_UNION_BRANCHES = 64
MAX_SELECT_ITEMS = 256
MAX_JOINED_TABLES = 3

# The keywords that start a statement sqlglot knows (INSERT, DROP, SHOW, ...).
_STATEMENT_KEYWORDS = frozenset(DuckDB.parser_class.STATEMENT_PARSERS)

_AGGREGATES: dict[type[exp.Expression], Aggregate] = {
    exp.Count: Aggregate.COUNT,
    exp.Sum: Aggregate.SUM,
    exp.Avg: Aggregate.AVG,
    exp.Variance: Aggregate.VAR_SAMP,
    exp.VariancePop: Aggregate.VAR_POP,
    exp.Stddev: Aggregate.STDDEV_SAMP,
    exp.StddevSamp: Aggregate.STDDEV_SAMP,
    exp.StddevPop: Aggregate.STDDEV_POP,
    exp.Min: Aggregate.MIN,
    exp.Max: Aggregate.MAX,
    exp.Median: Aggregate.MEDIAN,
    exp.PercentileCont: Aggregate.QUANTILE_CONT,
    exp.CovarPop: Aggregate.COVAR_POP,
    exp.CovarSamp: Aggregate.COVAR_SAMP,
    exp.Corr: Aggregate.CORR,
    exp.RegrSlope: Aggregate.REGR_SLOPE,
    exp.RegrIntercept: Aggregate.REGR_INTERCEPT,
    exp.RegrR2: Aggregate.REGR_R2,
    exp.RegrCount: Aggregate.REGR_COUNT,
}

# Aggregates that exist in SQL but not (yet) in jointstat: named in the error message.
_LATER_AGGREGATES = (
    exp.Quantile,
    exp.PercentileDisc,
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

_SELECT_ARGS = {
    "expressions",
    "from",
    "from_",
    "where",
    "group",
    "having",
    "order",
    "limit",
    "kind",
    "joins",
}
_BRANCH_ARGS = {"expressions", "from", "from_", "where", "kind"}
_EXPLAIN = re.compile(r"^\s*explain\s+", re.IGNORECASE)


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


def is_explain(sql: str) -> bool:
    """Return whether ``sql`` asks for an explanation of its plan (EXPLAIN SELECT ...)."""
    return bool(_EXPLAIN.match(sql))


_OPENS = frozenset({TokenType.L_PAREN, TokenType.CASE})
_CLOSES = frozenset({TokenType.R_PAREN, TokenType.END})
_UNARY = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})


def _check_shape(sql: str) -> None:
    """Raise CapacityError if ``sql`` has more than MAX_SQL_TOKENS tokens, nests
    parentheses or CASE blocks deeper than MAX_NESTING or chains more than MAX_UNARY_RUN
    unary operators (sqlglot's recursive parser would exhaust the stack on such text, and
    long SQL costs seconds to parse and plan); QueryError if it does not tokenize. Only
    tokenizes (fast, no recursion), before anything parses the SQL."""
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except TokenError as exc:
        raise QueryError(f"SQL syntax: {_first_line(str(exc))}") from None
    if len(tokens) > MAX_SQL_TOKENS:
        raise CapacityError(
            f"SQL: got {len(tokens)} tokens (words, numbers, symbols), want at most "
            f"{MAX_SQL_TOKENS}"
        )
    depth = run = 0
    for token in tokens:
        kind = token.token_type
        depth += (kind in _OPENS) - (kind in _CLOSES)
        run = run + 1 if kind in _UNARY else 0
        if depth > MAX_NESTING:
            raise CapacityError(
                f"SQL: got parentheses or CASE nested deeper than {MAX_NESTING}, "
                f"want at most {MAX_NESTING} levels"
            )
        if run > MAX_UNARY_RUN:
            raise CapacityError(
                f"SQL: got more than {MAX_UNARY_RUN} unary operators in a row, "
                f"want at most {MAX_UNARY_RUN}"
            )


def _check_width_buckets(root: exp.Expr) -> None:
    """Raise QueryError for a WIDTH_BUCKET call without its four arguments."""
    for call in root.find_all(exp.WidthBucket):
        given = sum(call.args.get(k) is not None for k in _BUCKET_ARGS)
        if given != len(_BUCKET_ARGS):
            raise QueryError(
                f"WIDTH_BUCKET: got {given} arguments, want 4 (value, low, high, buckets)"
            )


_BUCKET_ARGS = ("this", "min_value", "max_value", "num_buckets")


def parse_query(sql: str) -> ParsedQuery:
    """Parse ``sql`` (optionally prefixed by EXPLAIN) into a ParsedQuery.

    Raises QueryError for malformed SQL, CapacityError for oversized or too deeply nested
    SQL and UnsupportedError for constructs outside the grammar in this module's docstring.
    """
    if len(sql.encode()) > MAX_SQL_BYTES:
        raise CapacityError(f"SQL: got {len(sql.encode())} bytes, want at most {MAX_SQL_BYTES}")
    sql = _EXPLAIN.sub("", sql, count=1)  # the coordinator answers EXPLAIN (is_explain)
    _check_shape(sql)
    try:
        statements = sqlglot.parse(sql, dialect="duckdb")
    except (ParseError, TokenError) as exc:
        raise QueryError(f"SQL syntax: {_first_line(str(exc))}") from None
    except RecursionError:  # a nesting _check_shape does not count; never a traceback
        raise CapacityError("SQL: nested too deeply for the parser, want simpler SQL") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise QueryError(f"SQL: got {len(statements)} statements, want exactly one SELECT")
    root = statements[0]
    assert root is not None
    _check_width_buckets(root)
    names = [_display_name(e) for e in root.expressions] if isinstance(root, exp.Select) else []
    fold_identifiers(root)
    if isinstance(root, exp.Union | exp.Intersect | exp.Except):
        raise UnsupportedError(
            "not supported yet: a set operation at the top level; put UNION ALL in FROM"
        )
    if not isinstance(root, exp.Select):
        raise _not_a_select(root, sql)
    _inline_with(root)
    _check_args(root, _SELECT_ARGS, "in the query")
    relations, joins = _sources(root)
    items = zip(root.expressions, names, strict=True)
    select = tuple(_select_item(item, name) for item, name in items)
    if not select:
        raise QueryError("SELECT: got no output columns, want at least one")
    if len(select) > MAX_SELECT_ITEMS:
        raise QueryError(f"SELECT: got {len(select)} outputs, want at most {MAX_SELECT_ITEMS}")
    group = root.args.get("group")
    group_by: tuple[exp.Expression, ...] = ()
    if group is not None:
        _check_args(group, {"expressions"}, "in GROUP BY")
        group_by = tuple(_group_key(e, select) for e in group.expressions)
    select = _bind_groups(select, group_by)
    where_node = root.args.get("where")
    where = where_node.this if where_node is not None else None
    if where is not None:
        _reject_nested(where, "WHERE")
    having_node = root.args.get("having")
    having = having_node.this if having_node is not None else None
    parsed = ParsedQuery(
        relations=relations,
        joins=joins,
        select=select,
        where=where,
        group_by=group_by,
        having=having,
        order_by=_order(root, select),
        limit=_limit(root),
    )
    if having is not None:
        encode_having(parsed)  # one rule: what the plan carries
    return parsed


def fold_identifiers(root: exp.Expr) -> None:
    """Fold unquoted identifiers to lower case, as SQL does; quoted ones stay exact.

    Every name in a federation is lower case (README "Configuration"), so
    ``Housing.Households`` names housing.households and ``"Housing"`` names nothing.
    """
    for identifier in root.find_all(exp.Identifier):
        if not identifier.quoted:
            identifier.set("this", identifier.this.lower())


def _display_name(item: exp.Expression) -> str:
    """Return an output's column name as the analyst wrote it (DuckDB's naming)."""
    if isinstance(item, exp.Alias):
        return item.alias_or_name
    if isinstance(item, exp.Column):
        return item.name  # as DuckDB names it: the column, without its table
    return _name(item)


def _not_a_select(root: exp.Expr, sql: str) -> QueryError:
    """Return the error for SQL that parsed, but not as a SELECT.

    A statement of another kind (INSERT, DROP, SHOW, VALUES, ...) is valid SQL that
    jointstat does not run (UnsupportedError naming the kind); text that sqlglot can only
    read as a bare expression (``SELEC bogus`` is the alias ``bogus`` of a column
    ``SELEC``) is not valid SQL at all (QueryError naming the first word).
    """
    tokens = sqlglot.tokenize(sql, dialect="duckdb")
    if isinstance(root, exp.Query | exp.Command | exp.Values) or (
        tokens and tokens[0].token_type in _STATEMENT_KEYWORDS
    ):
        kind = str(root.this).upper() if isinstance(root, exp.Command) else root.key.upper()
        return UnsupportedError(f"not supported: {kind} statements; want SELECT")
    first = tokens[0].text if tokens else ""
    return QueryError(
        f"SQL syntax: got {first!r} where a statement starts, want SELECT (or EXPLAIN SELECT)"
    )


_CLASS_REPR = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")
_REQUIRED = re.compile(r"Required keyword: '\w+' missing for (\w+)")


def _first_line(text: str) -> str:
    """Return the first line of a sqlglot error, in words (no Python class names)."""
    line = text.strip().splitlines()[0] if text.strip() else "invalid SQL"
    line = _CLASS_REPR.sub(r"\1", line)
    return _REQUIRED.sub(r"incomplete \1 (a required part is missing)", line)


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
    party = node.args.get("db")
    if party is None:
        raise QueryError(f"table {node.name!r}: got no party, want party.dataset (e.g. tax.income)")
    return TableRef(party.name, node.name)


def _sources(select: exp.Select) -> tuple[tuple[Relation, ...], tuple[JoinCondition, ...]]:
    """Return the FROM relations and the equalities joining them."""
    relations = [_relation(_from(select))]
    conditions: list[JoinCondition] = []
    for join in select.args.get("joins") or []:
        side, kind = join.args.get("side"), join.args.get("kind")
        if side:
            raise UnsupportedError(
                f"not supported: {str(side).upper()} OUTER JOIN; jointstat joins are inner "
                "joins (use JOIN ... ON a.key = b.key)"
            )
        if kind and str(kind).upper() != "INNER":
            raise UnsupportedError(f"not supported: {str(kind).upper()} JOIN; want JOIN ... ON")
        if join.args.get("using"):
            raise UnsupportedError("not supported yet: JOIN ... USING; write ON a.key = b.key")
        on = join.args.get("on")
        if on is None:
            raise UnsupportedError("not supported: a JOIN without ON (a cross join)")
        relations.append(_relation(join.this))
        conditions.extend(_equalities(on))
    if len(relations) > MAX_JOINED_TABLES:
        raise UnsupportedError(
            f"not supported yet: joins of {len(relations)} tables; want at most {MAX_JOINED_TABLES}"
        )
    if len(relations) > 1 and any(len(r.branches) > 1 for r in relations):
        raise UnsupportedError("not supported yet: UNION ALL inside a JOIN")
    aliases = [r.alias for r in relations]
    if len(set(aliases)) != len(aliases):
        raise QueryError(f"FROM: got the alias {aliases!r} twice, want distinct table aliases")
    return tuple(relations), tuple(conditions)


def _equalities(on: exp.Expression) -> list[JoinCondition]:
    node = on.unnest() if isinstance(on, exp.Paren) else on
    if isinstance(node, exp.And):
        return _equalities(node.this) + _equalities(node.expression)
    if isinstance(node, exp.EQ):
        left, right = node.this, node.expression
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            return [JoinCondition(left, right)]
    raise UnsupportedError(
        f"not supported: join condition {_name(node)!r}; want equalities of join_key columns "
        "(a non-equi join)"
    )


def _relation(source: exp.Expression) -> Relation:
    if isinstance(source, exp.Table):
        table = _table(source, "in FROM")
        alias = source.alias_or_name
        return Relation(alias, (Branch(table, None, None),))
    if isinstance(source, exp.Subquery):
        inner = source.this
        alias = source.alias or "subquery"
        if isinstance(inner, exp.Select):
            _check_derived(inner)
        branches = _union_branches(inner)
        if len(branches) > MAX_UNION_BRANCHES:
            raise QueryError(
                f"UNION ALL: got {len(branches)} branches, want at most {MAX_UNION_BRANCHES}"
            )
        return Relation(alias, tuple(branches))
    raise UnsupportedError(f"not supported yet: {source.key.upper()} in FROM")


def _check_derived(select: exp.Select) -> None:
    """Refuse a derived table (a subquery in FROM, or WITH) that does more than select,
    rename and filter the columns of one dataset, with a message saying so."""
    doing = [
        words
        for key, words in (
            ("group", "GROUP BY"),
            ("having", "HAVING"),
            ("order", "ORDER BY"),
            ("limit", "LIMIT"),
            ("distinct", "DISTINCT"),
            ("joins", "JOIN"),
        )
        if select.args.get(key)
    ]
    if any(e.find(exp.AggFunc) for e in select.expressions):
        doing.insert(0, "aggregates")
    if doing:
        raise UnsupportedError(
            f"not supported yet: a subquery in FROM with {', '.join(doing)}; want one that "
            "only selects, renames and filters columns of one dataset (SELECT col [AS name], "
            "... FROM party.dataset [WHERE ...]), with the aggregates in the outer query"
        )


def _inline_with(root: exp.Expression) -> None:
    """Replace each reference to a WITH table by its query (a derived table); drop WITH.

    Later WITH tables may use earlier ones. What a derived table may do is checked where
    it is used (:func:`_check_derived`).
    """
    with_node = root.args.get("with_") or root.args.get("with")
    if with_node is None:
        return
    if with_node.args.get("recursive"):
        raise UnsupportedError("not supported: WITH RECURSIVE")
    tables: dict[str, exp.Expression] = {}

    def inline(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in tables:
            alias = node.alias or node.name
            return exp.Subquery(
                this=tables[node.name].copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
        return node

    for cte in with_node.expressions:
        name = cte.alias_or_name
        if name in tables:
            raise QueryError(f"WITH: got the name {name!r} twice, want distinct names")
        body = cte.this
        tables[name] = body.transform(inline) if tables else body
    root.set("with_", None)
    root.set("with", None)
    for key in ("from_", "from", "joins"):
        value = root.args.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            root.set(key, [v.transform(inline) for v in value])
        else:
            root.set(key, value.transform(inline))


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
    source = _from(node)
    if isinstance(source, exp.Subquery):  # a derived table inside: compose with it
        if isinstance(source.this, exp.Select):
            _check_derived(source.this)
        outer = _branch_of(node, TableRef("", ""))
        return [_compose(outer, inner) for inner in _union_branches(source.this)]
    return [_branch_of(node, _table(source, "in a UNION ALL branch"))]


def _compose(outer: Branch, inner: Branch) -> Branch:
    """Return the branch selecting ``outer``'s columns and rows from ``inner``'s."""
    names = dict(inner.columns) if inner.columns is not None else None

    def source(name: str) -> str:
        if names is None:
            return name
        if name not in names:
            raise QueryError(
                f"column: got {name!r}, want a column of the subquery ({', '.join(names)})"
            )
        return names[name]

    columns = (
        inner.columns
        if outer.columns is None
        else tuple((out, source(name)) for out, name in outer.columns)
    )
    where = inner.where
    if outer.where is not None:

        def rename(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                return exp.column(source(node.name))
            return node

        renamed = outer.where.copy().transform(rename)
        if where is not None:
            renamed = exp.And(this=exp.paren(where), expression=exp.paren(renamed))
        where = renamed
    return Branch(inner.table, columns, where)


def _branch_of(node: exp.Select, table: TableRef) -> Branch:
    """Return the branch of one SELECT over ``table``: its columns and its filter."""
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
    return Branch(table, tuple(columns) if columns is not None else None, where)


def _reject_nested(node: exp.Expression, where: str) -> None:
    for sub in node.walk():
        if isinstance(sub, exp.Subquery | exp.Select | exp.Exists):
            raise UnsupportedError(f"not supported yet: subquery in {where}")
        if isinstance(sub, exp.Window):
            raise UnsupportedError(f"not supported yet: window function in {where}")
        if isinstance(sub, exp.AggFunc):
            raise QueryError(f"{where}: got aggregate {_name(sub)!r}, want a row predicate")


def _select_item(item: exp.Expression, name: str) -> SelectItem:
    key = _display_name(item)  # folded
    node = item.this if isinstance(item, exp.Alias) else item
    if isinstance(node, exp.Window) or node.find(exp.Window):
        raise UnsupportedError(f"not supported yet: window function {_name(node)!r}")
    if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and node.is_star):
        raise UnsupportedError("not supported: SELECT *; jointstat releases aggregates only")
    if isinstance(node, exp.AggFunc | exp.WithinGroup) or node.find(exp.AggFunc):
        return SelectItem(name, None, _aggregate(node), _name(node), key)
    if isinstance(node, exp.Subquery | exp.Select) or node.find(exp.Select):
        raise UnsupportedError("not supported yet: subquery in SELECT")
    return SelectItem(name, node, None, _name(node), key)


def _column_argument(node: exp.Expression | None, function: Aggregate, what: str) -> exp.Column:
    if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
        shown = _name(node) if node is not None else "nothing"
        raise UnsupportedError(
            f"not supported yet: {what} {shown!r} in {function.value.upper()}; want a plain column"
        )
    return node


def _fraction(node: exp.Expression | None, function: Aggregate) -> Fraction:
    if not isinstance(node, exp.Literal) or node.is_string:
        raise QueryError(f"{function.value.upper()}: got a non-constant fraction, want 0 <= q <= 1")
    value = Fraction(node.this)
    if not 0 <= value <= 1:
        raise QueryError(f"{function.value.upper()}: got q = {node.this}, want 0 <= q <= 1")
    return value


_ROW_EXPRESSION_AGGREGATES = frozenset(
    {
        Aggregate.COUNT,
        Aggregate.SUM,
        Aggregate.AVG,
        Aggregate.VAR_SAMP,
        Aggregate.VAR_POP,
        Aggregate.STDDEV_SAMP,
        Aggregate.STDDEV_POP,
    }
)


def _filtered(node: exp.Filter) -> exp.Expression:
    """Return ``AGG(x) FILTER (WHERE c)`` as ``AGG(CASE WHEN c THEN x END)`` (the same
    rows: the aggregates here skip NULLs), ``COUNT(*)`` as ``COUNT(CASE WHEN c THEN 1 END)``."""
    inner: exp.Expression = node.this
    where = node.expression
    function = _AGGREGATES.get(type(inner))
    if function not in _ROW_EXPRESSION_AGGREGATES or isinstance(inner.this, exp.Distinct):
        raise UnsupportedError(
            f"not supported yet: FILTER on {_name(inner)!r}; want it on COUNT, SUM, AVG, "
            "VAR_* or STDDEV_*"
        )
    condition = where.this if isinstance(where, exp.Where) else where
    _reject_nested(condition, "FILTER")
    argument = inner.this
    if function is Aggregate.COUNT and (
        isinstance(argument, exp.Star) or (isinstance(argument, exp.Column) and argument.is_star)
    ):
        argument = exp.Literal.number(1)
    case = exp.Case(ifs=[exp.If(this=condition.copy(), true=argument.copy())])
    rewritten = inner.copy()
    rewritten.set("this", case)
    return rewritten


def _aggregate(node: exp.Expression) -> AggregateCall:
    if isinstance(node, exp.Filter):
        node = _filtered(node)
    if isinstance(node, exp.WithinGroup):
        inner, order = node.this, node.expression
        if not isinstance(inner, exp.PercentileCont) or not isinstance(order, exp.Order):
            raise UnsupportedError(f"not supported yet: aggregate {_name(node)!r}")
        if len(order.expressions) != 1 or order.expressions[0].args.get("desc"):
            raise UnsupportedError("not supported yet: WITHIN GROUP with several or DESC keys")
        column = _column_argument(order.expressions[0].this, Aggregate.QUANTILE_CONT, "ordering")
        return AggregateCall(
            Aggregate.QUANTILE_CONT, column, None, _fraction(inner.this, Aggregate.QUANTILE_CONT)
        )
    if isinstance(node, _LATER_AGGREGATES):
        label = (
            "QUANTILE_DISC"
            if isinstance(node, exp.Quantile | exp.PercentileDisc)
            else (node.key.upper())
        )
        raise UnsupportedError(f"not supported yet: aggregate {label}; use QUANTILE_CONT")
    function = _AGGREGATES.get(type(node))
    if function is None:
        if isinstance(node, exp.AggFunc):
            raise UnsupportedError(f"not supported yet: aggregate {_name(node)!r}")
        raise UnsupportedError(
            f"not supported yet: expression {_name(node)!r} around an aggregate; want a group "
            "key or a plain aggregate"
        )
    argument = node.this
    if isinstance(argument, exp.Distinct):
        values = argument.expressions
        if function is not Aggregate.COUNT or len(values) != 1:
            raise UnsupportedError(
                f"not supported yet: DISTINCT inside {function.value.upper()}; want "
                "COUNT(DISTINCT column)"
            )
        column = _column_argument(values[0], function, "argument")
        return AggregateCall(function, column, distinct=True)
    if function is Aggregate.COUNT and (
        isinstance(argument, exp.Star) or (isinstance(argument, exp.Column) and argument.is_star)
    ):
        return AggregateCall(function, None)
    if function is Aggregate.QUANTILE_CONT:
        column = _column_argument(argument, function, "argument")
        return AggregateCall(
            function, column, None, _fraction(node.args.get("expression"), function)
        )
    if function.bivariate:
        y = _column_argument(argument, function, "argument")
        x = _column_argument(node.args.get("expression"), function, "second argument")
        return AggregateCall(function, y, x)
    extra = [k for k, v in node.args.items() if k not in ("this", "big_int") and v]
    if extra:
        raise UnsupportedError(f"not supported yet: {_name(node)!r} with extra arguments")
    if not isinstance(argument, exp.Column) and function in _ROW_EXPRESSION_AGGREGATES:
        if argument is None:
            raise QueryError(f"{function.value.upper()}: got no argument, want a column")
        _reject_nested(argument, f"{function.value.upper()}")
        return AggregateCall(function, None, expression=argument)
    return AggregateCall(function, _column_argument(argument, function, "argument"))


def _group_key(node: exp.Expression, select: tuple[SelectItem, ...]) -> exp.Expression:
    """Return a GROUP BY key, resolving positions and select aliases to expressions."""
    if isinstance(node, exp.Literal) and not node.is_string:
        position = int(node.this)
        if not 1 <= position <= len(select) or select[position - 1].group is None:
            raise QueryError(f"GROUP BY: got position {position}, want a non-aggregate output")
        group = select[position - 1].group
        assert group is not None
        return group
    if isinstance(node, exp.Column) and not node.table:
        for item in select:
            if item.key == node.name and item.group is not None:
                return item.group
    if node.find(exp.AggFunc):
        raise QueryError(f"GROUP BY: got aggregate {_name(node)!r}, want a row expression")
    return node


def _bind_groups(
    select: tuple[SelectItem, ...], group_by: tuple[exp.Expression, ...]
) -> tuple[SelectItem, ...]:
    """Check that every non-aggregate output is a GROUP BY key."""
    keys = {_name(g) for g in group_by}
    for item in select:
        if item.group is not None and _name(item.group) not in keys:
            if not group_by:
                raise QueryError(
                    f"output {item.name!r}: got a plain column without GROUP BY, want it in "
                    "GROUP BY or inside an aggregate"
                )
            raise QueryError(
                f"output {item.name!r}: got an expression that is not in GROUP BY, want a "
                "group key or an aggregate"
            )
    return select


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
            index = output_index(node, items)
        if index is None:
            raise QueryError(f"ORDER BY: got {_name(node)!r}, want an output column")
        keys.append(OrderKey(index, bool(ordered.args.get("desc"))))
    return tuple(keys)


def _limit(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if limit is None:
        return None
    value = limit.expression
    if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
        raise QueryError(f"LIMIT: got {_name(value)!r}, want a non-negative integer")
    return int(value.this)
