"""Differential testing: seeded valid queries over tests/engine/agencies.py vs DuckDB.

:func:`check` runs one query on the live daemons and in DuckDB over the pooled plaintext
(:mod:`engine.oracle`) and returns the disagreements: counts and sums of integer columns
equal, other values within the oracle's tolerance (relative 1e-9), a cell suppressed
exactly when fewer than MIN_GROUP_SIZE rows contribute, every label of the groups' public
domains a row (a group absent from DuckDB's answer comes back all-suppressed), HAVING
keeping the rows DuckDB keeps (a suppressed cell makes its comparison unknown), ORDER BY
in order and LIMIT a prefix.

:class:`Generator` builds the queries: every aggregate alone and several in one SELECT,
WHERE forms (comparisons, AND/OR/NOT, IN, BETWEEN, IS [NOT] NULL, LIKE, arithmetic, and in
a join conditions across agencies), GROUP BY columns (text, boolean, integer), WIDTH_BUCKET
and CASE, HAVING, ORDER BY and LIMIT, over one dataset, a UNION ALL of two agencies' and
joins of two and three agencies.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.client import SUPPRESSED, Client, Result
from engine.errors import EngineError
from engine.oracle import OracleResult, PlaintextOracle, compare
from engine.sql.parse import parse_query
from engine.sql.query import Aggregate, ParsedQuery

from .agencies import MIN_GROUP_SIZE, SURVEY, SURVEYS, TABLES, Column

INTEGER_COLUMNS = frozenset(
    c.name
    for t in (*TABLES, *SURVEYS)
    for c in t.columns
    if c.kind != "key" and not c.text and c.decimals == 0
)


def _exact(query_sql: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return the positions of the group outputs and of the outputs that must be exact."""
    parsed = parse_query(query_sql)
    groups, exact = [], []
    for i, item in enumerate(parsed.select):
        if item.aggregate is None:
            groups.append(i)
            continue
        call = item.aggregate
        if call.function in (Aggregate.COUNT, Aggregate.REGR_COUNT) or (
            call.function is Aggregate.SUM
            and call.argument is not None
            and call.argument.name in INTEGER_COLUMNS
        ):
            exact.append(i)
    return tuple(groups), tuple(exact)


def _without(sql: str, *clauses: str) -> str:
    """Return ``sql`` without its trailing HAVING / ORDER BY / LIMIT clauses named."""
    parts = re.split(r"\s+(?=(?:HAVING|ORDER BY|LIMIT)\s)", sql)
    head, tails = parts[0], parts[1:]
    kept = [t for t in tails if not any(t.upper().startswith(c) for c in clauses)]
    return " ".join([head, *kept])


def _order_problems(result: Result, order: Sequence[tuple[int, bool]]) -> list[str]:
    def key(row: Sequence[object]) -> list[tuple[int, object]]:
        out: list[tuple[int, object]] = []
        for output, _ in order:
            value = row[output]
            out.append((1, 0) if value is None or value is SUPPRESSED else (0, value))
        return out

    problems = []
    for a, b in zip(result.rows, result.rows[1:], strict=False):
        for (fa, va), (fb, vb), (_, descending) in zip(key(a), key(b), order, strict=True):
            if fa != fb:
                if fa > fb:
                    problems.append(f"ORDER BY: a missing value before a present one: {a} {b}")
                break
            if fa == 1 or va == vb:
                continue
            assert isinstance(va, int | float | str) and isinstance(vb, int | float | str)
            if (va > vb) != descending:  # type: ignore[operator]
                problems.append(f"ORDER BY: rows out of order: {a} then {b}")
            break
    return problems


def check(client: Client, oracle: PlaintextOracle, sql: str) -> list[str]:
    """Return the disagreements of one query's secure answer with DuckDB's (see module)."""
    parsed = parse_query(sql)
    groups, exact = _exact(sql)
    secure = client.query(sql)
    problems: list[str] = []
    base_sql = _without(sql, "HAVING", "ORDER BY", "LIMIT")
    base = oracle.run(base_sql)
    if len(secure.columns) != len(base.columns):
        return [f"columns: got {secure.columns}, want {base.columns}"]
    full = secure
    if parsed.limit is not None:
        full = client.query(_without(sql, "LIMIT"))
        if secure.rows != full.rows[: parsed.limit]:
            problems.append(f"LIMIT {parsed.limit}: got {secure.rows}, want {full.rows}")
    if parsed.order_by:
        problems += _order_problems(full, [(k.output, k.descending) for k in parsed.order_by])
    if parsed.having is not None:
        problems += _having_problems(full, base, oracle, sql, groups)
        kept = {tuple(r[i] for i in groups) for r in full.rows}
        pairs = [
            (r, c)
            for r, c in zip(base.rows, base.counts, strict=True)
            if tuple(r[i] for i in groups) in kept
        ]
        base = OracleResult(
            base.columns,
            tuple(r for r, _ in pairs),
            tuple(c for _, c in pairs),
            base.seconds,
        )
    problems += compare(
        full, _constant_y(parsed, full, base, groups), groups, MIN_GROUP_SIZE, exact
    )
    return problems


def _constant_y(
    parsed: ParsedQuery, secure: Result, base: OracleResult, groups: Sequence[int]
) -> OracleResult:
    """Return DuckDB's answer with README's one documented difference applied: REGR_R2 of
    a constant y is 1 in DuckDB and NULL (undefined) here."""
    r2 = [
        i
        for i, item in enumerate(parsed.select)
        if item.aggregate is not None and item.aggregate.function is Aggregate.REGR_R2
    ]
    if not r2:
        return base
    got = {tuple(r[i] for i in groups): r for r in secure.rows}
    rows = []
    for row in base.rows:
        mine = got.get(tuple(row[i] for i in groups))
        rows.append(
            tuple(
                None if i in r2 and v == 1.0 and mine is not None and mine[i] is None else v
                for i, v in enumerate(row)
            )
        )
    return OracleResult(base.columns, tuple(rows), base.counts, base.seconds)


def _having_problems(
    secure: Result, base: OracleResult, oracle: PlaintextOracle, sql: str, groups: Sequence[int]
) -> list[str]:
    """Rows kept by HAVING: a subset of DuckDB's, and all of those whose cells are released."""
    having = oracle.run(_without(sql, "ORDER BY", "LIMIT"))
    wanted = {tuple(r[i] for i in groups) for r in having.rows}
    counts = {tuple(r[i] for i in groups): c for r, c in zip(base.rows, base.counts, strict=True)}
    got = {tuple(r[i] for i in groups): r for r in secure.rows}
    problems = []
    for group, row in got.items():
        empty = all(v is SUPPRESSED for i, v in enumerate(row) if i not in groups)
        if group not in wanted and not (empty and group not in counts):
            problems.append(f"HAVING kept group {group}, DuckDB drops it")
    values = {tuple(r[i] for i in groups): r for r in base.rows}
    for group in wanted - set(got):
        released = all(
            isinstance(n, int) and n >= MIN_GROUP_SIZE
            for i, n in enumerate(counts.get(group, ()))
            if i not in groups
        )
        # DuckDB's NaN (an undefined statistic, NULL here) compares greater than any number
        undefined = any(isinstance(v, float) and math.isnan(v) for v in values[group])
        if released and not undefined:
            problems.append(f"HAVING dropped group {group} whose cells are all released")
    return problems


# -- the generator ----------------------------------------------------------------------

UNIVARIATE = (
    "SUM",
    "AVG",
    "VAR_SAMP",
    "VAR_POP",
    "STDDEV_SAMP",
    "STDDEV_POP",
    "VARIANCE",
    "STDDEV",
)
BIVARIATE = (
    "COVAR_POP",
    "COVAR_SAMP",
    "CORR",
    "REGR_SLOPE",
    "REGR_INTERCEPT",
    "REGR_R2",
    "REGR_COUNT",
)
ORDERED = ("MIN", "MAX", "MEDIAN", "QUANTILE_CONT", "PERCENTILE_CONT")
ORDER_COLUMNS = frozenset({"score", "wage", "cost"})


@dataclass
class Source:
    """The FROM clause of a query and the columns it offers, by qualified name."""

    sql: str
    columns: list[tuple[str, Column, int]] = field(default_factory=list)  # (ref, col, rel)
    join: bool = False
    union: bool = False
    one_dataset: bool = True
    prefix: str = ""  # WITH ...


class Generator:
    """Builds valid queries from a seed (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def source(self) -> Source:
        rng = self.rng
        shape = rng.choices(["one", "with", "union", "join2", "join3"], weights=[4, 1, 2, 3, 1])[0]
        if shape == "with":  # a derived table that filters and renames one dataset
            table = rng.choice(TABLES)
            columns = [c for c in table.columns if c.kind != "key"]
            inner = Source(table.qualified, [(c.name, c, 0) for c in columns])
            condition = self.condition(inner, [c for c in inner.columns if not c[1].text])
            picked = rng.sample(columns, rng.randint(3, len(columns)))
            if not any(c.kind == "group" for c in picked):  # something to group by
                picked.append(next(c for c in columns if c.kind == "group"))
            items = ", ".join(f"{c.name} AS {c.name}_" for c in picked)
            renamed = [(f"{c.name}_", c, 0) for c in picked]
            if rng.random() < 0.5:
                return Source(
                    "d",
                    renamed,
                    prefix=f"WITH d AS (SELECT {items} FROM {table.qualified} WHERE {condition}) ",
                )
            return Source(f"(SELECT {items} FROM {table.qualified} WHERE {condition}) d", renamed)
        if shape == "one":
            table = rng.choice(TABLES)
            alias = rng.choice(["", " AS t", " x"])
            qualifier = alias.split()[-1] + "." if alias and rng.random() < 0.5 else ""
            return Source(
                f"{table.qualified}{alias}",
                [(f"{qualifier}{c.name}", c, 0) for c in table.columns if c.kind != "key"],
            )
        if shape == "union":
            filters = ["", " WHERE size > 2", " WHERE owner", " WHERE region <> 'hills'"]
            left, right = rng.choice(filters), rng.choice(filters)
            sql = (
                f"(SELECT * FROM tax.survey{left} UNION ALL "
                f"SELECT * FROM social.survey{right}) AS s"
            )
            return Source(sql, [(c.name, c, 0) for c in SURVEY], union=True, one_dataset=False)
        count = 2 if shape == "join2" else 3
        tables = rng.sample(list(TABLES), count)
        aliases = [t.name[0] for t in tables]
        sql = f"{tables[0].qualified} {aliases[0]}"
        for table, alias in zip(tables[1:], aliases[1:], strict=True):
            sql += f" JOIN {table.qualified} {alias} ON {aliases[0]}.id = {alias}.id"
        columns = [
            (f"{alias}.{c.name}", c, r)
            for r, (table, alias) in enumerate(zip(tables, aliases, strict=True))
            for c in table.columns
            if c.kind != "key"
        ]
        return Source(sql, columns, join=True, one_dataset=False)

    def query(self) -> str:
        rng = self.rng
        source = self.source()
        numeric = [c for c in source.columns if not c[1].text]
        group_columns = [c for c in source.columns if c[1].kind == "group"]
        ordered = rng.random() < (0.08 if source.join else 0.25) and not source.union
        keys: list[tuple[str, int]] = []  # (SQL, relation)
        for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
            keys.append(self.group_key(source, group_columns, numeric))
        if ordered and source.join:
            relations = {r for _, r in keys}
            candidates = [c for c in numeric if c[1].name in ORDER_COLUMNS and relations <= {c[2]}]
            ordered = bool(candidates) and len(relations) <= 1
        aggregates = []
        for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
            aggregates.append(self.aggregate(source, numeric, ordered))
        if ordered and source.join:
            relations = {r for _, r in keys}
            chosen = rng.choice(
                [c for c in numeric if c[1].name in ORDER_COLUMNS and relations <= {c[2]}]
            )
            aggregates.append(self.order_statistic(chosen[0]))
        elif ordered:
            chosen = [c for c in numeric if c[1].name in ORDER_COLUMNS]
            if chosen:
                aggregates.append(self.order_statistic(rng.choice(chosen)[0]))
        items = [k for k, _ in dict.fromkeys(keys)]
        select = [*items, *aggregates]
        sql = f"{source.prefix}SELECT {', '.join(select)} FROM {source.sql}"
        where = self.where(source, numeric)
        if where:
            sql += f" WHERE {where}"
        if items:
            sql += " GROUP BY " + ", ".join(items)
        if rng.random() < 0.2:
            position = rng.randrange(len(items), len(select))
            threshold = rng.choice([0, 5, 20, 60])
            sql += f" HAVING {select[position]} > {threshold}"
            if items and rng.random() < 0.3:
                sql += f" OR {items[0]} IS NULL"
        if rng.random() < 0.25:
            positions = rng.sample(range(1, len(select) + 1), min(2, len(select)))
            sql += " ORDER BY " + ", ".join(
                f"{p}{rng.choice(['', ' DESC', ' ASC'])}" for p in positions
            )
            if rng.random() < 0.4:
                sql += f" LIMIT {rng.randint(0, 6)}"
        return sql

    def group_key(
        self,
        source: Source,
        groups: list[tuple[str, Column, int]],
        numeric: list[tuple[str, Column, int]],
    ) -> tuple[str, int]:
        rng = self.rng
        form = rng.random()
        if form < 0.75 or not numeric:
            ref, _, relation = rng.choice(groups)
            return ref, relation
        ref, _, relation = rng.choice(numeric)
        if form < 0.9:
            return f"WIDTH_BUCKET({ref}, 0, 100, 4)", relation
        return f"CASE WHEN {ref} > 10 THEN 'high' ELSE 'low' END", relation

    def aggregate(
        self, source: Source, numeric: list[tuple[str, Column, int]], ordered: bool
    ) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.15:
            return self.expression_aggregate(source, numeric)
        kind = rng.random()
        if kind < 0.08 and source.one_dataset:
            return f"COUNT(DISTINCT {rng.choice(source.columns)[0]})"
        if kind < 0.12:
            return "COUNT(*)"
        if kind < 0.3:
            return f"COUNT({rng.choice(source.columns)[0]})"
        if kind < 0.62:
            return f"{rng.choice(UNIVARIATE)}({rng.choice(numeric)[0]})"
        y, x = rng.choice(numeric)[0], rng.choice(numeric)[0]
        return f"{rng.choice(BIVARIATE)}({y}, {x})"

    def expression_aggregate(self, source: Source, numeric: list[tuple[str, Column, int]]) -> str:
        """An aggregate over a row expression of one relation, or with FILTER."""
        rng = self.rng
        a = rng.choice(numeric)
        same = [c for c in numeric if c[2] == a[2]]
        b = rng.choice(same)
        function = rng.choice(["SUM", "AVG", "VAR_POP", "STDDEV_SAMP", "COUNT"])
        form = rng.random()
        if form < 0.3:
            return f"{function}({a[0]} * {rng.choice(['2', '12', '0.5', '-1'])})"
        if form < 0.5:
            return f"{function}({a[0]} {rng.choice(['+', '-', '*'])} {b[0]})"
        relation = Source(source.sql, [c for c in source.columns if c[2] == a[2]])
        condition = self.condition(relation, same)
        if form < 0.75:
            return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"
        argument = "*" if function == "COUNT" and rng.random() < 0.5 else a[0]
        return f"{function}({argument}) FILTER (WHERE {condition})"

    def order_statistic(self, ref: str) -> str:
        function = self.rng.choice(ORDERED)
        q = self.rng.choice(["0.1", "0.25", "0.5", "0.9", "1"])
        if function == "QUANTILE_CONT":
            return f"QUANTILE_CONT({ref}, {q})"
        if function == "PERCENTILE_CONT":
            return f"PERCENTILE_CONT({q}) WITHIN GROUP (ORDER BY {ref})"
        return f"{function}({ref})"

    def where(self, source: Source, numeric: list[tuple[str, Column, int]]) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            return ""
        parts = [self.condition(source, numeric) for _ in range(rng.choice([1, 1, 2]))]
        joiner = rng.choice([" AND ", " OR "])
        text = joiner.join(parts)
        if rng.random() < 0.15:
            text = f"NOT ({text})"
        return text

    def condition(self, source: Source, numeric: list[tuple[str, Column, int]]) -> str:
        rng = self.rng
        ref, column, _ = rng.choice(source.columns)
        if source.join and rng.random() < 0.15:
            pairs = [
                (a, b)
                for a in numeric
                for b in numeric
                if a[2] != b[2] and a[1].kind == "aggregate" and b[1].kind == "aggregate"
            ]
            if pairs:
                a, b = rng.choice(pairs)
                return f"{a[0]} {rng.choice(['<', '>', '>='])} {b[0]}"
        if rng.random() < 0.1:
            return f"{ref} IS {rng.choice(['', 'NOT '])}NULL"
        if column.text and column.policy == {"policy": "group_by", "domain": [False, True]}:
            return rng.choice([ref, f"NOT {ref}", f"{ref} = true"])
        if column.text:
            labels = column.policy["domain"]  # type: ignore[index]
            assert isinstance(labels, list)
            form = rng.random()
            if form < 0.4:
                return f"{ref} IN ({', '.join(repr(v) for v in rng.sample(labels, 2))})"
            if form < 0.7:
                return f"{ref} LIKE '{rng.choice(labels)[0]}%'"
            return f"{ref} {rng.choice(['=', '<>'])} '{rng.choice(labels)}'"
        form = rng.random()
        if form < 0.3:
            return f"{ref} BETWEEN {rng.randint(-10, 10)} AND {rng.randint(20, 400)}"
        if form < 0.45:
            return f"{ref} * 2 - 1 > {rng.randint(0, 50)}"
        if form < 0.55:
            return f"ABS({ref}) < {rng.randint(1, 300)}"
        return f"{ref} {rng.choice(['<', '<=', '>', '>=', '<>'])} {rng.randint(-5, 100)}"


@dataclass
class Tally:
    queries: int = 0
    refused: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run(client: Client, oracle: PlaintextOracle, seed: int, count: int) -> Tally:
    """Run ``count`` generated queries; a refusal of a generated (valid) query is a failure."""
    generator = Generator(seed)
    tally = Tally()
    for _ in range(count):
        sql = generator.query()
        tally.queries += 1
        try:
            problems = check(client, oracle, sql)
        except EngineError as exc:
            tally.refused.append(f"{sql}\n  refused: {type(exc).__name__}: {exc}")
            continue
        if problems:
            secure = _answer(client, sql)
            reference = oracle.run(_without(sql, "HAVING", "ORDER BY", "LIMIT"))
            tally.failures.append(
                f"{sql}\n  problems: {problems[:5]}\n  jointstat: {secure}\n"
                f"  duckdb: {reference.rows}\n  counts: {reference.counts}"
            )
    return tally


def _answer(client: Client, sql: str) -> object:
    try:
        return client.query(sql).rows
    except EngineError as exc:  # pragma: no cover - only when reporting
        return exc
