"""Query-set overlap control's sketches and decisions, against a plain set-difference oracle."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.overlap import (
    PRIME,
    OverlapHistory,
    Sketch,
    difference,
    linear_complexities,
    linear_complexity,
    power_sums,
)

M = 10  # the minimum group size of these tests: K = 19 power sums


def _sketch(rows: list[int], terms: int = 2 * M - 1) -> Sketch:
    return Sketch(len(rows), power_sums(np.array(rows, dtype=np.uint64), terms))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, PRIME - 1), min_size=0, max_size=60, unique=True),
    st.integers(0, 14),
    st.integers(0, 14),
    st.randoms(use_true_random=False),
)
def test_the_sketches_difference_counts_the_rows_two_sets_differ_by(
    base: list[int], added: int, removed: int, rng: random.Random
) -> None:
    removed = min(removed, len(base))
    fresh = dict.fromkeys(rng.randrange(1, PRIME) for _ in range(added))  # distinct rows
    extra = [x for x in fresh if x not in base]
    first = base + extra
    dropped = set(rng.sample(range(len(base)), removed))
    second = [x for i, x in enumerate(base) if i not in dropped]
    truth = len(extra) + removed  # |first Δ second|
    got = difference(_sketch(first), _sketch(second))
    if truth < M:
        assert got == truth
    else:
        assert got >= M


def test_vectorized_berlekamp_massey_agrees_with_the_scalar_one() -> None:
    rng = random.Random(11)
    sequences = [[rng.randrange(PRIME) for _ in range(19)] for _ in range(50)]
    for _ in range(200):  # low-complexity sequences too (the ones that matter)
        roots = [rng.randrange(1, PRIME) for _ in range(rng.randrange(0, 12))]
        sequences.append([sum(pow(r, k, PRIME) for r in roots) % PRIME for k in range(1, 20)])
    vector = linear_complexities(np.array(sequences, dtype=np.uint64))
    assert list(vector) == [linear_complexity(s) for s in sequences]


def test_history_withholds_small_and_close_parts_and_allows_identical_or_far(
    tmp_path: Path,
) -> None:
    history = OverlapHistory(tmp_path / "overlap.sqlite")
    rng = random.Random(3)
    people = [rng.randrange(1, PRIME) for _ in range(200)]
    east = _sketch(people[:100])
    assert history.check_and_record("d", M, "q1", [east]) == [True]
    assert history.check_and_record("d", M, "q2", [_sketch(people[:99])]) == [False]  # 1 less
    assert history.check_and_record("d", M, "q3", [_sketch(people[:100])]) == [True]  # same
    assert history.check_and_record("d", M, "q4", [_sketch(people[:90])]) == [True]  # 10 less
    assert history.check_and_record("d", M, "q5", [_sketch(people[:5])]) == [False]  # small
    assert history.check_and_record("d", M, "q6", [Sketch(0, (0,) * 19)]) == [True]  # empty
    # Another dataset has its own history.
    assert history.check_and_record("e", M, "q7", [_sketch(people[:99])]) == [True]
    # Two parts of one release are compared with each other too (a race in one batch).
    pair = [_sketch(people[100:150]), _sketch(people[100:151])]
    assert history.check_and_record("f", M, "q8", pair) == [True, False]
    assert history.size("d") == 3 and history.size() == 5
    history.close()
