"""Every answer right (issue 11): the failures a new federation found, on three real daemons.

Each query runs on the small federation of tests/engine/agencies.py (NULLs, negatives,
0/2/4-decimal columns, text and boolean group columns) and is checked against DuckDB over
the pooled plaintext by tests/engine/differential.py's :func:`check` (counts and integer
sums equal, others within a relative 1e-9, suppression exactly below the minimum group
size, every domain label a row).
"""

from __future__ import annotations

import pytest

from engine.client import SUPPRESSED
from engine.errors import CatalogMissError, QueryError, UnsupportedError
from engine.planner import plan_query
from engine.sql.parse import parse_query

from . import differential
from .agencies import Agencies, catalog


def _check(agencies: Agencies, sql: str) -> None:
    with agencies.client() as client:
        problems = differential.check(client, agencies.oracle, sql)
    assert problems == [], f"{sql}\n{problems}"


PAIRS = "REGR_SLOPE({y}, {x}), COVAR_POP({y}, {x}), COVAR_SAMP({y}, {x}), CORR({y}, {x}), " + (
    "REGR_INTERCEPT({y}, {x}), REGR_R2({y}, {x}), REGR_COUNT({y}, {x})"
)
JOIN = "FROM tax.jobs j JOIN social.visits v ON j.id = v.id"


@pytest.mark.parametrize(
    "sql",
    [
        # the query: COUNT of a 2-decimal column beside pair statistics over it
        f"SELECT COUNT(j.wage), {PAIRS.format(y='v.cost', x='j.wage')} {JOIN}",
        # x with 4 decimals, y with 2, the COUNT after the pairs
        f"SELECT {PAIRS.format(y='j.wage', x='v.weight')}, COUNT(v.weight), COUNT(j.wage) {JOIN}",
        # a pair at one owner, grouped, beside counts and sums of both columns
        f"SELECT v.kind, COUNT(j.rate), SUM(j.rate), {PAIRS.format(y='j.wage', x='j.rate')} "
        f"{JOIN} GROUP BY v.kind",
        # a column read at two scales: its own (SUM) and a comparison's common decimals
        f"SELECT SUM(j.wage), AVG(j.wage), COUNT(*) {JOIN} WHERE j.wage > v.weight",
        # one dataset and a UNION ALL: COUNT beside pairs (never wrong there; kept so)
        f"SELECT COUNT(wage), {PAIRS.format(y='hours', x='wage')} FROM tax.jobs",
        "SELECT COUNT(spend), CORR(share, spend), REGR_SLOPE(spend, share) FROM "
        "(SELECT * FROM tax.survey UNION ALL SELECT * FROM social.survey) s",
    ],
)
def test_count_of_a_decimals_column_beside_pair_statistics(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sector, COUNT(sector), COUNT(part_time), COUNT(*) FROM tax.jobs GROUP BY sector",
        "SELECT part_time, COUNT(sector), COUNT(part_time) FROM tax.jobs GROUP BY part_time",
        f"SELECT v.urgent, COUNT(j.sector), COUNT(v.urgent), COUNT(j.part_time) {JOIN} "
        "GROUP BY v.urgent",
        "SELECT owner, COUNT(region), COUNT(owner), AVG(size) FROM "
        "(SELECT * FROM tax.survey UNION ALL SELECT * FROM social.survey) s GROUP BY owner",
    ],
)
def test_count_of_text_and_boolean_columns(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sector, AVG(wage) AS a FROM tax.jobs GROUP BY sector HAVING AVG(wage) > 100",
        "SELECT sector, AVG(wage) AS a FROM tax.jobs GROUP BY sector HAVING a > 100",
        "SELECT sector, COUNT(*) AS n FROM tax.jobs GROUP BY sector HAVING sector IS NULL "
        "OR n BETWEEN 90 AND 200",
        "SELECT district, MEDIAN(score) AS m FROM registry.people GROUP BY district "
        "HAVING MEDIAN(score) > 40 AND district IN ('north', 'east')",
    ],
)
def test_having_on_outputs_by_alias_or_expression(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


def test_having_has_one_rule() -> None:
    # The parser refuses what the plan cannot carry, with the plan's own message.
    with pytest.raises(UnsupportedError, match=r"HAVING on 'SUM\(hours\)', which is not in SELECT"):
        parse_query("SELECT sector, AVG(wage) FROM tax.jobs GROUP BY sector HAVING SUM(hours) > 1")
    with pytest.raises(UnsupportedError, match="LIKE in HAVING"):
        parse_query("SELECT sector, COUNT(*) FROM tax.jobs GROUP BY sector HAVING sector LIKE 'a%'")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT Sector, COUNT(*), AVG(Wage) FROM Tax.Jobs WHERE WAGE > 0 GROUP BY SECTOR",
        "SELECT J.sector, COUNT(*) AS N FROM TAX.JOBS AS J JOIN Social.Visits V ON j.ID = v.id "
        "GROUP BY j.Sector ORDER BY n DESC",
    ],
)
def test_unquoted_identifiers_fold_case(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


def test_quoted_identifiers_stay_exact(agencies: Agencies) -> None:
    with agencies.client() as client:
        assert client.query('SELECT COUNT("wage") FROM "tax"."jobs"').rows
        with pytest.raises(CatalogMissError, match="'Wage'"):
            client.query('SELECT COUNT("Wage") FROM tax.jobs')
    # The analyst's spelling names the result's column.
    assert [i.name for i in parse_query("SELECT COUNT(*) AS Total FROM tax.jobs").select] == [
        "Total"
    ]


@pytest.mark.parametrize(
    "sql",
    [
        # NOT over a comparison of two agencies' columns with NULLs on both sides: a NULL
        # operand keeps no row, with or without NOT (three-valued logic)
        f"SELECT COUNT(*), AVG(v.cost) {JOIN} WHERE NOT (v.visits >= j.hours)",
        f"SELECT COUNT(*) {JOIN} WHERE NOT (j.sector = 'office' OR v.cost < j.wage)",
        f"SELECT COUNT(*) {JOIN} WHERE NOT (j.part_time AND v.visits <> j.hours)",
    ],
)
def test_not_over_conditions_of_two_agencies_keeps_sql_logic(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


def test_unknown_is_refused_before_reading(agencies: Agencies) -> None:
    with agencies.client() as client, pytest.raises(QueryError):
        client.query("SELECT COUNT(*) FROM tax.jobs WHERE wage >")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT COUNT(*) FROM registry.people WHERE district > 5",
            r"WHERE: 'district > 5' compares district \(text\) with 5 \(a number\)",
        ),
        (  # DuckDB itself would cast the text to a number row by row and fail on the rows
            f"SELECT COUNT(*) {JOIN} WHERE NOT (v.kind = 3)",
            r"'v.kind = 3' compares v.kind \(text\) with 3 \(a number\)",
        ),
        (
            "SELECT COUNT(*) FROM registry.people WHERE band IN ('a', 2)",
            r"compares band \(integer\) with 'a' \(a text constant\) and 2 \(a number\)",
        ),
        (
            "SELECT COUNT(*) FROM tax.jobs WHERE sector * 2 > 1",
            r"'sector \* 2' combines sector \(text\) with 2 \(a number\)",
        ),
        (
            "SELECT COUNT(*) FROM (SELECT * FROM tax.survey WHERE region > 1 UNION ALL "
            "SELECT * FROM social.survey) s",
            r"WHERE of tax.survey: 'region > 1' compares region \(text\)",
        ),
    ],
)
def test_type_mismatch_in_where_is_refused_at_plan_time(
    agencies: Agencies, sql: str, message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        plan_query(sql, catalog(), "alice")  # from the catalogue alone: no row is read
    with agencies.client() as client, pytest.raises(QueryError, match=message):
        client.query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH j AS (SELECT wage AS w, sector FROM tax.jobs WHERE hours > 3) "
        "SELECT sector, AVG(w), COUNT(*) FROM j GROUP BY sector",
        "SELECT s, SUM(c) FROM (SELECT kind AS s, cost AS c FROM social.visits "
        "WHERE urgent) v GROUP BY s",
        "SELECT COUNT(*), AVG(j.w) FROM (SELECT id, wage AS w FROM tax.jobs WHERE hours > 30) "
        "j JOIN social.visits v ON j.id = v.id",
        "WITH a AS (SELECT * FROM tax.survey), b AS (SELECT * FROM social.survey WHERE size > 2) "
        "SELECT region, COUNT(*), AVG(spend) FROM (SELECT * FROM a UNION ALL SELECT * FROM b) u "
        "GROUP BY region",
    ],
)
def test_derived_tables_and_with_that_rename_and_filter(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


def test_a_subquery_in_from_that_aggregates_gets_a_precise_refusal() -> None:
    with pytest.raises(UnsupportedError, match="a subquery in FROM with aggregates, GROUP BY"):
        parse_query(
            "SELECT sector, COUNT(*) FROM (SELECT sector, COUNT(*) FROM tax.jobs "
            "GROUP BY sector) t GROUP BY sector"
        )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sector, AVG(wage * 12), SUM(wage * hours), "
        "SUM(CASE WHEN hours > 30 THEN 1 ELSE 0 END) FROM tax.jobs GROUP BY sector",
        "SELECT COUNT(*) FILTER (WHERE hours > 30), SUM(wage) FILTER (WHERE part_time), "
        "AVG(rate - 0.25), VAR_SAMP(ROUND(wage, 1)) FROM tax.jobs",
        f"SELECT v.kind, AVG(j.wage * 2 + j.hours), COUNT(CASE WHEN v.urgent THEN 1 END), "
        f"SUM(v.cost) FILTER (WHERE v.visits > 3) {JOIN} GROUP BY v.kind",
        "SELECT sector, COUNT(DISTINCT hours), COUNT(hours), COUNT(DISTINCT part_time), "
        "COUNT(DISTINCT wage) FROM tax.jobs WHERE hours > 20 GROUP BY sector",
        "SELECT region, VAR_SAMP(spend * size), STDDEV_POP(share + 1), SUM(size * 2) "
        "FROM (SELECT * FROM tax.survey UNION ALL SELECT * FROM social.survey) s "
        "GROUP BY region HAVING SUM(size * 2) > 10",
    ],
)
def test_expressions_in_aggregates_filter_and_count_distinct(agencies: Agencies, sql: str) -> None:
    _check(agencies, sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"SELECT AVG(j.wage - v.cost) {JOIN}", "on columns of several agencies"),
        ("SELECT AVG(wage / 2) FROM tax.jobs", "division in AVG"),
        (
            "SELECT COUNT(DISTINCT region) FROM (SELECT * FROM tax.survey UNION ALL "
            "SELECT * FROM social.survey) s",
            r"COUNT\(DISTINCT region\) over a UNION ALL or a join",
        ),
        (f"SELECT COUNT(DISTINCT j.sector) {JOIN}", "over a UNION ALL or a join"),
        ("SELECT SUM(DISTINCT hours) FROM tax.jobs", "DISTINCT inside SUM"),
        ("SELECT CORR(wage, hours) FILTER (WHERE hours > 1) FROM tax.jobs", "FILTER on"),
        ("SELECT MEDIAN(wage * 2) FROM tax.jobs", "want a plain column"),
    ],
)
def test_what_remains_refused_is_refused_clearly(sql: str, message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        plan_query(sql, catalog(), "alice")


def test_a_label_with_no_joined_rows_is_an_all_suppressed_row(agencies: Agencies) -> None:
    # Grouped by the hub's and a spoke's columns: every label pair of the public domains is
    # a row; DuckDB has none for v.kind = 'lab' (filtered out), jointstat an empty one.
    sql = (
        f"SELECT j.sector, v.kind, COUNT(*), AVG(v.cost) {JOIN} WHERE v.kind <> 'lab' "
        "GROUP BY j.sector, v.kind"
    )
    with agencies.client() as client:
        result = client.query(sql)
        assert differential.check(client, agencies.oracle, sql) == []
    empty = [row for row in result.rows if row[1] == "lab"]
    assert len(empty) == 4  # three sectors and NULL
    assert all(cell is SUPPRESSED for row in empty for cell in row[2:])
    assert not any(row[1] == "lab" for row in agencies.oracle.run(sql).rows)
