"""The secure overlap decision over joins (engine.mpc._join_overlap) in real MPyC processes,
against a plaintext oracle: random key sets whose weights differ in 0, 1, m − 1, m or m + 3
keys, the Hankel determinant (power traces, Newton's identities), the zero tests and the
conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mpc._join_overlap import plain_close
from tests.engine.join_party import overlap_sketches
from tests.engine.protocol_run import Run, run_parties

M = 4
CHANGES = [0, 1, M - 1, M, M + 3, 2, 0, 1]
SCENARIO = {
    "name": "overlap",
    "kind": "overlap",
    "seed": 9,
    "m": M,
    "pairs": [[changes, 12] for changes in CHANGES],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_parties(tmp_path_factory.mktemp("overlap"), 3, [SCENARIO], 120)


def test_the_secure_decision_matches_the_plaintext_oracle(run: Run) -> None:
    result = run.results[0]["overlap"]
    q = result["modulus"]
    new, kept = overlap_sketches(SCENARIO, q)
    oracle = [int(plain_close(a, b, M, q)) for a, b in zip(new, kept, strict=True)]
    assert oracle == [int(0 < c < M) for c in CHANGES]  # the math: close iff 1..m−1 changed
    assert result["pairs"] == oracle
    # every new row against every kept row: row i is close to kept i or to another kept row
    every = [int(any(plain_close(a, b, M, q) for b in kept)) for a in new]
    assert result["any"] == every
    assert all(r["overlap"]["pairs"] == oracle for r in run.results)


def test_zero_tests_and_conversions_are_exact(run: Run) -> None:
    result = run.results[1]["overlap"]
    assert result["zeros"] == [1, 0, 0, 0]
    assert result["converted"] == [0, 5, 1000]


def test_the_parties_agree_on_the_kept_rows_they_all_hold(run: Run) -> None:
    # Party 2 lacked a kept row: only the common ones are compared, and the job knows the
    # windows differed (it then withholds every cell, and each party drops the others).
    for result in run.results:
        assert result["overlap"]["windows"] == [[5, 9], False, [5, 9], True]


def test_the_plaintext_oracle_counts_differences() -> None:
    q = (1 << 61) - 1
    base = {x: 1 for x in range(100, 130)}
    for changed, close in [(0, False), (1, True), (M - 1, True), (M, False), (M + 3, False)]:
        other = dict(base)
        for x in range(100, 100 + changed):
            other[x] = 0
        a = [sum(w * pow(x, k, q) for x, w in other.items()) % q for k in range(2 * M - 1)]
        b = [sum(w * pow(x, k, q) for x, w in base.items()) % q for k in range(2 * M - 1)]
        assert plain_close(a, b, M, q) is close, changed


def test_a_repeated_identity_is_one_difference(tmp_path: Path) -> None:
    del tmp_path
    q = (1 << 61) - 1
    a = [(2 * pow(7, k, q) + pow(9, k, q)) % q for k in range(2 * M - 1)]
    b = [(pow(7, k, q) + pow(9, k, q)) % q for k in range(2 * M - 1)]
    assert plain_close(a, b, M, q)  # key 7's weight changed: one key
