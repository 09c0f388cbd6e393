"""The plaintext reference: the same SQL run by DuckDB over the pooled data of every agency.

Used by the demo, the tests and the benchmarks to check every secure result. The oracle
holds every agency's rows in one place, which is exactly what jointstat avoids in
production: it exists only to measure correctness and the plaintext baseline.

Agreement rule (:func:`compare`): the same group rows (a join may add groups with no
joined rows, all suppressed); counts and sums of integer columns equal exactly; other
values within a relative 1e-9 (plus 1e-6 absolute, for values near zero), since DuckDB
computes in doubles while jointstat's results are exact fractions of the values rounded to
each column's declared decimals; and a cell is suppressed exactly when fewer rows than the
minimum group size contribute to it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from engine.client import SUPPRESSED, Result
from engine.sql import predicate

REL_TOL = 1e-9
ABS_TOL = 1e-6


@dataclass(frozen=True)
class OracleResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    counts: tuple[tuple[object, ...], ...]  # same shape: rows contributing to each cell
    seconds: float


class PlaintextOracle:
    """DuckDB over the pooled plaintext of every dataset, named ``party.dataset``."""

    def __init__(self, tables: Mapping[str, Path]) -> None:
        self._db = duckdb.connect(":memory:")
        for qualified, path in tables.items():
            party, name = qualified.split(".")
            self._db.execute(f'CREATE SCHEMA IF NOT EXISTS "{party}"')
            reader = (
                "read_parquet(?)"
                if path.suffix == ".parquet"
                else ("read_csv(?, header = true, sample_size = -1)")
            )
            self._db.execute(
                f'CREATE TABLE "{party}"."{name}" AS SELECT * FROM {reader}', [str(path)]
            )
            self._type_empty_columns(party, name)

    def _type_empty_columns(self, party: str, name: str) -> None:
        """Give all-NULL text columns a numeric type, as owners do (nothing to sniff)."""
        relation = self._db.table(f'"{party}"."{name}"')
        for column, kind in zip(relation.columns, relation.types, strict=True):
            if str(kind) != "VARCHAR":
                continue
            row = self._db.execute(f'SELECT COUNT("{column}") FROM "{party}"."{name}"').fetchone()
            if row is not None and row[0] == 0:
                self._db.execute(f'ALTER TABLE "{party}"."{name}" ALTER "{column}" TYPE BIGINT')

    def run(self, sql: str) -> OracleResult:
        """Run ``sql`` (timed), then it with the count of each cell's rows (see _count_sql).

        Rows and counts come from one query, so that they pair up whatever order DuckDB's
        parallel aggregation returns groups in.
        """
        sql = translate(sql)
        began = time.perf_counter()
        relation = self._db.execute(sql)
        relation.fetchall()
        seconds = time.perf_counter() - began
        width = len(relation.description or ())
        combined = self._db.execute(_count_sql(sql))
        columns = tuple(d[0] for d in (combined.description or ())[:width])
        both = combined.fetchall()
        rows = tuple(tuple(row[:width]) for row in both)
        counts = tuple(tuple(row[width:]) for row in both)
        return OracleResult(columns, rows, counts, seconds)

    def execute(self, sql: str) -> list[tuple[object, ...]]:
        return self._db.execute(translate(sql)).fetchall()


def translate(sql: str) -> str:
    """Return ``sql`` with the functions DuckDB lacks spelled out (see predicate.standard)."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    assert isinstance(tree, exp.Expression)
    return predicate.standard(tree).sql(dialect="duckdb")


_PAIRS = (
    exp.CovarPop,
    exp.CovarSamp,
    exp.Corr,
    exp.RegrSlope,
    exp.RegrIntercept,
    exp.RegrR2,
    exp.RegrCount,
)


def _count_sql(sql: str) -> str:
    """Return ``sql`` with, after its outputs, each output rewritten into the count of rows
    it aggregates (a group key stays itself)."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")

    def to_count(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.WithinGroup):  # PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)
            return exp.Count(this=node.expression.expressions[0].this.copy())
        if isinstance(node, _PAIRS):  # the rows where both y and x are present
            both = exp.and_(
                exp.Not(this=exp.Is(this=node.this.copy(), expression=exp.Null())),
                exp.Not(this=exp.Is(this=node.expression.copy(), expression=exp.Null())),
            )
            return exp.Count(this=exp.If(this=both, true=exp.Literal.number(1)))
        if isinstance(node, exp.AggFunc) and not isinstance(node, exp.Count):
            argument = node.this
            return exp.Count(this=argument.copy() if argument is not None else exp.Star())
        return node

    assert isinstance(tree, exp.Select)
    outputs = list(tree.expressions)
    counted = [
        exp.alias_(
            (e.this if isinstance(e, exp.Alias) else e).copy().transform(to_count), f"__count_{i}"
        )
        for i, e in enumerate(outputs)
    ]
    tree.set("expressions", [*outputs, *counted])
    return tree.sql(dialect="duckdb")


def compare(
    secure: Result,
    reference: OracleResult,
    group_outputs: Sequence[int],
    min_group_size: int,
    exact_outputs: Sequence[int] = (),
) -> list[str]:
    """Return the disagreements between a secure result and the oracle (empty if none).

    ``group_outputs`` are the positions of group columns; ``exact_outputs`` the positions
    that must match exactly (counts and sums of integer columns).
    """
    problems: list[str] = []

    def key(row: Sequence[object]) -> tuple[object, ...]:
        return tuple(row[i] for i in group_outputs)

    expected = {key(r): (r, c) for r, c in zip(reference.rows, reference.counts, strict=True)}
    got = {key(r): r for r in secure.rows}
    # A join releases every combination of the owners' group labels: a group with no joined
    # rows (absent from DuckDB's answer) must come back with every cell suppressed.
    empty = {
        g
        for g, row in got.items()
        if g not in expected
        and all(v is SUPPRESSED for i, v in enumerate(row) if i not in group_outputs)
    }
    if set(got) - empty != set(expected):
        missing = len(set(expected) - set(got))
        extra = len(set(got) - set(expected) - empty)
        problems.append(f"groups: {missing} missing, {extra} unexpected")
    for group, row in got.items():
        if group not in expected:
            continue
        want, counts = expected[group]
        for i, value in enumerate(row):
            if i in group_outputs:
                continue
            count = counts[i]
            assert isinstance(count, int)
            if count < min_group_size:
                if value is not SUPPRESSED:
                    problems.append(f"group {group} column {i}: want suppressed (count {count})")
                continue
            if value is SUPPRESSED:
                problems.append(f"group {group} column {i}: suppressed but count {count}")
                continue
            target = want[i]
            if isinstance(target, Decimal):
                target = float(target)
            if isinstance(target, float) and math.isnan(target):
                target = None  # DuckDB's NaN for a zero variance: undefined
            if value is None or target is None:
                if value is not target:
                    problems.append(f"group {group} column {i}: got {value!r}, want {target!r}")
                continue
            if i in exact_outputs:
                if value != target:
                    problems.append(f"group {group} column {i}: got {value}, want exactly {target}")
                continue
            assert isinstance(value, int | float) and isinstance(target, int | float)
            if not math.isclose(float(value), float(target), rel_tol=REL_TOL, abs_tol=ABS_TOL):
                problems.append(f"group {group} column {i}: got {value!r}, want {target!r}")
    return problems
