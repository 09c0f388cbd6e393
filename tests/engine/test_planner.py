"""Planning and policy checks, without daemons: a hand-made catalog of two agencies."""

from __future__ import annotations

import pytest

from engine.catalog import Catalog, ColumnInfo, ColumnType, DatasetInfo
from engine.config import ColumnPolicy
from engine.errors import PolicyError, QueryError, UnsupportedError
from engine.planner import plan_query
from engine.sql.parse import Aggregate

P = ColumnPolicy


def _dataset(
    owner: str, name: str, min_group: int = 10, analysts: tuple[str, ...] = ("*",)
) -> DatasetInfo:
    return DatasetInfo(
        owner=owner,
        name=name,
        columns=(
            ColumnInfo("id", ColumnType.INTEGER, P.JOIN_KEY, 0),
            ColumnInfo("region", ColumnType.TEXT, P.GROUP_BY, 0, domain=("a", "b", "x")),
            ColumnInfo("year", ColumnType.INTEGER, P.GROUP_BY, 0, domain=tuple(range(2015, 2026))),
            ColumnInfo("amount", ColumnType.FLOAT, P.AGGREGATE, 2, order_statistics=True),
            ColumnInfo("note", ColumnType.TEXT, P.AGGREGATE, 0),
            ColumnInfo("ssn", ColumnType.OTHER, P.HIDDEN, 0),
        ),
        min_group_size=min_group,
        analysts=analysts,
    )


CATALOG = Catalog(
    (
        _dataset("north", "claims", 10),
        _dataset("south", "claims", 25),
        _dataset("south", "secret", 10, ("bob",)),
        DatasetInfo("south", "broken", (), 10, ("*",), available=False, problem="no file"),
    )
)


def test_single_dataset_plan_pushes_everything_to_the_owner() -> None:
    plan = plan_query(
        "SELECT region, COUNT(*), AVG(amount), STDDEV_SAMP(amount) FROM north.claims "
        "WHERE year >= 2020 AND region <> 'x' GROUP BY region",
        CATALOG,
        "alice",
    )
    (scan,) = plan.scans
    assert (scan.party, scan.dataset) == ("north", "claims")
    assert scan.filter_sql == '("year" >= 2020 AND "region" <> \'x\')'
    assert scan.group_sql == ('"region"',)
    assert [m.column for m in plan.measures] == [None, "amount"]
    # AVG and STDDEV of one column share a measure with every component they need.
    assert plan.measures[1].components == ("n", "s", "q")
    assert plan.measures[1].decimals == 2
    assert [o.function for o in plan.outputs] == [
        None,
        Aggregate.COUNT,
        Aggregate.AVG,
        Aggregate.STDDEV_SAMP,
    ]
    assert plan.min_group_size == 10
    assert plan.components_per_group == 4
    assert plan.component_index(2, 1, "q") == 2 * 4 + 1 + 2


def test_union_all_has_one_scan_per_owner_and_the_larger_minimum() -> None:
    plan = plan_query(
        "SELECT r, SUM(a) FROM (SELECT region AS r, amount AS a FROM north.claims WHERE year > 1 "
        "UNION ALL SELECT region, amount FROM south.claims) u WHERE a > 0 GROUP BY r",
        CATALOG,
        "alice",
    )
    assert [(s.party, s.group_sql, s.measure_columns) for s in plan.scans] == [
        ("north", ('"region"',), (("amount", None),)),
        ("south", ('"region"',), (("amount", None),)),
    ]
    assert plan.scans[0].filter_sql == '("year" > 1) AND ("amount" > 0)'
    assert plan.scans[1].filter_sql == '("amount" > 0)'
    assert plan.min_group_size == 25
    assert plan.parties == ("north", "south")


def test_plan_digest_is_stable_and_distinguishes_queries() -> None:
    sql = "SELECT region, AVG(amount) FROM north.claims GROUP BY region"
    first = plan_query(sql, CATALOG, "alice").digest()
    assert first == plan_query(sql, CATALOG, "alice").digest()
    assert first != plan_query(sql.replace("north", "south"), CATALOG, "alice").digest()


@pytest.mark.parametrize(
    ("sql", "error", "needle"),
    [
        ("SELECT SUM(ssn) FROM north.claims", PolicyError, "hidden"),
        ("SELECT COUNT(*) FROM north.claims WHERE ssn = 1", PolicyError, "hidden"),
        ("SELECT SUM(id) FROM north.claims", PolicyError, "join_key"),
        ("SELECT id, COUNT(*) FROM north.claims GROUP BY id", PolicyError, "join_key"),
        ("SELECT amount, COUNT(*) FROM north.claims GROUP BY amount", PolicyError, "GROUP BY"),
        ("SELECT AVG(note) FROM north.claims", QueryError, "want numeric"),
        ("SELECT COUNT(*) FROM south.secret", PolicyError, "not granted"),
        ("SELECT COUNT(*) FROM south.broken", QueryError, "no file"),
        ("SELECT COUNT(*) FROM east.claims", QueryError, "east.claims"),
        ("SELECT region FROM north.claims GROUP BY region", QueryError, "no aggregate"),
        ("SELECT year, COUNT(*) FROM north.claims GROUP BY region", QueryError, "not in GROUP BY"),
        ("SELECT COUNT(*) FROM north.claims x WHERE y.region = 'a'", QueryError, "qualifier"),
        ("SELECT quantile(amount, 0.5) FROM north.claims", UnsupportedError, "QUANTILE_DISC"),
        (
            "SELECT MEDIAN(a) FROM (SELECT amount AS a FROM north.claims UNION ALL "
            "SELECT amount FROM south.claims) u",
            UnsupportedError,
            "UNION ALL",
        ),
        (
            "SELECT COUNT(*) FROM north.claims WHERE upper(region) = 'A' OR now() > 1",
            UnsupportedError,
            "NOW",
        ),
        ("SELECT region, COUNT(*) FROM north.claims GROUP BY 3", QueryError, "position"),
        (
            "SELECT COUNT(*) FROM (SELECT region FROM north.claims UNION ALL "
            "SELECT region, year FROM south.claims) u",
            QueryError,
            "columns",
        ),
        ("SELECT COUNT(*) FROM north.claims ORDER BY nothing", QueryError, "ORDER BY"),
        ("SELECT COUNT(*) FROM north.claims LIMIT -1", QueryError, "LIMIT"),
    ],
)
def test_refusals_name_the_rule(sql: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as caught:
        plan_query(sql, CATALOG, "alice")
    assert needle.lower() in str(caught.value).lower()


def test_grant_admits_the_named_analyst() -> None:
    assert plan_query("SELECT COUNT(*) FROM south.secret", CATALOG, "bob").scans
