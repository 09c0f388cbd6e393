"""Tests of exact order statistics over an aligned join (:mod:`engine.mpc._order`).

First the parts on plain data (requests, search levels, the owner's local step, the plain
oracle against DuckDB), then real runs: three (and four) processes of
``tests/engine/join_party.py`` linked by MPyC on 127.0.0.1 join seeded tables (a pair, or
a star of three) and compute MIN, MAX, MEDIAN and QUANTILE_CONT at 1/4 and 9/10 per group
(no grouping, the hub's labels, a spoke's one-hot columns). The opened results must equal,
exactly, DuckDB's semantics computed in plain Python over the plaintext join; no result
share may look like plaintext; each party's traffic in the order statistics must depend on
the public parameters only.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import duckdb
import numpy as np
import pytest

from engine.errors import DataError
from engine.mpc._join_prf import PairKey, Purpose, keyed_permutation
from engine.mpc._order import GroupLabels, OrderRequest, order_statistics
from engine.mpc._order_plan import OrderPlan, level_sizes, prepare_owner, search_cost
from engine.mpc._order_products import field_matmul
from engine.mpc._order_sort import second_stage
from tests.engine.join_party import order_tables
from tests.engine.protocol_run import Run, run_parties

P64 = 18446744073709551427  # the field of MPyC's SecInt(32)
RUN_TIMEOUT = 60

# -- the oracle: DuckDB's semantics in plain Python -----------------------------------------


def quantile_cont(values: Sequence[int], q: Fraction) -> Fraction:
    """Return DuckDB's QUANTILE_CONT(values, q) exactly: interpolate ranks ⌊(n-1)q⌋, ⌈(n-1)q⌉."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def statistic(values: Sequence[int], kind: str, q: Fraction) -> Fraction:
    """Return MIN, MAX or QUANTILE_CONT(q) of a nonempty multiset, exactly."""
    if kind == "min":
        return Fraction(min(values))
    if kind == "max":
        return Fraction(max(values))
    return quantile_cont(values, q)


def test_the_oracle_agrees_with_duckdb() -> None:
    rng = random.Random(1)
    for _ in range(40):
        values = [rng.randint(-20, 20) for _ in range(rng.randint(1, 30))]
        row = duckdb.execute(
            "SELECT min(x), max(x), median(x), quantile_cont(x, 0.25), quantile_cont(x, 0.9) "
            "FROM (SELECT unnest($v) AS x)",
            {"v": values},
        ).fetchone()
        assert row is not None
        ours = [
            statistic(values, "min", Fraction(0)),
            statistic(values, "max", Fraction(0)),
            quantile_cont(values, Fraction(1, 2)),
            quantile_cont(values, Fraction(1, 4)),
            quantile_cont(values, Fraction(9, 10)),
        ]
        assert [float(v) for v in ours] == pytest.approx([float(v) for v in row], abs=1e-9)


# -- parts, on plain data -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "q", "needle"),
    [
        ("median", Fraction(1, 2), "got 'median'"),
        ("quantile", Fraction(3, 2), "got Fraction"),
        ("quantile", 0.5, "got 0.5"),
    ],
)
def test_order_requests_are_checked(kind: Any, q: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        OrderRequest(kind, q)


def test_order_requests_name_their_quantile() -> None:
    assert OrderRequest("min").fraction == 0
    assert OrderRequest("max", Fraction(1, 3)).fraction == 1
    assert OrderRequest("quantile", Fraction(9, 10)).fraction == Fraction(9, 10)


@pytest.mark.parametrize("length", [1, 2, 7, 100, 1000, 99_999, 100_000, 1_000_000])
def test_search_levels_cover_the_rows(length: int) -> None:
    for levels in [1, 2, 3, 5, None]:
        sizes = level_sizes(length, 4, 20, levels)
        assert math.prod(sizes) >= length
        assert levels is None or len(sizes) == levels
        assert math.prod(sizes) < 1.2 * length + 16  # little padding
    if length >= 10**5:  # a few hundred comparisons per crossing, not N
        for rows in [2, 40, 160]:
            sizes = level_sizes(length, rows, 20, None)
            assert 3 <= len(sizes) <= 6 and sum(sizes) < 400
            assert search_cost(sizes, rows, 20) < search_cost(
                level_sizes(length, rows, 20, 2), rows, 20
            )


def _plan(mode: str = "labels", groups: int = 3, **fields: Any) -> OrderPlan:
    mpc = SimpleNamespace(
        parties=[None] * 3,
        threshold=1,
        pid=0,
        version="0.11",
        options=SimpleNamespace(sec_param=30),
    )
    secint = SimpleNamespace(field=SimpleNamespace(order=P64), bit_length=32)
    arguments: dict[str, Any] = {
        "owner": 0,
        "length": 10,
        "mode": mode,
        "groups": groups,
        "requests": [OrderRequest("min"), OrderRequest("quantile", Fraction(1, 4))],
        "value_bits": 16,
        "count_bits": 12,
        "levels": 2,
    }
    arguments.update(fields)
    return OrderPlan(mpc, secint, **arguments)


def test_the_plan_shares_crossings_between_requests() -> None:
    requests = [
        OrderRequest("min"),
        OrderRequest("quantile", Fraction(0)),
        OrderRequest("max"),
        OrderRequest("quantile", Fraction(1, 2)),
        OrderRequest("quantile", Fraction(2, 4)),
    ]
    plan = _plan(requests=requests)
    assert len(plan.crossings) == 4  # min = q0; max; the median's two, once
    assert plan.lower[0] == plan.upper[0] == plan.lower[1]
    assert plan.lower[3] == plan.lower[4] != plan.upper[3]
    assert plan.denominators == (1, 1, 1, 2, 2)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"count_bits": 30}, "for comparisons: got 32 bits"),  # wider than SecInt(32)
        ({"value_bits": 30}, "for numerators: got 32 bits"),
        ({"levels": 9}, "levels: got 9"),
        ({"groups": 0}, "groups: got 0"),
        ({"requests": []}, "requests: got 0"),
        ({"owner": 3}, "owner: got 3"),
        ({"length": 0}, "rows: got 0"),
        ({"mode": "columns", "groups": 101, "length": 100_000}, "group columns × rows"),
    ],
)
def test_the_plan_refuses_what_would_overflow_or_is_invalid(
    fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        _plan(**fields)


def test_the_owner_sorts_by_label_then_value_and_marks_each_group_end() -> None:
    plan = _plan(levels=2)  # 10 rows searched as 4 x 3 = 12 positions; ends 4 x 3
    values = [5, -1, 3, 3, 0, 9, -7, 2, 2, 1]
    labels = [2, 0, 2, 0, 0, 2, 0, 2, 0, 2]  # group 1 is empty
    local = prepare_owner(plan, values, labels)
    order = list(local.order)
    assert [(labels[i], values[i]) for i in order] == sorted(zip(labels, values, strict=True))
    dealt = [int(v) for v in local.dealt]
    sorted_values = [v if v < P64 // 2 else v - P64 for v in dealt[: plan.padded]]
    assert sorted_values == [values[i] for i in order] + [0] * (plan.padded - 10)
    rows, columns = plan.ends_shape
    blocks = np.array(dealt[plan.padded : plan.padded + 3 * rows]).reshape(3, rows)
    offsets = np.array(dealt[plan.padded + 3 * rows :]).reshape(3, columns)
    last = [4, 4, 9]  # last sorted position of groups 0, 0 or 1, 0 to 2
    for g in range(3):
        assert list(blocks[g]) == [int(j == last[g] // columns) for j in range(rows)]
        assert list(offsets[g]) == [int(j == last[g] % columns) for j in range(columns)]


@pytest.mark.parametrize(
    ("values", "labels", "needle"),
    [
        ([1] * 9, [0] * 10, "got 9 entries"),
        ([1 << 16] + [0] * 9, [0] * 10, "outside"),  # out of the 16-bit range
        ([1.5] + [0] * 9, [0] * 10, "non-integer"),
        ([0] * 10, [3] + [0] * 9, r"outside \[0, 3\)"),
        ([0] * 10, None, "got None entries"),  # labels missing
    ],
)
def test_the_owner_refuses_invalid_values(values: Any, labels: Any, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        prepare_owner(_plan(), values, labels)


def test_two_stages_sort_and_the_second_one_is_uniform_whatever_the_order() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(-5, 5, 12)
    order = np.argsort(values, kind="stable")
    key = PairKey(stream=bytes(32), pseudonym=bytes(32))
    first = keyed_permutation(key, Purpose.ORDER_FIRST, 0, 12)
    assert list(values[first][second_stage(first, order)]) == sorted(values)
    seen: Counter[int] = Counter()  # where σ2 sends position 0, fresh σ1, fixed σ
    for trial in range(3000):
        trial_key = PairKey(stream=trial.to_bytes(32, "big"), pseudonym=bytes(32))
        sigma1 = keyed_permutation(trial_key, Purpose.ORDER_FIRST, 0, 12)
        seen[int(second_stage(sigma1, order)[0])] += 1
    assert set(seen) == set(range(12)) and max(seen.values()) < 2 * min(seen.values())


@pytest.mark.parametrize("modulus", [P64, 2**61 - 1, 2**127 - 1, 2**521 - 1, 7])
def test_products_by_limbs_are_exact(modulus: int) -> None:
    rng = random.Random(modulus)
    for left, right in [((3, 5), (5, 4)), ((1, 40, 57), (1, 57, 30)), ((6, 1, 9), (6, 9, 1))]:
        a = np.array([rng.randrange(modulus) for _ in range(math.prod(left))], dtype=object)
        b = np.array([rng.randrange(modulus) for _ in range(math.prod(right))], dtype=object)
        a, b = a.reshape(left), b.reshape(right)
        a.flat[0], b.flat[-1] = modulus - 1, modulus - 1  # the largest elements
        assert (field_matmul(a, b, modulus) == (a @ b) % modulus).all()


def test_public_arguments_are_checked_before_any_message() -> None:
    mpc = SimpleNamespace(
        parties=[None] * 3,
        threshold=1,
        pid=1,
        version="0.11",
        options=SimpleNamespace(sec_param=30),
    )
    secint = SimpleNamespace(field=SimpleNamespace(order=P64), bit_length=32)
    weights = SimpleNamespace(shape=(10,))
    for my_values, groups, needle in [
        ([0] * 10, None, r"want None \(not the owner\)"),  # only the owner passes values
        (None, GroupLabels(2, [0] * 10), r"want None \(not the owner\)"),  # or labels
        (None, 5, "groups: got int"),
    ]:
        call = order_statistics(
            mpc,
            secint,
            owner=0,
            weights=weights,
            groups=groups,  # type: ignore[arg-type]
            my_values=my_values,
            requests=[OrderRequest("min")],
            value_bits=8,
            count_bits=8,
        )
        with pytest.raises(ValueError, match=needle):
            call.send(None)
        call.close()


# -- real runs: 3 and 4 processes -----------------------------------------------------------

ALL = [["min", [0, 1]], ["max", [0, 1]], ["quantile", [1, 2]]]
ALL += [["quantile", [1, 4]], ["quantile", [9, 10]]]


def _scenario(
    name: str,
    seed: int,
    sizes: list[int],
    overlaps: list[int],
    roles: list[int],
    helpers: list[int],
    length: int,
    grouping: str,
    **fields: Any,
) -> dict[str, Any]:
    """Return an order scenario for join_party.py (see :func:`order_tables`)."""
    scenario: dict[str, Any] = {"name": name, "kind": "order", "seed": seed, "sizes": sizes}
    scenario.update(overlaps=overlaps, roles=roles, helpers=helpers, length=length)
    scenario.update(grouping=grouping, requests=ALL, low=-50, high=100, hub_keep=0.8)
    scenario.update(hub_labels=3, hub_groups=4, spoke_groups=3, max_count=3)
    scenario.update(dummies=5, epsilon=[1, 2], bits=32, value_bits=16, count_bits=12)
    scenario.update(fields)
    return scenario


PAIRS = [
    _scenario("pair", 1, [40, 50], [30], [0, 1], [2], 60, "none"),
    _scenario("pair_labels", 2, [60, 40], [35], [1, 2], [0], 80, "labels", levels=2),
    _scenario("pair_columns", 3, [50, 60], [40], [2, 0], [1], 70, "columns", levels=3),
    _scenario("ties", 4, [70, 70], [60], [0, 2], [1], 90, "labels", low=-2, high=2, levels=3),
    _scenario("heavy", 5, [40, 40], [40], [0, 1], [2], 50, "columns", max_count=9),
    _scenario("direct", 6, [20, 20], [15], [0, 1], [2], 30, "labels", levels=1),
    _scenario("single_row", 7, [1, 3], [1], [0, 1], [2], 14, "none", hub_keep=1.0),
    _scenario("single_row_groups", 8, [1, 3], [1], [0, 1], [2], 14, "labels", hub_keep=1.0),
    _scenario("all_filtered", 9, [30, 30], [20], [0, 1], [2], 40, "labels", hub_keep=0.0),
    _scenario("no_match", 10, [30, 30], [0], [0, 1], [2], 40, "columns"),
    _scenario(
        "wide",
        11,
        [30, 30],
        [25],
        [1, 0],
        [2],
        40,
        "none",
        bits=64,
        value_bits=40,
        count_bits=20,
        low=-(10**12),
        high=10**12,
    ),
]
STARS = [
    _scenario("star", 12, [60, 50, 55], [40, 45], [0, 1, 2], [2, 1], 80, "none"),
    _scenario("star_labels", 13, [50, 60, 40], [40, 30], [2, 0, 1], [1, 0], 70, "labels"),
    _scenario("star_columns", 14, [50, 40, 60], [35, 45], [1, 2, 0], [0, 2], 70, "columns"),
]
SAME_SHAPE = [  # same public parameters, other data, sizes and intersections
    _scenario("shape_a", 15, [20, 60], [5], [0, 1], [2], 70, "labels", max_count=1),
    _scenario("shape_b", 16, [60, 20], [20], [0, 1], [2], 70, "labels", low=-3, high=3),
]
FAULTS = [
    _scenario("bad_value", 17, [20, 20], [10], [0, 1], [2], 30, "none", bad_value=True),
    _scenario(
        "too_heavy",
        18,
        [40, 40],
        [40],
        [0, 1],
        [2],
        50,
        "none",
        max_count=9,
        hub_keep=1.0,
        count_bits=5,
    ),
    _scenario("after_faults", 19, [30, 30], [20], [0, 1], [2], 40, "labels"),
]
FOUR_PARTIES = [  # party 1, then party 3, has no role in the join; all take part
    _scenario("bystander", 20, [40, 40], [30], [0, 2], [3], 50, "labels"),
    _scenario("star4", 21, [40, 30, 35], [25, 30], [3, 1, 0], [0, 1], 50, "columns"),
]


@pytest.fixture(scope="module")
def three_parties(tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenarios = PAIRS + STARS + SAME_SHAPE + FAULTS
    return run_parties(tmp_path_factory.mktemp("order3"), 3, scenarios, RUN_TIMEOUT)


@pytest.fixture(scope="module")
def four_parties(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_parties(tmp_path_factory.mktemp("order4"), 4, FOUR_PARTIES, RUN_TIMEOUT)


def joined_multisets(scenario: dict[str, Any]) -> list[list[int]]:
    """Return per group the hub's values over the plaintext join, each repeated by weight.

    A hub row's weight is its filter bit times each spoke's count for its key (0 if a
    spoke lacks the key); its group is the hub's label, the first spoke's label, or 0.
    """
    hub, *spokes = order_tables(scenario)
    filters, values, labels = hub.columns
    rows = [{key: j for j, key in enumerate(s.keys)} for s in spokes]
    grouping = scenario["grouping"]
    count = {"none": 1, "labels": scenario["hub_groups"], "columns": scenario["spoke_groups"]}
    groups: list[list[int]] = [[] for _ in range(count[grouping])]
    for i, key in enumerate(hub.keys):
        if not all(key in r for r in rows):
            continue
        weight = filters[i] * math.prod(
            s.columns[0][r[key]] for s, r in zip(spokes, rows, strict=True)
        )
        if grouping == "labels":
            group = labels[i]
        elif grouping == "columns":
            one_hot = [column[rows[0][key]] for column in spokes[0].columns[1:]]
            group = one_hot.index(1)
        else:
            group = 0
        groups[group] += [values[i]] * weight
    return groups


def _check(run: Run, scenario: dict[str, Any]) -> None:
    """Check every party's results for ``scenario`` against plain Python, exactly."""
    groups = joined_multisets(scenario)
    requests = [(kind, Fraction(*q)) for kind, q in scenario["requests"]]
    for party, results in enumerate(run.results):
        result = results[scenario["name"]]
        assert result["counts"] == [len(g) for g in groups], f"party {party}"
        assert result["denominators"] == [
            q.denominator if k == "quantile" else 1 for k, q in requests
        ]
        for g, values in enumerate(groups):
            if not values:
                continue  # undefined (the engine suppresses it); any value will do
            pairs = zip(result["numerators"][g], result["denominators"], strict=True)
            got = [Fraction(n, d) for n, d in pairs]
            want = [statistic(values, kind, q) for kind, q in requests]
            assert got == want, f"party {party}, group {g}"
        assert result["plain_looking"] == 0, f"party {party} holds a plaintext share vector"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", PAIRS, ids=[s["name"] for s in PAIRS])
def test_order_statistics_on_a_pair_join_equal_plain_python(
    three_parties: Run, scenario: dict[str, Any]
) -> None:
    _check(three_parties, scenario)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", STARS, ids=[s["name"] for s in STARS])
def test_order_statistics_on_a_star_join_equal_plain_python(
    three_parties: Run, scenario: dict[str, Any]
) -> None:
    _check(three_parties, scenario)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", FOUR_PARTIES, ids=[s["name"] for s in FOUR_PARTIES])
def test_order_statistics_with_four_parties(four_parties: Run, scenario: dict[str, Any]) -> None:
    _check(four_parties, scenario)


def test_the_scenarios_cover_the_shapes_they_claim() -> None:
    def multisets(name: str) -> list[list[int]]:
        (scenario,) = [s for s in PAIRS + STARS if s["name"] == name]
        return joined_multisets(scenario)

    assert all(not g for g in multisets("all_filtered"))
    assert all(not g for g in multisets("no_match"))
    assert sum(map(len, multisets("single_row"))) in (1, 2, 3)
    assert not multisets("pair_labels")[3]  # label 3 is never drawn: an empty group
    ties = Counter(v for g in multisets("ties") for v in g)
    assert max(ties.values()) > 5
    heavy = multisets("heavy")
    assert max(Counter(v for g in heavy for v in g).values()) > 3  # weights above 1
    assert min(v for g in multisets("pair") for v in g) < 0


def duckdb_answer(scenario: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return the scenario's query run by DuckDB over the pooled, unaggregated tables.

    Each spoke's per-key count c becomes c rows with that key (what an owner pre-aggregates
    into its count column), so the join repeats a hub row once per matching spoke row.
    """
    hub, *spokes = order_tables(scenario)
    connection = duckdb.connect()
    connection.execute("CREATE TABLE hub (k VARCHAR, f INT, v BIGINT, label INT)")
    connection.executemany(
        "INSERT INTO hub VALUES (?, ?, ?, ?)",
        [(k.decode(), *row) for k, *row in zip(hub.keys, *hub.columns, strict=True)],
    )
    joins = []
    for m, spoke in enumerate(spokes):
        connection.execute(f"CREATE TABLE s{m} (k VARCHAR, grp INT)")
        rows = []
        for j, key in enumerate(spoke.keys):
            group = [column[j] for column in spoke.columns[1:]].index(1)
            rows += [(key.decode(), group)] * spoke.columns[0][j]
        if rows:
            connection.executemany(f"INSERT INTO s{m} VALUES (?, ?)", rows)
        joins.append(f"JOIN s{m} USING (k)")
    by = {"none": "0", "labels": "hub.label", "columns": "s0.grp"}[scenario["grouping"]]
    return connection.execute(
        f"SELECT {by} AS g, count(*), min(v), max(v), median(v), quantile_cont(v, 0.25), "
        f"quantile_cont(v, 0.9) FROM hub {' '.join(joins)} WHERE f = 1 GROUP BY g ORDER BY g"
    ).fetchall()


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("name", ["pair_labels", "pair_columns", "heavy", "star_labels", "star"])
def test_results_equal_duckdb_on_the_pooled_tables(three_parties: Run, name: str) -> None:
    (scenario,) = [s for s in PAIRS + STARS if s["name"] == name]
    assert [r[0] for r in scenario["requests"]] == [
        "min",
        "max",
        "quantile",
        "quantile",
        "quantile",
    ]
    answer = duckdb_answer(scenario)
    assert answer, "DuckDB found no joined rows: the scenario tests nothing"
    result = three_parties.results[0][name]
    for group, count, *statistics in answer:
        assert result["counts"][group] == count
        got = [
            n / d for n, d in zip(result["numerators"][group], result["denominators"], strict=True)
        ]
        assert got == pytest.approx([float(v) for v in statistics], rel=1e-12, abs=1e-9)
    assert sum(result["counts"]) == sum(row[1] for row in answer)  # no group DuckDB lacks


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_traffic_depends_on_the_public_parameters_only(three_parties: Run) -> None:
    for scenario in SAME_SHAPE:
        _check(three_parties, scenario)
    names = [s["name"] for s in SAME_SHAPE]
    for party, results in enumerate(three_parties.results):
        first, second = (Counter(tuple(f) for f in results[n]["frames"]) for n in names)
        assert first and sum(first.values()) == sum(second.values()), f"party {party}"
        for receiver in {r for r, _ in first}:
            sizes = [sorted(s for r, s in c.elements() if r == receiver) for c in (first, second)]
            assert len(sizes[0]) == len(sizes[1]), f"party {party} to {receiver}"
            for a, b in zip(*sizes, strict=True):  # MPyC pickles: a few bytes of jitter
                assert abs(a - b) <= 16 + a // 100, f"party {party} to {receiver}: {a} != {b}"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_invalid_values_abort_at_every_party_and_the_session_goes_on(three_parties: Run) -> None:
    errors = [r["bad_value"].get("error") for r in three_parties.results]
    assert errors == ["DataError", "PeerError", "PeerError"]
    _check(three_parties, FAULTS[-1])


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_a_total_weight_beyond_count_bits_is_an_error_at_every_party(three_parties: Run) -> None:
    (scenario,) = [s for s in FAULTS if s["name"] == "too_heavy"]
    assert sum(map(len, joined_multisets(scenario))) >= 1 << scenario["count_bits"]
    assert [r["too_heavy"].get("error") for r in three_parties.results] == ["CapacityError"] * 3


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_no_value_of_the_owner_crosses_the_wire(three_parties: Run) -> None:
    (scenario,) = [s for s in PAIRS if s["name"] == "wide"]  # values of about 40 bits
    hub = scenario["roles"][0]
    values = order_tables(scenario)[0].columns[1]
    assert len(set(values)) > 20 and min(abs(v) for v in values) > 1 << 24
    for party, received in enumerate(three_parties.received):
        if party == hub:
            continue
        assert received and b"citizen-" not in received, f"party {party}"
        for value in values:
            # as MPyC pickles a Python int, and as a little-endian 64-bit word
            compact = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            word = value.to_bytes(8, "little", signed=True)
            assert compact not in received and word not in received, f"party {party}"
