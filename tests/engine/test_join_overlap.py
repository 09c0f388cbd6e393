"""Overlap control over joins, inside MPC, against real daemons (issue 9, attack 3).

``tax.joined`` is a guarded copy of the demo's income file (overlap control on, minimum
group size 10); ``registry.people`` has overlap control off, so m = 10 comes from tax. Every
join release over ``tax.joined`` is kept as shares by every party and compared with the
later ones; the tests use one district each so that their row sets are far apart.
"""

from __future__ import annotations

from engine.client import SUPPRESSED

from .conftest import Federation

BASE = (
    "SELECT COUNT(*), SUM(t.income) FROM tax.joined t JOIN registry.people p "
    "ON t.citizen_id = p.citizen_id WHERE p.district = '{district}'"
)


def _truth(federation: Federation, sql: str) -> tuple[int, float]:
    ((count, total),) = federation.oracle.execute(sql.replace("tax.joined", "tax.income"))
    return int(count), float(total)


def _released(federation: Federation, sql: str) -> tuple[object, object]:
    with federation.client() as client:
        row = client.query(sql).rows[0]
    return row[0], row[1]


def _assert_equal(federation: Federation, sql: str) -> None:
    count, total = _released(federation, sql)
    want_count, want_total = _truth(federation, sql)
    assert count == want_count
    assert abs(float(total) - want_total) < 0.01  # type: ignore[arg-type]


def test_a_join_pair_differing_by_one_person_is_withheld(federation: Federation) -> None:
    base = BASE.format(district="East-3")
    one_less = f"{base} AND NOT (p.birth_year = 1963 AND p.sex = 'F')"
    (base_count, base_total), (less_count, less_total) = (
        _truth(federation, base),
        _truth(federation, one_less),
    )
    assert base_count - less_count == 1  # the exact difference exists: one person's income
    assert base_total != less_total
    _assert_equal(federation, base)
    assert _released(federation, one_less) == (SUPPRESSED, SUPPRESSED)
    _assert_equal(federation, base)  # the same rows again: released again
    assert _released(federation, one_less) == (SUPPRESSED, SUPPRESSED)


def test_a_difference_only_in_the_intersection_is_withheld(federation: Federation) -> None:
    base = BASE.format(district="East-3")
    older = f"{base} AND p.birth_year >= 1950"
    registry = federation.oracle.execute(
        "SELECT COUNT(*) FROM registry.people WHERE district = 'East-3' AND birth_year < 1950"
    )[0][0]
    assert registry >= 10  # many registry rows removed ...
    assert _truth(federation, base)[0] - _truth(federation, older)[0] == 1  # ... one joined
    _assert_equal(federation, base)
    assert _released(federation, older) == (SUPPRESSED, SUPPRESSED)


def test_a_join_pair_differing_by_the_minimum_is_released(federation: Federation) -> None:
    base = BASE.format(district="West-2")
    fewer = f"{base} AND NOT (p.sex = 'F')"
    assert _truth(federation, base)[0] - _truth(federation, fewer)[0] >= 10
    _assert_equal(federation, base)
    _assert_equal(federation, fewer)
    _assert_equal(federation, fewer)  # asked twice: released both times


def test_explain_states_what_is_kept_and_what_it_costs(federation: Federation) -> None:
    with federation.client() as client:
        text = client.query("EXPLAIN " + BASE.format(district="North-1"))
    body = "\n".join(row[0] for row in text.rows)
    assert "overlap control over the join" in body
    assert "19 power sums per released join cell" in body
    assert "the last 64 such cells (federation.join_overlap_window)" in body
    assert "not compared with single-dataset releases" in body


def test_only_the_group_that_lost_one_person_is_withheld(federation: Federation) -> None:
    # Groups labelled by the hub (tax: sector) and by the spoke (registry: sex).
    district = "South-1"
    ((year, sex, sector),) = federation.oracle.execute(
        "SELECT p.birth_year, p.sex, MIN(t.sector) FROM tax.income t JOIN registry.people p "
        f"ON t.citizen_id = p.citizen_id WHERE p.district = '{district}' "
        "GROUP BY p.birth_year, p.sex HAVING COUNT(*) = 1 ORDER BY p.birth_year LIMIT 1"
    )
    where = f"WHERE p.district = '{district}'"
    less = f"{where} AND NOT (p.birth_year = {year} AND p.sex = '{sex}')"
    for key in ("t.sector", "p.sex"):
        base = (
            f"SELECT {key}, COUNT(*), SUM(t.income) FROM tax.joined t JOIN registry.people p "
            f"ON t.citizen_id = p.citizen_id {where} GROUP BY {key}"
        )
        truth = {
            row[0]: row[1:]
            for row in federation.oracle.execute(base.replace("tax.joined", "tax.income"))
        }
        with federation.client() as client:
            first = {row[0]: row[1:] for row in client.query(base).rows}
            second = {row[0]: row[1:] for row in client.query(base.replace(where, less)).rows}
        lost = sector if key == "t.sector" else sex
        for label, (count, total) in first.items():
            if truth.get(label, (0,))[0] >= 10:
                assert count == truth[label][0]
                assert abs(float(total) - float(truth[label][1])) < 0.01  # type: ignore[arg-type]
                want = (SUPPRESSED, SUPPRESSED) if label == lost else (count, total)
                assert second[label] == want, (key, label)


def test_a_filter_inside_the_aggregate_cannot_drop_one_person(federation: Federation) -> None:
    """The joined rows stay the same; the SUM's rows lose one person (its own FILTER): each
    cell's rows are what is compared, so the SUM is withheld and the COUNT released."""
    base = BASE.format(district="Central-4")
    rows = federation.oracle.execute(
        "SELECT t.income FROM tax.income t JOIN registry.people p ON t.citizen_id = "
        "p.citizen_id WHERE p.district = 'Central-4' "
        "QUALIFY COUNT(*) OVER (PARTITION BY ROUND(t.income)) = 1 ORDER BY t.income LIMIT 1"
    )
    (alone,) = rows[0]
    low, high = round(alone) - 0.5, round(alone) + 0.49
    attack = base.replace(
        "SUM(t.income)", f"SUM(t.income) FILTER (WHERE NOT (t.income BETWEEN {low} AND {high}))"
    )
    _assert_equal(federation, base)
    count, total = _released(federation, attack)
    assert count == _truth(federation, base)[0]  # the same joined rows: released
    assert total == SUPPRESSED  # the sum's rows differ by one: withheld
