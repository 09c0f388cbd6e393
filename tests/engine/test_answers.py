"""Every answer right (issue 11): the failures a new federation found, on three real daemons.

Each query runs on the small federation of tests/engine/agencies.py (NULLs, negatives,
0/2/4-decimal columns, text and boolean group columns) and is checked against DuckDB over
the pooled plaintext by tests/engine/differential.py's :func:`check` (counts and integer
sums equal, others within a relative 1e-9, suppression exactly below the minimum group
size, every domain label a row).
"""

from __future__ import annotations

import pytest

from engine.errors import CatalogMissError, QueryError, UnsupportedError
from engine.sql.parse import parse_query

from . import differential
from .agencies import Agencies


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
