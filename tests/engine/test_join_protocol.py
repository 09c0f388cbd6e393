"""Tests of the helper-aligned private join (:mod:`engine.mpc._join`).

First its parts on plain data (pseudonyms, noise, sharing, matching, message checks), then
real runs: three (and four) processes of ``tests/engine/join_party.py`` linked by MPyC on
127.0.0.1, whose opened aggregates must equal the same sums computed in plain Python over
the same tables, exactly; the helper's count must lie in [|A ∩ B|, |A ∩ B| + 2D]; no share
vector may look like plaintext, no join key may cross the wire, and each party's traffic in
the join must depend on the public parameters only.
"""

from __future__ import annotations

import hmac
import random
from collections import Counter
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.errors import CapacityError, DataError, PeerError
from engine.mpc._join import JoinNoise, JoinSide, Spoke, star_join
from engine.mpc._join_field import decode, encode, uniform
from engine.mpc._join_links import decode_permutation
from engine.mpc._join_noise import discrete_laplace, dummy_count
from engine.mpc._join_prf import (
    KeyAgreement,
    PairKey,
    Pseudonymizer,
    Purpose,
    keyed_field_vector,
    keyed_permutation,
)
from engine.mpc._join_shamir import deal
from engine.mpc._join_tables import PaddedTable, match_pseudonyms
from engine.shamir import recombine
from tests.engine.join_party import Table, scenario_tables
from tests.engine.protocol_run import Run, run_parties

P64 = 18446744073709551427  # the field of MPyC's SecInt(32)
RUN_TIMEOUT = 90

# -- parts, on plain data ---------------------------------------------------------------


def test_pseudonyms_are_hmac_sha256_truncated() -> None:
    key = bytes(range(32))
    pseudonymizer = Pseudonymizer(key)
    for message in [b"", b"x", b"citizen-1" * 20]:
        assert pseudonymizer.mac(message) == hmac.digest(key, message, "sha256")
    (real,) = pseudonymizer.real([b"citizen-1"])
    assert real == hmac.digest(key, b"\x00citizen-1", "sha256")[:16]
    assert set(pseudonymizer.dummies(0, 5)).isdisjoint(pseudonymizer.dummies(1, 5))


def test_pair_keys_agree_within_a_pair_and_differ_across_pairs_and_calls() -> None:
    a, b, c = KeyAgreement(), KeyAgreement(), KeyAgreement()
    ab = a.pair_key(b.public, 0, 1, b"call 1")
    assert ab == b.pair_key(a.public, 1, 0, b"call 1")
    assert ab != a.pair_key(c.public, 0, 2, b"call 1")
    assert ab != b.pair_key(a.public, 1, 0, b"call 2")
    assert ab.stream != ab.pseudonym
    with pytest.raises(ValueError):
        a.pair_key(b"\x00" * 31, 0, 1, b"call 1")


def test_discrete_laplace_has_the_right_shape() -> None:
    epsilon = Fraction(1, 2)
    samples = Counter(discrete_laplace(epsilon) for _ in range(4000))
    alpha = float(np.exp(-0.5))
    assert abs(samples[0] / 4000 - (1 - alpha) / (1 + alpha)) < 0.04
    assert abs(sum(y * c for y, c in samples.items()) / 4000) < 0.3
    positive = sum(c for y, c in samples.items() if y > 0)
    negative = sum(c for y, c in samples.items() if y < 0)
    assert abs(positive - negative) < 250  # symmetric (about 5 standard deviations)


def test_dummy_counts_stay_within_zero_and_d() -> None:
    noise = JoinNoise(dummies=6, epsilon=Fraction(1, 10))  # wide noise: clipping happens
    counts = {dummy_count(noise) for _ in range(400)}
    assert counts <= set(range(7)) and {0, 6} <= counts
    assert dummy_count(JoinNoise(dummies=0)) == 0


@pytest.mark.parametrize(
    ("dummies", "epsilon"), [(-1, Fraction(1, 2)), (10, Fraction(0)), (10, 0.5), (True, 1)]
)
def test_join_noise_rejects_bad_parameters(dummies: Any, epsilon: Any) -> None:
    with pytest.raises(ValueError):
        JoinNoise(dummies=dummies, epsilon=epsilon)


def test_dealt_shares_recombine_and_hit_the_partner_stream() -> None:
    rng = random.Random(5)
    secret = np.array([rng.randrange(P64) for _ in range(20)], dtype=object)
    stream = np.array([rng.randrange(P64) for _ in range(20)], dtype=object)
    shares = deal(secret, 1, stream, [0, 1, 2, 3], P64)
    assert list(shares[1]) == list(stream)
    for pair in [(0, 2), (2, 3), (0, 3)]:
        values, bad = recombine({i + 1: list(shares[i]) for i in pair}, 1, P64)
        assert values == list(secret) and bad == []
    values, bad = recombine({i + 1: list(shares[i]) for i in range(4)}, 1, P64)
    assert values == list(secret) and bad == []  # all four lie on one line


def test_keyed_streams_repeat_per_name_and_differ_across_names() -> None:
    key = PairKey(stream=bytes(32), pseudonym=bytes(32))
    first = keyed_field_vector(key, Purpose.SPLIT, 0, 0, 50, P64)
    assert list(first) == list(keyed_field_vector(key, Purpose.SPLIT, 0, 0, 50, P64))
    for purpose, spoke, column in [
        (Purpose.MASK, 0, 0),
        (Purpose.SPLIT, 1, 0),
        (Purpose.SPLIT, 0, 1),
    ]:
        other = keyed_field_vector(key, purpose, spoke, column, 50, P64)
        assert not set(first) & set(other)
    permutation = keyed_permutation(key, Purpose.ROW_ORDER, 0, 1000)
    assert sorted(permutation) == list(range(1000))


def test_matching_pairs_equal_pseudonyms_and_completes_a_bijection() -> None:
    rng = random.Random(3)
    hub = [rng.randbytes(16) for _ in range(50)]
    other = [rng.randbytes(16) for _ in range(50)]
    common = {3: 40, 7: 0, 49: 17}  # hub row -> other row
    for i, j in common.items():
        other[j] = hub[i]
    matching = match_pseudonyms(b"".join(hub), b"".join(other), 50)
    assert sorted(matching.pairing) == list(range(100))  # a permutation of the extended side
    assert {i: int(matching.pairing[i]) for i in common} == common
    assert all(matching.pairing[i] >= 50 for i in range(50) if i not in common)  # zero rows
    assert [i for i, w in enumerate(matching.matched) if w] == sorted(common)
    assert matching.count == 3


def test_matching_rejects_a_repeated_pseudonym() -> None:
    rows = [bytes([i]) * 16 for i in range(10)]
    with pytest.raises(PeerError):
        match_pseudonyms(b"".join(rows[:9] + rows[:1]), b"".join(rows), 10)


@pytest.mark.parametrize(
    ("side", "error"),
    [
        (JoinSide([b"a", b"a"], [[1, 2]]), DataError),  # duplicate keys
        (JoinSide(["a", "b"], [[1, 2]]), DataError),  # type: ignore[list-item]  # not bytes
        (JoinSide([b"a", b"b"], [[1.0, 2]]), DataError),  # type: ignore[list-item]  # float
        (JoinSide([b"a", b"b"], [np.array([1.5, 2.0])]), DataError),  # float array
        (JoinSide([b"a", b"b"], [[1, 1 << 31]]), DataError),  # out of the 32-bit range
        (JoinSide([b"a", b"b"], [[1]]), DataError),  # short column
        (JoinSide([b"a", b"b"], [[1, 2], [3, 4]]), DataError),  # wrong width
        (JoinSide([bytes([i]) for i in range(7)], [list(range(7))]), CapacityError),
    ],
)
def test_padded_table_rejects_invalid_sides(side: JoinSide, error: type[Exception]) -> None:
    with pytest.raises(error):
        PaddedTable(side, width=1, length=10, reserve=4, modulus=P64, bits=32)


def test_padded_table_pads_with_zeros_and_shuffles() -> None:
    side = JoinSide([b"a", b"b", b"c"], [np.array([-1, 2, 3])])
    table = PaddedTable(side, width=1, length=40, reserve=4, modulus=P64, bits=32)
    (column,) = table.columns
    assert sorted(v for v in column if v) == [2, 3, P64 - 1]
    assert sorted(table.order) == list(range(40))
    assert len(table.pseudonyms(Pseudonymizer(bytes(32)), 0, 2, 1)) == 40 * 16


@pytest.mark.parametrize(
    "modulus", [5, 2**31 - 1, 2**61 - 1, P64, 2**89 - 1, 2**127 - 1, 2**160 + 7]
)  # one to three 64-bit limbs, widths that are and are not multiples of 8
def test_field_vectors_round_trip_and_draws_are_uniform(modulus: int) -> None:
    rng = random.Random(modulus)
    edges = [0, 1, modulus - 1, modulus // 2, (1 << 64) % modulus, ((1 << 64) - 1) % modulus]
    vector = np.array(edges + [rng.randrange(modulus) for _ in range(200)], dtype=object)
    payload = encode([vector, vector[::-1]], modulus)
    assert len(payload) == 2 * len(vector) * ((modulus.bit_length() + 7) // 8)
    first, second = decode(payload, 2, len(vector), modulus, "x")
    assert list(first) == list(vector) and list(second) == list(vector[::-1])
    streams = [random.Random(r).randbytes(2000 * 21) for r in range(64)]
    draws = uniform(lambda r, size: streams[r][:size], 2000, modulus)
    rows = np.array([1999, 0, 7, 7], dtype=np.int64)
    again = uniform(lambda r, size: streams[r][:size], 2000, modulus, rows)
    assert list(again) == [draws[i] for i in rows]  # positional: any subset, same values
    assert all(isinstance(v, int) and 0 <= v < modulus for v in draws)
    if modulus == 5:  # 3-bit candidates 5, 6, 7 are skipped: each residue about 400 times
        assert all(330 < c < 470 for c in Counter(draws).values())


def test_messages_of_the_wrong_shape_are_refused() -> None:
    vector = np.array([1, 2, 3], dtype=object)
    payload = encode([vector], P64)
    assert [list(v) for v in decode(payload, 1, 3, P64, "x")] == [[1, 2, 3]]
    with pytest.raises(PeerError):
        decode(payload[:-1], 1, 3, P64, "x")
    with pytest.raises(PeerError):
        decode(b"\xff" * 24, 1, 3, P64, "x")  # 2^64 - 1 >= p
    with pytest.raises(PeerError):
        decode_permutation(np.array([0, 0, 1], dtype="<u4").tobytes(), 3, "τ")
    with pytest.raises(PeerError):
        decode_permutation(np.array([0, 1, 3], dtype="<u4").tobytes(), 3, "τ")


@pytest.mark.parametrize(
    ("parties", "threshold", "hub", "spokes", "my_side", "length", "version"),
    [
        (2, 1, 0, [Spoke(1, 0, 1)], None, 100, "0.11"),  # two parties
        (5, 2, 0, [Spoke(1, 2, 1)], None, 100, "0.11"),  # threshold 2
        (3, 1, 0, [Spoke(1, 1, 1)], None, 100, "0.11"),  # owner helps itself
        (3, 1, 0, [Spoke(0, 2, 1)], None, 100, "0.11"),  # the hub is also a spoke
        (3, 1, 0, [Spoke(1, 2, 1)], None, 19, "0.11"),  # N < 2D
        (3, 1, 0, [Spoke(1, 3, 1)], None, 100, "0.11"),  # no party 3
        (3, 1, 1, [Spoke(0, 2, 1)], None, 100, "0.11"),  # party 0 owns a side but passes None
        (3, 1, 0, [Spoke(1, 0, 1)], None, 100, "0.11"),  # helper is the hub
        (3, 1, 0, [Spoke(1, 2, 1)], None, 100, "0.12"),  # another MPyC than the pinned one
    ],
)
def test_public_arguments_are_checked_before_any_message(
    parties: int,
    threshold: int,
    hub: int,
    spokes: list[Spoke],
    my_side: Any,
    length: int,
    version: str,
) -> None:
    mpc = SimpleNamespace(parties=[None] * parties, threshold=threshold, pid=0, version=version)
    secint = SimpleNamespace(field=SimpleNamespace(order=P64), bit_length=32)
    call = star_join(
        mpc,
        secint,
        hub=hub,
        hub_width=1,
        spokes=spokes,
        my_side=my_side,
        padded_length=length,
        noise=JoinNoise(10, Fraction(1, 2)),
    )
    with pytest.raises(ValueError):
        call.send(None)  # raises before the first exchange
    call.close()


# -- real runs: 3 and 4 processes -----------------------------------------------------------


def _scenario(
    name: str,
    seed: int,
    sizes: list[int],
    overlaps: list[int],
    roles: list[int],
    helpers: list[int],
    length: int,
    **fields: Any,
) -> dict[str, Any]:
    """Return a scenario for join_party.py: two tables (a pair) or three (a star).

    ``sizes``: rows of hub, other(s); ``overlaps``: hub keys each other table also holds;
    ``roles``: the party owning each table; ``helpers``: each spoke's helper.
    """
    scenario = {"name": name, "seed": seed, "sizes": sizes, "overlaps": overlaps}
    scenario.update(roles=roles, helpers=helpers, length=length, low=-50, high=100, groups=3)
    scenario.update(dummies=10, epsilon=[1, 2], bits=32)
    scenario.update(fields)
    return scenario


WIDE = {"bits": 64, "low": -(10**12), "high": 10**12}
PAIRS = [
    _scenario("disjoint", 1, [40, 50], [0], [0, 1], [2], 90),
    _scenario("full_overlap", 2, [60, 60], [60], [1, 2], [0], 80),
    _scenario("other_larger", 3, [15, 400], [10], [2, 0], [1], 420),
    _scenario("hub_larger", 4, [300, 20], [20], [0, 2], [1], 330),
    _scenario("wide_negative", 5, [50, 50], [25], [1, 0], [2], 70, **WIDE),
    _scenario("empty_hub", 6, [0, 30], [0], [0, 1], [2], 60),
    _scenario("no_dummies", 7, [20, 25], [7], [2, 1], [0], 30, dummies=0),
]
STARS = [
    _scenario("star", 8, [80, 60, 70], [40, 50], [0, 1, 2], [2, 1], 100),
    _scenario("star_hub_2", 9, [50, 90, 30], [45, 30], [2, 0, 1], [1, 0], 120),
]
FAULTS = [
    _scenario("mismatch", 10, [10, 10], [5], [0, 1], [2], 40, length_skew={"2": 1}),
    _scenario("duplicate", 11, [10, 10], [5], [0, 1], [2], 40, duplicate_hub_key=True),
    _scenario("after_abort", 12, [30, 30], [9], [0, 1], [2], 60),
]
SAME_SHAPE = [  # same public parameters, different sizes and intersections
    _scenario("shape_small_hub", 18, [20, 70], [0], [0, 1], [2], 100),
    _scenario("shape_large_hub", 19, [70, 20], [20], [0, 1], [2], 100),
]
OPEN = [
    _scenario("open", 15, [60, 50], [20], [0, 1], [2], 80, open=True),
    _scenario("open_hub_2", 16, [30, 30], [30], [2, 0], [1], 60, open=True, **WIDE),
    _scenario("open_empty", 17, [20, 20], [0], [1, 2], [0], 25, open=True, dummies=0),
]
FOUR_PARTIES = [  # party 1, then party 2, has no role: it only receives shares
    _scenario("bystander", 13, [40, 50], [20], [0, 2], [3], 80),
    _scenario("star4", 14, [40, 30, 35], [20, 25], [3, 1, 0], [0, 1], 60),
]
OPEN_FOUR_PARTIES = [_scenario("open4", 20, [40, 30], [15], [1, 3], [0], 60, open=True)]


@pytest.fixture(scope="module")
def three_parties(tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenarios = PAIRS + STARS + SAME_SHAPE + OPEN + FAULTS
    return run_parties(tmp_path_factory.mktemp("join3"), 3, scenarios, RUN_TIMEOUT)


@pytest.fixture(scope="module")
def four_parties(tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenarios = FOUR_PARTIES + OPEN_FOUR_PARTIES
    return run_parties(tmp_path_factory.mktemp("join4"), 4, scenarios, RUN_TIMEOUT)


def expected_pair(hub: Table, other: Table) -> list[int]:
    """Return the pair aggregates of join_party._aggregates, over the plaintext join."""
    f_a, a1, *groups = hub.columns
    f_b, v, b2 = other.columns
    row_of = {key: j for j, key in enumerate(other.keys)}
    pairs = [(i, row_of[key]) for i, key in enumerate(hub.keys) if key in row_of]
    count = sum(f_a[i] * f_b[j] for i, j in pairs)
    total = sum(f_a[i] * f_b[j] * v[j] for i, j in pairs)
    products = sum(a1[i] * b2[j] for i, j in pairs)
    semi = sum(f_a[i] for i, _ in pairs)
    grouped_sums = [sum(f_a[i] * f_b[j] * v[j] * g[i] for i, j in pairs) for g in groups]
    grouped_counts = [sum(f_a[i] * f_b[j] * g[i] for i, j in pairs) for g in groups]
    with_w = [count, total, products, semi, sum(f_a) - semi, *grouped_sums, *grouped_counts]
    other_only = sum(v[j] for _, j in pairs)
    by_group = [sum(g[i] * f_b[j] * v[j] for i, j in pairs) for g in groups]  # no f_a
    return [*with_w, count, total, products, other_only, sum(a1), *by_group]


def expected_star(hub: Table, b: Table, c: Table) -> list[int]:
    """Return the star aggregates of join_party._aggregates, over the plaintext joins."""
    f_a, a1, *groups = hub.columns
    (f_b, v_b, _), (f_c, v_c, _) = b.columns, c.columns
    in_b = {key: j for j, key in enumerate(b.keys)}
    in_c = {key: j for j, key in enumerate(c.keys)}
    ab = [(i, in_b[k]) for i, k in enumerate(hub.keys) if k in in_b]
    ac = [(i, in_c[k]) for i, k in enumerate(hub.keys) if k in in_c]
    abc = [(i, in_b[k], in_c[k]) for i, k in enumerate(hub.keys) if k in in_b and k in in_c]
    both = [(i, j, m, f_a[i] * f_b[j] * f_c[m]) for i, j, m in abc]
    return [
        sum(f for *_, f in both),
        sum(f * v_b[j] for _, j, _, f in both),
        sum(f * v_c[m] for _, _, m, f in both),
        sum(f_a[i] * f_b[j] * v_b[j] for i, j in ab),
        sum(f_a[i] * f_c[m] * v_c[m] for i, m in ac),
        sum(a1[i] * v_b[j] for i, j in ab),
        *[sum(f * v_c[m] * g[i] for i, _, m, f in both) for g in groups],
        sum(f for *_, f in both),
        sum(a1[i] * v_b[j] for i, j in ab),
        sum(a1[i] * v_c[m] for i, m in ac),
    ]


def _intersections(scenario: dict[str, Any]) -> list[int]:
    hub, *others = scenario_tables(scenario)
    return [len(set(hub.keys) & set(t.keys)) for t in others]


def _check(run: Run, scenario: dict[str, Any]) -> None:
    """Check every party's results for ``scenario`` against the plaintext join."""
    name, helpers = scenario["name"], scenario["helpers"]
    tables = scenario_tables(scenario)
    want = expected_pair(*tables) if len(tables) == 2 else expected_star(*tables)
    noisy = [run.results[h][name]["noisy"][k] for k, h in enumerate(helpers)]
    for k, size in enumerate(_intersections(scenario)):
        assert size <= noisy[k] <= size + 2 * scenario["dummies"], f"spoke {k}"
    for party, results in enumerate(run.results):
        result = results[name]
        assert result["opened"] == want + noisy, f"party {party}"  # Σ w is the noisy count
        assert result["length"] == scenario["length"]
        assert result["plain_looking"] == 0, f"party {party} holds a plaintext share vector"
        for k, helper in enumerate(helpers):
            assert (result["noisy"][k] is None) == (party != helper), f"party {party}"
        hub = scenario["roles"][0]
        assert result["hub_rows"] is (True if party == hub else None), f"party {party}"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", PAIRS, ids=[s["name"] for s in PAIRS])
def test_pair_join_aggregates_equal_plain_python(
    three_parties: Run, scenario: dict[str, Any]
) -> None:
    _check(three_parties, scenario)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", STARS, ids=[s["name"] for s in STARS])
def test_star_join_aggregates_equal_plain_python(
    three_parties: Run, scenario: dict[str, Any]
) -> None:
    _check(three_parties, scenario)


def expected_open(hub: Table, other: Table) -> list[int]:
    """Return the sums of join_party._open_aggregates over the plaintext join."""
    (f_a, a1, *_), (f_b, v, b2) = hub.columns, other.columns
    row_of = {key: j for j, key in enumerate(other.keys)}
    pairs = [(i, row_of[key]) for i, key in enumerate(hub.keys) if key in row_of]
    return [
        sum(f_a[i] * f_b[j] for i, j in pairs),
        sum(f_a[i] * f_b[j] * v[j] for i, j in pairs),
        sum(a1[i] * b2[j] for i, j in pairs),
        sum(f_a[i] * f_b[j] for i, j in pairs if a1[i] < v[j]),
    ]


def _check_open(run: Run, scenario: dict[str, Any]) -> None:
    """Check every party's results for an open-mode ``scenario`` against plain Python."""
    want = expected_open(*scenario_tables(scenario))
    (size,) = _intersections(scenario)
    results = [r[scenario["name"]] for r in run.results]
    (count,) = {r["count"] for r in results}  # public: the same at every party
    assert size <= count <= size + 2 * scenario["dummies"]
    for party, result in enumerate(results):
        assert result["opened"] == want, f"party {party}"
        assert result["plain_looking"] == 0, f"party {party} holds a plaintext share vector"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", OPEN, ids=[s["name"] for s in OPEN])
def test_open_join_keeps_the_matched_rows_only(
    three_parties: Run, scenario: dict[str, Any]
) -> None:
    _check_open(three_parties, scenario)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_no_dummies_reveal_the_exact_size_to_the_helper_only(three_parties: Run) -> None:
    (scenario,) = [s for s in PAIRS if s["name"] == "no_dummies"]
    helper = scenario["helpers"][0]
    assert three_parties.results[helper]["no_dummies"]["noisy"] == [7]


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_traffic_depends_on_the_public_parameters_only(three_parties: Run) -> None:
    for scenario in SAME_SHAPE:
        _check(three_parties, scenario)
    first, second = ([r[s["name"]]["sent"] for r in three_parties.results] for s in SAME_SHAPE)
    assert first == second  # each party's join traffic: sizes and matches do not show
    assert min(first) > 0


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_no_join_key_crosses_the_wire(three_parties: Run) -> None:
    for party, received in enumerate(three_parties.received):
        assert received, f"party {party} received nothing"
        assert b"citizen-" not in received, f"party {party} received a plaintext key"


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_mismatched_public_arguments_abort_at_every_party(three_parties: Run) -> None:
    assert [r["mismatch"].get("error") for r in three_parties.results] == ["PeerError"] * 3


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_an_invalid_side_aborts_at_every_party_and_the_session_goes_on(three_parties: Run) -> None:
    errors = [r["duplicate"].get("error") for r in three_parties.results]
    assert errors == ["DataError", "PeerError", "PeerError"]
    _check(three_parties, FAULTS[-1])


@pytest.mark.timeout(RUN_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", FOUR_PARTIES, ids=[s["name"] for s in FOUR_PARTIES])
def test_four_parties_with_a_bystander(four_parties: Run, scenario: dict[str, Any]) -> None:
    _check(four_parties, scenario)


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_open_join_with_a_bystander(four_parties: Run) -> None:
    (scenario,) = OPEN_FOUR_PARTIES
    _check_open(four_parties, scenario)
