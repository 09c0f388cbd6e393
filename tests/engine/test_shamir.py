"""Recombination of released shares, and detection of an inconsistent share."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.shamir import recombine

P = 2**127 - 1


def _share(secrets_: list[int], t: int, n: int, rng: random.Random) -> dict[int, list[int]]:
    polys = [[s] + [rng.randrange(P) for _ in range(t)] for s in secrets_]
    return {
        x: [sum(c * x**k for k, c in enumerate(poly)) % P for poly in polys]
        for x in range(1, n + 1)
    }


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, P - 1), min_size=1, max_size=6), st.integers(1, 3), st.randoms())
def test_any_t_plus_one_shares_recombine(secrets_: list[int], t: int, rng: random.Random) -> None:
    n = 2 * t + 1
    shares = _share(secrets_, t, n, rng)
    values, bad = recombine(shares, t, P)
    assert values == secrets_ and bad == []
    subset = dict(rng.sample(sorted(shares.items()), t + 1))
    assert recombine(subset, t, P)[0] == secrets_


def test_a_wrong_share_is_detected() -> None:
    shares = _share([5, 7], 1, 3, random.Random(1))
    shares[3] = [shares[3][0], (shares[3][1] + 1) % P]
    assert recombine(shares, 1, P)[1] == [3]
