"""Joins across agencies and the full set of statistics, on three real daemons vs DuckDB.

Counts must match exactly; other values within the oracle's tolerance (relative 1e-9); a
cell is suppressed exactly when fewer rows than the minimum group size contribute to it; a
join may return groups with no joined rows, all suppressed (they are absent from DuckDB's
answer).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.client import SUPPRESSED, Client
from engine.demo.synthetic import PARTIES, generate
from engine.errors import QueryError, UnsupportedError
from engine.federation_init import create_federation
from engine.launch import LocalFederation, free_port_block
from engine.oracle import compare

from .conftest import Federation

# (sql, group output positions, exact output positions, minimum group size)
CASES = [
    (  # the first example, without MEDIAN (see test_order_statistics)
        "SELECT p.district, COUNT(*), AVG(t.income), STDDEV_SAMP(t.income) "
        "FROM registry.people p JOIN tax.income t ON p.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1975 AND t.sector IN ('manufacturing', 'retail', 'health') "
        "GROUP BY p.district",
        (0,),
        (1,),
        10,
    ),
    (  # the second example: three agencies, a star on citizen_id
        "SELECT CORR(t.income, s.medical_claims), REGR_SLOPE(s.medical_claims, t.income) "
        "FROM tax.income t JOIN social.benefits s ON t.citizen_id = s.citizen_id "
        "JOIN registry.people p ON p.citizen_id = t.citizen_id WHERE p.sex = 'F'",
        (),
        (),
        10,
    ),
    (
        "SELECT p.sex, COUNT(*), COVAR_POP(t.income, p.birth_year), "
        "COVAR_SAMP(t.income, p.birth_year), REGR_INTERCEPT(t.income, p.birth_year), "
        "REGR_R2(t.income, p.birth_year), REGR_COUNT(t.income, p.birth_year), "
        "VAR_POP(t.income), SUM(t.income) "
        "FROM registry.people p JOIN tax.income t ON p.citizen_id = t.citizen_id GROUP BY p.sex",
        (0,),
        (1, 6),
        10,
    ),
    (  # group keys of two agencies
        "SELECT p.sex, t.sector, COUNT(*), AVG(p.birth_year) FROM tax.income t "
        "JOIN registry.people p ON t.citizen_id = p.citizen_id GROUP BY p.sex, t.sector",
        (0, 1),
        (2,),
        10,
    ),
    (  # a histogram: buckets of an aggregate column over joined rows
        "SELECT width_bucket(t.income, 0, 150000, 10) AS bucket, COUNT(*) AS n, "
        "AVG(s.pension) FROM tax.income t JOIN social.benefits s ON t.citizen_id = s.citizen_id "
        "GROUP BY bucket",
        (0,),
        (1,),
        10,
    ),
    (  # NULLs and negatives on both sides, a pair of columns at one owner
        "SELECT e.k, COUNT(*), SUM(e.v), AVG(f.w), CORR(e.v, e.w), COUNT(f.v) "
        "FROM tax.edge e JOIN social.edge f ON e.person = f.person GROUP BY e.k",
        (0,),
        (1, 2, 5),
        5,
    ),
    (  # an empty intersection after filters: every cell suppressed
        "SELECT COUNT(*), AVG(e.v) FROM tax.edge e JOIN social.edge f ON e.person = f.person "
        "WHERE e.v > 99000 AND f.v > 99000",
        (),
        (0,),
        5,
    ),
    (  # WHERE on columns of two agencies: OR and NOT, evaluated per joined row in MPC
        "SELECT p.district, COUNT(*), AVG(t.income) FROM registry.people p JOIN tax.income t "
        "ON p.citizen_id = t.citizen_id WHERE (p.sex = 'F' OR t.sector = 'health') "
        "AND NOT (p.birth_year < 1970 AND t.income > 60000) GROUP BY p.district",
        (0,),
        (1,),
        10,
    ),
    (  # comparing two agencies' columns: a secure comparison per joined row
        "SELECT COUNT(*), AVG(s.medical_claims) FROM tax.income t JOIN social.benefits s "
        "ON t.citizen_id = s.citizen_id WHERE t.income > s.pension",
        (),
        (0,),
        10,
    ),
    (  # a constant column: zero variance gives NULL (undefined), never a number
        "SELECT CORR(e.c, f.v), REGR_SLOPE(f.v, e.c), COUNT(*) FROM tax.edge e "
        "JOIN social.edge f ON e.person = f.person",
        (),
        (2,),
        5,
    ),
]


SINGLE = [
    (
        "SELECT sector, MIN(income), MAX(income), MEDIAN(income), QUANTILE_CONT(income, 0.25), "
        "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY income), COUNT(*) FROM tax.income "
        "GROUP BY sector",
        (0,),
        (6,),
        10,
    ),
    ("SELECT k, MIN(v), MAX(v), MEDIAN(w) FROM tax.edge GROUP BY k", (0,), (1, 2), 5),
    (
        "SELECT CASE WHEN birth_year < 1960 THEN 'old' WHEN birth_year < 1990 THEN 'middle' "
        "ELSE 'young' END AS age, COUNT(*) FROM registry.people GROUP BY age",
        (0,),
        (1,),
        10,
    ),
    (
        "SELECT region, COVAR_POP(pension, medical_claims), CORR(pension, medical_claims) "
        "FROM social.benefits GROUP BY 1",
        (0,),
        (),
        10,
    ),
]


ORDERED = [
    (  # the first example with its MEDIAN: groups of the other agency (a spoke)
        "SELECT p.district, COUNT(*), AVG(t.income), MEDIAN(t.income) "
        "FROM registry.people p JOIN tax.income t ON p.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1975 AND t.sector IN ('manufacturing', 'retail', 'health') "
        "GROUP BY p.district",
        (0,),
        (1,),
        10,
    ),
    (  # groups of the value's owner (the hub); MIN, MAX and two quantiles at once
        "SELECT t.sector, MIN(t.income), MAX(t.income), QUANTILE_CONT(t.income, 0.25), "
        "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY t.income), AVG(s.pension) "
        "FROM tax.income t JOIN social.benefits s ON t.citizen_id = s.citizen_id "
        "GROUP BY t.sector",
        (0,),
        (),
        10,
    ),
    (  # three agencies and a WHERE on two of them, evaluated per joined row
        "SELECT MEDIAN(s.medical_claims), MAX(s.pension), COUNT(*) FROM tax.income t "
        "JOIN social.benefits s ON t.citizen_id = s.citizen_id "
        "JOIN registry.people p ON p.citizen_id = t.citizen_id "
        "WHERE p.sex = 'F' AND t.income > s.pension",
        (),
        (2,),
        10,
    ),
    (  # NULLs, negatives and three decimals; two value columns; groups with few rows
        "SELECT f.k, MIN(f.v), MEDIAN(f.w), MAX(f.w), COUNT(*) FROM tax.edge e "
        "JOIN social.edge f ON e.person = f.person GROUP BY f.k",
        (0,),
        (4,),
        5,
    ),
    (  # three rows per key at the other agency: each value counts three times
        "SELECT e.k, MEDIAN(e.v), QUANTILE_CONT(e.v, 0.1), COUNT(*), SUM(r.amount) "
        "FROM tax.edge e JOIN social.repeat r ON e.person = r.person GROUP BY e.k",
        (0,),
        (3, 4),
        5,
    ),
]


@pytest.mark.parametrize(("sql", "groups", "exact", "minimum"), CASES + SINGLE + ORDERED)
def test_statistics_match_duckdb(
    federation: Federation, sql: str, groups: tuple[int, ...], exact: tuple[int, ...], minimum: int
) -> None:
    with federation.client() as client:
        result = client.query(sql)
    reference = federation.oracle.run(sql)
    assert len(result.columns) == len(reference.columns)
    assert compare(result, reference, groups, minimum, exact) == []


def test_order_statistics_over_joins_refuse_what_they_cannot_do(federation: Federation) -> None:
    with federation.client() as client:
        with pytest.raises(UnsupportedError, match="columns of several agencies in one query"):
            client.query(
                "SELECT MEDIAN(t.income), MAX(p.birth_year) FROM tax.income t "
                "JOIN registry.people p ON p.citizen_id = t.citizen_id"
            )
        with pytest.raises(UnsupportedError, match="grouped by columns of several agencies"):
            client.query(
                "SELECT p.sex, t.sector, MEDIAN(t.income) FROM tax.income t "
                "JOIN registry.people p ON p.citizen_id = t.citizen_id GROUP BY p.sex, t.sector"
            )
        # Refused at plan time, from the owner's published "key repeats" fact: before any
        # row is read, so the refusal cannot depend on the rows a query selects.
        with pytest.raises(QueryError, match="needs one row per 'person'"):
            client.query(  # social.repeat has three rows per person
                "SELECT MEDIAN(r.amount) FROM social.repeat r "
                "JOIN tax.edge e ON r.person = e.person"
            )
        # the daemons keep serving
        assert client.query("SELECT COUNT(*) FROM tax.income").rows[0][0] > 0


def test_having_filters_released_groups(federation: Federation) -> None:
    sql = (
        "SELECT sector, COUNT(*) AS n, AVG(income) FROM tax.income GROUP BY sector "
        "HAVING n > 150 AND NOT AVG(income) < 43000 ORDER BY n DESC"
    )
    with federation.client() as client:
        result = client.query(sql)
    reference = federation.oracle.execute(sql)
    groups = federation.oracle.execute(sql.split(" HAVING ")[0])
    assert 0 < len(reference) < sum(n > 150 for _, n, _ in groups)  # both conditions bite
    assert [row[0] for row in result.rows] == [row[0] for row in reference]
    assert [row[1] for row in result.rows] == [row[1] for row in reference]


def test_join_small_groups_are_suppressed(federation: Federation) -> None:
    sql = (
        "SELECT p.birth_year, COUNT(*) FROM registry.people p JOIN tax.income t "
        "ON p.citizen_id = t.citizen_id WHERE p.birth_year BETWEEN 1950 AND 1975 "
        "GROUP BY p.birth_year"
    )
    with federation.client() as client:
        result = client.query(sql)
    counts = dict(federation.oracle.execute(sql))
    # Every label of the public domain (1900..2026) is a row, whatever the data holds.
    assert [year for year, _ in result.rows] == list(range(1900, 2027))
    small = [year for year, count in counts.items() if count < 10]
    assert small and len(small) < len(counts)  # both kinds of cell occur
    for year, count in result.rows:
        if counts.get(year, 0) < 10:
            assert count is SUPPRESSED
        else:
            assert count == counts[year]


def test_explain_names_what_runs_where_and_what_is_revealed(federation: Federation) -> None:
    sql = (
        "EXPLAIN SELECT p.district, COUNT(*), AVG(t.income) FROM registry.people p "
        "JOIN tax.income t ON p.citizen_id = t.citizen_id "
        "WHERE p.birth_year < 1960 AND (t.income > s.pension OR p.sex = 'F') "
        "GROUP BY p.district"
    )
    with federation.client() as client:
        with pytest.raises(QueryError, match="got qualifier 's'"):
            client.query(sql)  # s is not a table of the query
        text = client.query(
            sql.replace(" OR p.sex = 'F'", "").replace("t.income > s.pension", "t.income > 10")
        )
    lines = [row[0] for row in text.rows]
    body = "\n".join(lines)
    assert text.columns == ("plan",)
    assert "hub registry" in body and "helper" in body
    assert 'filter: ("birth_year" < 1960)' in body
    assert "reveals:" in body and "number of matching keys" in body
    with federation.client() as client:
        cross = client.query(
            "EXPLAIN SELECT COUNT(*) FROM tax.income t JOIN social.benefits s "
            "ON t.citizen_id = s.citizen_id WHERE t.income > s.pension"
        )
    assert any("secure comparison" in row[0] and "expensive" in row[0] for row in cross.rows)
    with federation.client() as client:
        ordered = client.query(
            "EXPLAIN SELECT t.sector, MEDIAN(t.income) FROM tax.income t JOIN social.benefits s "
            "ON t.citizen_id = s.citizen_id GROUP BY t.sector"
        )
    assert any("blocked search" in row[0] for row in ordered.rows)
    assert any("uniformly random permutation" in row[0] for row in ordered.rows)


def test_joins_need_threshold_one_and_say_so(tmp_path: Path) -> None:
    # Five parties (two compute-only) take threshold 2 by default; the private join
    # tolerates one dishonest party, so a join is refused before any data is read.
    data = generate(tmp_path, 200, seed=3)
    names = [*PARTIES, "extra1", "extra2"]
    create_federation(
        tmp_path, names, ["alice"], base_port=free_port_block(5), datasets=data.datasets
    )
    with LocalFederation(tmp_path), Client(tmp_path / "analysts" / "alice") as client:
        with pytest.raises(UnsupportedError, match="threshold 2; want federation"):
            client.query(
                "SELECT COUNT(*) FROM tax.income t JOIN registry.people p "
                "ON p.citizen_id = t.citizen_id"
            )
        assert client.query("SELECT COUNT(*) FROM registry.people").rows == ((200,),)
