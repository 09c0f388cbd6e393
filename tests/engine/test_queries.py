"""Every supported query class on three real daemons, checked against DuckDB.

Counts and sums of integer columns must match exactly; other values within the oracle's
stated tolerance (relative 1e-9); a cell is suppressed exactly when fewer rows than the
minimum group size contribute to it.
"""

from __future__ import annotations

import pytest

from engine.client import SUPPRESSED
from engine.oracle import compare

from .conftest import Federation

# (sql, group output positions, exact output positions, minimum group size)
CASES = [
    ("SELECT COUNT(*) FROM registry.people", (), (0,), 10),
    (
        "SELECT district, COUNT(*) FROM registry.people WHERE birth_year < 1960 GROUP BY district",
        (0,),
        (1,),
        10,
    ),
    (
        "SELECT sector, COUNT(income), SUM(income), AVG(income), VAR_SAMP(income), "
        "VAR_POP(income), STDDEV_SAMP(income), STDDEV_POP(income) FROM tax.income GROUP BY sector",
        (0,),
        (1,),
        10,
    ),
    (
        "SELECT k, COUNT(*), COUNT(v), SUM(v), AVG(v), AVG(w), VAR_POP(w), STDDEV_SAMP(v) "
        "FROM tax.edge GROUP BY k",
        (0,),
        (1, 2, 3),
        5,
    ),
    (
        "SELECT g, COUNT(*), SUM(v), AVG(w) FROM tax.edge WHERE v > 50000 GROUP BY g",
        (0,),
        (1, 2),
        5,
    ),
    ("SELECT VAR_POP(c), STDDEV_SAMP(c), AVG(c), SUM(c) FROM tax.edge", (), (3,), 5),
    (
        "SELECT k, g, COUNT(*), AVG(v) FROM tax.edge WHERE k IN ('a', 'b') AND g BETWEEN 3 AND 9 "
        "GROUP BY k, g",
        (0, 1),
        (2,),
        5,
    ),
    (
        "SELECT k, COUNT(*), SUM(v), VAR_SAMP(w) FROM (SELECT * FROM tax.edge WHERE v IS NOT NULL "
        "UNION ALL SELECT * FROM social.edge WHERE w < 500) AS u WHERE NOT (k = 'd') OR k IS NULL "
        "GROUP BY k",
        (0,),
        (1, 2),
        5,
    ),
    (
        "SELECT region, COUNT(*), SUM(household_size), AVG(monthly_spending) FROM "
        "(SELECT * FROM registry.survey UNION ALL SELECT * FROM social.survey) s GROUP BY region",
        (0,),
        (1, 2),
        5,
    ),
    (
        "SELECT grp, SUM(amount) FROM (SELECT k AS grp, v AS amount FROM tax.edge "
        "UNION ALL SELECT k, v FROM social.edge) t GROUP BY grp",
        (0,),
        (1,),
        5,
    ),
    ("SELECT COUNT(*), AVG(v) FROM social.empty", (), (0,), 5),
    ("SELECT k, COUNT(*) FROM social.empty GROUP BY k", (0,), (1,), 5),
    ("SELECT k, COUNT(*) FROM tax.edge WHERE v > 10000000 GROUP BY k", (0,), (1,), 5),
    (
        "SELECT p.sex, COUNT(*) AS n, AVG(p.birth_year) AS mean_year FROM registry.people AS p "
        "WHERE p.district LIKE 'North%' OR p.birth_year >= 2000 GROUP BY p.sex",
        (0,),
        (1,),
        10,
    ),
    (
        "SELECT region, SUM(pension), AVG(medical_claims), STDDEV_POP(medical_claims) "
        "FROM social.benefits WHERE pension > 0 AND medical_claims > 100 GROUP BY region",
        (0,),
        (),
        10,
    ),
]


@pytest.mark.parametrize(("sql", "groups", "exact", "minimum"), CASES)
def test_secure_result_matches_duckdb(
    federation: Federation, sql: str, groups: tuple[int, ...], exact: tuple[int, ...], minimum: int
) -> None:
    with federation.client() as client:
        result = client.query(sql)
    reference = federation.oracle.run(sql)
    assert len(result.columns) == len(reference.columns)
    assert compare(result, reference, groups, minimum, exact) == []


def test_small_groups_are_suppressed_and_large_ones_released(federation: Federation) -> None:
    sql = "SELECT g, COUNT(*), AVG(w) FROM tax.edge WHERE k = 'a' GROUP BY g"
    with federation.client() as client:
        result = client.query(sql)
    # Each cell counts the rows that contribute to it: COUNT(*) all rows, AVG(w) non-NULL w.
    counts = {
        g: (rows, non_null)
        for g, rows, non_null in federation.oracle.execute(
            "SELECT g, COUNT(*), COUNT(w) FROM tax.edge WHERE k = 'a' GROUP BY g"
        )
    }
    small = [row for row in result.rows if counts[row[0]][0] < 5]
    large = [row for row in result.rows if counts[row[0]][0] >= 5]
    assert small and large, "the data must give both cases"
    assert all(row[1] is SUPPRESSED and row[2] is SUPPRESSED for row in small)
    assert all(row[1] == counts[row[0]][0] for row in large)
    assert set(result.suppressed) == {
        (r, c) for r, row in enumerate(result.rows) for c in (1, 2) if counts[row[0]][c - 1] < 5
    }


def test_order_by_and_limit_apply_to_released_rows(federation: Federation) -> None:
    sql = "SELECT sector, COUNT(*) AS n FROM tax.income GROUP BY sector ORDER BY n DESC LIMIT 3"
    with federation.client() as client:
        result = client.query(sql)
    reference = federation.oracle.execute(sql)
    assert [row[1] for row in result.rows] == [row[1] for row in reference]
    assert len(result.rows) == 3


def test_every_party_can_coordinate(federation: Federation) -> None:
    sql = "SELECT region, COUNT(*) FROM tax.income GROUP BY region"
    reference = sorted(federation.oracle.execute(sql))
    for party in ("registry", "tax", "social"):
        with federation.client(party) as client:
            assert sorted(client.query(sql).rows) == reference


def test_dataframe(federation: Federation) -> None:
    pytest.importorskip("pandas")
    with federation.client() as client:
        frame = client.query("SELECT sex, COUNT(*) AS n FROM registry.people GROUP BY sex")
    df = frame.to_dataframe()
    assert list(df.columns) == ["sex", "n"]
    assert (
        int(df["n"].sum())
        == federation.oracle.execute("SELECT COUNT(*) FROM registry.people")[0][0]
    )
