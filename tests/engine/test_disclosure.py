"""The analyst as attacker: each way of reading one person's value back, against real daemons.

Every attack of issue 9 is run in both release modes: in ``exact`` mode it is refused or its
cells are suppressed; in ``dp`` mode it is refused or its cells are noisy. The datasets are
tax's guarded copies of the demo's income file (conftest.guarded_datasets), each attack on
its own so that overlap histories and budgets do not depend on test order.
"""

from __future__ import annotations

import threading

import pytest

from engine.client import SUPPRESSED, Result
from engine.demo.synthetic import SECTORS
from engine.errors import EngineError, PolicyError, QueryError, UnsupportedError

from .conftest import Federation

GROUP_KEY_ATTACKS = [
    "SELECT income + 0 AS g, COUNT(*) FROM tax.{d} GROUP BY g",
    "SELECT CASE WHEN TRUE THEN income END AS g, COUNT(*) FROM tax.{d} GROUP BY g",
    "SELECT FLOOR(income) AS g, COUNT(*) FROM tax.{d} GROUP BY g",
    "SELECT COALESCE(income, 0) AS g, COUNT(*) FROM tax.{d} GROUP BY g",
    "SELECT WIDTH_BUCKET(income, 0, 1000000, 100000000) AS g, COUNT(*) FROM tax.{d} GROUP BY g",
    # A data-dependent label through CASE: its result is a column, not a constant.
    "SELECT CASE WHEN income > 1000 THEN sector ELSE 'x' END AS g, COUNT(*) FROM tax.{d} "
    "GROUP BY g",
]


def _one_income(federation: Federation) -> tuple[str, str, float]:
    """Return (region, sector, income) of a person alone in a 1-cent income interval."""
    rows = federation.oracle.execute(
        "SELECT region, sector, income FROM tax.income WHERE region = 'East' "
        "QUALIFY COUNT(*) OVER (PARTITION BY ROUND(income)) = 1 ORDER BY income LIMIT 1 "
        "OFFSET 40"
    )
    region, sector, income = rows[0]
    return str(region), str(sector), float(income)


def _cells(result: Result) -> list[object]:
    return [v for row in result.rows for v in row[1:]] if result.rows else []


@pytest.mark.parametrize("dataset", ["guarded", "noisy"])
@pytest.mark.parametrize("sql", GROUP_KEY_ATTACKS)
def test_a_value_used_as_a_group_key_is_refused(
    federation: Federation, dataset: str, sql: str
) -> None:
    with federation.client() as client, pytest.raises((PolicyError, QueryError)) as caught:
        client.query(sql.format(d=dataset))
    message = str(caught.value)
    assert "income" in message or "WIDTH_BUCKET" in message, message
    assert "want" in message


def test_buckets_with_constant_labels_answer_every_label(federation: Federation) -> None:
    sql = "SELECT WIDTH_BUCKET(income, 0, 200000, 10) AS b, COUNT(*) FROM tax.guarded GROUP BY b"
    with federation.client() as client:
        result = client.query(sql)
    # 0 (below), 1..10, 11 (above): every bucket is a row, whatever the data holds.
    assert [row[0] for row in result.rows] == list(range(12))
    truth = dict(federation.oracle.execute(sql.replace("tax.guarded", "tax.income")))
    for bucket, count in result.rows:
        if truth.get(bucket, 0) >= 10:
            assert count == truth[bucket]
        else:
            assert count is SUPPRESSED


@pytest.mark.parametrize("dataset", ["guarded", "noisy"])
def test_the_presence_of_a_label_tells_nothing(federation: Federation, dataset: str) -> None:
    _, _, income = _one_income(federation)
    low = round(income) - 0.5  # [low, low + 1) holds exactly this one person
    answers = []
    with federation.client() as client:
        for a, b in ((low, low + 0.99), (low + 1, low + 1.99)):
            answers.append(
                client.query(
                    f"SELECT sector, COUNT(*) FROM tax.{dataset} WHERE income BETWEEN {a} AND {b} "
                    "GROUP BY sector"
                )
            )
    hit, miss = answers
    # Both answers list every sector of the public domain, in the same order.
    assert [r[0] for r in hit.rows] == [r[0] for r in miss.rows] == sorted(SECTORS)
    if dataset == "guarded":  # one row, or none: suppressed all the same
        assert all(v is SUPPRESSED for v in _cells(hit) + _cells(miss))
    else:  # noisy either way, with its noise stated for every cell
        assert hit.release == miss.release == "dp"
        assert len(hit.noise) == len(miss.noise) == len(SECTORS)


def test_differencing_two_queries_on_one_dataset_is_refused(federation: Federation) -> None:
    region, sector, income = _one_income(federation)
    low, high = round(income) - 0.5, round(income) + 0.49
    base = f"SELECT COUNT(*), SUM(income) FROM tax.differenced WHERE region = '{region}'"
    one_less = f"{base} AND NOT (sector = '{sector}' AND income BETWEEN {low} AND {high})"
    with federation.client() as alice:
        first = alice.query(base)
        assert first.rows[0][0] != SUPPRESSED and first.rows[0][0] > 100
        second = alice.query(one_less)
    # The second set differs from the first by one person: withheld, not subtracted.
    assert second.rows[0] == (SUPPRESSED, SUPPRESSED)
    with federation.client() as alice:  # asked again: the same answer, no new information
        assert alice.query(one_less).rows[0] == (SUPPRESSED, SUPPRESSED)
    # Any analyst: bob's differencing against alice's release is withheld too.
    with federation.bob() as bob_client:
        assert bob_client.query(one_less).rows[0] == (SUPPRESSED, SUPPRESSED)
    # A set that differs by at least the minimum group size (10) is released.
    wide = f"{base} AND NOT (sector = '{sector}')"
    truth = federation.oracle.execute(wide.replace("tax.differenced", "tax.income"))
    with federation.client() as alice:
        released = alice.query(wide)
    assert released.rows[0][0] == truth[0][0]


def test_differencing_through_a_column_s_nulls_is_refused(federation: Federation) -> None:
    """The filter's rows differ by many (the NULLs of v dropped, and one more row), the SUM's
    rows by one: each cell's own rows are compared, so the SUM is withheld."""
    rows = federation.oracle.execute(
        "SELECT v FROM tax.edge WHERE k = 'a' AND v IS NOT NULL "
        "QUALIFY COUNT(*) OVER (PARTITION BY v) = 1 ORDER BY v LIMIT 1 OFFSET 20"
    )
    (alone,) = rows[0]
    nulls = federation.oracle.execute("SELECT COUNT(*) FROM tax.edge WHERE k = 'a' AND v IS NULL")[
        0
    ][0]
    assert nulls >= 5  # the filters' rows differ by at least the minimum group size
    base = "SELECT COUNT(*), SUM(v) FROM tax.nulled WHERE k = 'a'"
    attack = f"{base} AND v IS NOT NULL AND NOT (v BETWEEN {alone} AND {alone})"
    with federation.client() as alice:
        first = alice.query(base)
        second = alice.query(attack)
    assert SUPPRESSED not in first.rows[0]
    # Each of the second query's cells reads the first SUM's rows but one: both withheld
    # (comparing only the filters' rows, which differ by nulls + 1, released both).
    assert second.rows[0] == (SUPPRESSED, SUPPRESSED)
    # Rows of the sum that differ by the minimum or more are released, exactly.
    wide = f"{base} AND v IS NOT NULL AND NOT (v BETWEEN {alone} AND {alone + 20000})"
    truth = federation.oracle.execute(wide.replace("tax.nulled", "tax.edge"))
    with federation.client() as alice:
        released = alice.query(wide)
    assert released.rows[0] == tuple(truth[0])


def test_differencing_through_a_filter_inside_the_aggregate_is_refused(
    federation: Federation,
) -> None:
    """The filter's rows stay the same, the SUM's lose one person (FILTER, or a CASE
    without ELSE): the cell's own rows are compared, so the SUM is withheld."""
    region, sector, income = _one_income(federation)
    low, high = round(income) - 0.5, round(income) + 0.49
    person = f"sector = '{sector}' AND income BETWEEN {low} AND {high}"
    base = f"SELECT COUNT(*), SUM(income) FROM tax.filtered WHERE region = '{region}'"
    with federation.client() as alice:
        first = alice.query(base)
        by_filter = alice.query(
            base.replace("SUM(income)", f"SUM(income) FILTER (WHERE NOT ({person}))")
        )
        by_case = alice.query(
            base.replace("SUM(income)", f"SUM(CASE WHEN NOT ({person}) THEN income END)")
        )
    assert SUPPRESSED not in first.rows[0]
    assert by_filter.rows[0] == (first.rows[0][0], SUPPRESSED)
    assert by_case.rows[0] == (first.rows[0][0], SUPPRESSED)
    # A FILTER that drops at least the minimum group size is released, exactly.
    wide = base.replace("SUM(income)", f"SUM(income) FILTER (WHERE NOT (sector = '{sector}'))")
    truth = federation.oracle.execute(wide.replace("tax.filtered", "tax.income"))
    with federation.client() as alice:
        released = alice.query(wide)
    assert released.rows[0][0] == truth[0][0]
    assert abs(float(released.rows[0][1]) - float(truth[0][1])) < 0.01  # type: ignore[arg-type]


def test_min_walk_is_stopped(federation: Federation) -> None:
    with federation.client() as client:
        # Order statistics need the owner's leave: guarded's income does not give it.
        with pytest.raises(PolicyError, match="order_statistics = true"):
            client.query("SELECT MIN(income) FROM tax.guarded")
        # Where it is given, each step of a walk releases a set one row smaller: withheld.
        first = client.query("SELECT MIN(income), COUNT(*) FROM tax.walked WHERE income > 0")
        minimum = first.rows[0][0]
        assert isinstance(minimum, float)
        step = client.query(
            f"SELECT MIN(income), COUNT(*) FROM tax.walked WHERE income > {minimum}"
        )
    assert step.rows[0] == (SUPPRESSED, SUPPRESSED)


@pytest.mark.parametrize("dataset", ["guarded", "noisy"])
def test_errors_do_not_depend_on_the_data(federation: Federation, dataset: str) -> None:
    _, _, income = _one_income(federation)
    cents = round(income * 100)
    with federation.client() as client:
        answers = []
        for target in (cents, cents + 1):  # a row fails for one of the two only
            for condition in (
                f"10 // (CAST(ROUND(income * 100) AS BIGINT) - {target}) >= 0",  # division by 0
                f"CAST(CAST(ROUND(income * 100) AS BIGINT) = {target} AS BIGINT) "
                "* 9223372036854775807 + 1 > 0",  # an overflow
            ):
                answers.append(
                    client.query(
                        f"SELECT sector, COUNT(*) FROM tax.{dataset} WHERE {condition} "
                        "GROUP BY sector"
                    )
                )
        # No error either way, and answers of the same shape.
        assert len({tuple(r[0] for r in a.rows) for a in answers}) == 1
        if dataset == "guarded":  # an expression inside an aggregate that overflows on one row
            for target in (cents, cents + 1):
                client.query(
                    "SELECT COUNT(*), SUM(CASE WHEN ROUND(income * 100) = "
                    f"{target} THEN income * 100000000000000000 ELSE income END) "
                    f"FROM tax.{dataset}"
                )
        # A CASE key whose result reads a column is refused before any row is read.
        with pytest.raises(PolicyError, match="not a constant"):
            client.query(
                f"SELECT CASE WHEN income > {income} THEN CAST(sector AS INTEGER) ELSE 0 END AS g,"
                f" COUNT(*) FROM tax.{dataset} GROUP BY g"
            )


def test_dominance_suppresses_a_cell_one_contributor_dominates(federation: Federation) -> None:
    # mining: 12 firms, one with 9,000,000 of 9,990,000 (90% > 85%); retail: 12 equal firms.
    sql = (
        "SELECT sector, COUNT(*), SUM(turnover), AVG(turnover), MAX(turnover) FROM tax.firms "
        "GROUP BY sector"
    )
    with federation.client() as client:
        with pytest.raises(PolicyError, match="order statistics"):
            client.query(sql)  # MAX of the dominant firm: one firm's value
        rows = {r[0]: r for r in client.query(sql.replace(", MAX(turnover)", "")).rows}
    assert rows["mining"] == ("mining", 12, SUPPRESSED, SUPPRESSED)  # the count is not a value
    assert rows["retail"] == ("retail", 12, 600_000, 50_000.0)
    # Without its largest firm, mining is no longer dominated (but differs by one firm from
    # the set just queried: overlap control withholds it, which is also right).
    with federation.client() as client:
        small = client.query(
            "SELECT sector, SUM(turnover) FROM tax.firms WHERE turnover < 1000000 GROUP BY sector"
        )
    assert dict(small.rows)["mining"] is SUPPRESSED


def test_dp_answers_differencing_with_noise_and_states_it(federation: Federation) -> None:
    region, sector, income = _one_income(federation)
    low, high = round(income) - 0.5, round(income) + 0.49
    base = f"SELECT COUNT(*), SUM(income) FROM tax.noisy WHERE region = '{region}'"
    one_less = f"{base} AND NOT (sector = '{sector}' AND income BETWEEN {low} AND {high})"
    with federation.client() as client:
        first, second = client.query(base), client.query(one_less)
    truth = federation.oracle.execute(base.replace("tax.noisy", "tax.income"))[0]
    for result in (first, second):
        assert result.release == "dp"
        noise = {c: n for _, c, n in result.noise}
        assert set(noise) == {0, 1}
        assert noise[0].sd >= 1 and noise[1].sd >= 1000  # a count's and a sum's noise
        assert result.to_json()["noise"]
        assert "[" in result.to_table()  # the table shows each cell's 95% interval
    assert first.rows[0] != (truth[0], float(truth[1])) or second.rows[0] != first.rows[0]
    with federation.client() as client, pytest.raises(UnsupportedError, match="dp"):
        client.query("SELECT MIN(income) FROM tax.noisy")


def test_dp_budget_runs_out_per_analyst_then_in_total(federation: Federation) -> None:
    sql = "SELECT COUNT(*) FROM tax.scarce"
    with federation.client() as alice:
        alice.query(sql)
        alice.query(sql)  # 1.0 of alice's 1.0
        with pytest.raises(PolicyError, match=r"analyst alice on tax.scarce has 0 of 1 epsilon"):
            alice.query(sql)
        listed = {f"{d['owner']}.{d['name']}": d for d in alice.datasets()}
        assert listed["tax.scarce"]["analyst_budget_spent"] == pytest.approx(1.0)
    with federation.bob() as bob:
        bob.query(sql)  # 1.5 of the dataset's 1.5
        with pytest.raises(PolicyError, match=r"all analysts on tax.scarce has 0 of 1.5"):
            bob.query(sql)
    # A restarted owner recomputes the budget from its copy of the ledger.
    federation.launcher.stop_party("tax")
    federation.launcher.start_party("tax")
    with federation.bob() as bob, pytest.raises(PolicyError, match="budget"):
        bob.query(sql)


def test_two_analysts_racing_for_the_last_epsilon_cannot_both_win(
    federation: Federation,
) -> None:
    outcomes: dict[str, object] = {}

    def ask(name: str) -> None:
        client = federation.client() if name == "alice" else federation.bob()
        try:
            with client:
                outcomes[name] = client.query("SELECT COUNT(*) FROM tax.contested")
        except EngineError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    won = [n for n, o in outcomes.items() if isinstance(o, Result)]
    lost = [o for o in outcomes.values() if isinstance(o, EngineError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "budget" in str(lost[0])


def test_explain_says_how_cells_are_released_and_what_is_revealed(federation: Federation) -> None:
    with federation.client() as client:
        exact = client.query(
            "EXPLAIN SELECT sector, SUM(income) FROM tax.guarded GROUP BY sector"
        ).to_table()
        noisy = client.query(
            "EXPLAIN SELECT sector, COUNT(*), AVG(income) FROM tax.noisy GROUP BY sector"
        ).to_table()
    assert "G = 10 groups" in exact and "public domains" in exact
    assert "dominance rule (1, 85%)" in exact and "overlap control" in exact
    assert "to every party: the query text and analyst (no labels" in exact
    assert "differential privacy, epsilon 0.5" in noisy and "tax.noisy" in noisy
    assert "3 noisy total(s) per group" in noisy and "95%" in noisy


def test_dp_over_a_join_is_noisy_and_needs_unique_keys(federation: Federation) -> None:
    sql = (
        "SELECT p.sex, COUNT(*), AVG(t.income) FROM tax.noisy t JOIN registry.people p "
        "ON t.citizen_id = p.citizen_id GROUP BY p.sex"
    )
    with federation.client() as client:
        result = client.query(sql)
        truth = dict(
            (sex, count)
            for sex, count, _ in federation.oracle.execute(sql.replace("tax.noisy", "tax.income"))
        )
        assert result.release == "dp" and [r[0] for r in result.rows] == ["F", "M"]
        noise = {(r, c): n for r, c, n in result.noise}
        for r, (sex, count, _) in enumerate(result.rows):
            # The noisy count lies near the truth: within 20 noise deviations.
            assert abs(count - truth[sex]) <= 20 * noise[(r, 1)].sd + 1
        # social.repeat holds several rows per person: one row could move a joined total by
        # more than the bounds say, so dp refuses the join (before any row is read).
        with pytest.raises((PolicyError, QueryError), match="one row per"):
            client.query(
                "SELECT COUNT(*) FROM tax.noisy t JOIN social.repeat r ON t.citizen_id = r.person"
            )
