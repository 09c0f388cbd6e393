"""The exact-fraction formulas and their reconstruction, against Python's statistics."""

from __future__ import annotations

import statistics
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cells import (
    ROW_BITS,
    VALUE_BITS,
    CellKind,
    bounds,
    decode,
    field_bits,
    fraction,
    reconstruct_fraction,
)
from engine.sql.parse import Aggregate

PRIME = (1 << 1279) - 1  # a Mersenne prime larger than every bound


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), min_size=2, max_size=40))
def test_fractions_equal_the_statistics_module(values: list[int]) -> None:
    n, s, q = len(values), sum(values), sum(v * v for v in values)
    assert Fraction(*fraction(CellKind.AVG, n, s, q)) == statistics.mean(map(Fraction, values))
    assert Fraction(*fraction(CellKind.VAR_POP, n, s, q)) == statistics.pvariance(
        list(map(Fraction, values))
    )
    assert Fraction(*fraction(CellKind.VAR_SAMP, n, s, q)) == statistics.variance(
        list(map(Fraction, values))
    )


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(CellKind)),
    st.integers(min_value=0, max_value=(1 << 40)),
    st.data(),
)
def test_reconstruction_recovers_every_fraction_within_bounds(
    kind: CellKind, den_seed: int, data: st.DataObject
) -> None:
    num_bits, den_bits = bounds(kind)
    num = data.draw(st.integers(-(1 << num_bits) + 1, (1 << num_bits) - 1))
    den = data.draw(st.integers(1, (1 << den_bits) - 1)) if den_bits > 1 else 1
    del den_seed
    u = num * pow(den, -1, PRIME) % PRIME
    a, b = reconstruct_fraction(u, PRIME, num_bits, den_bits)
    assert Fraction(a, b) == Fraction(num, den)


def test_field_is_large_enough_for_reconstruction() -> None:
    for kind in CellKind:
        assert field_bits({kind}) > sum(bounds(kind)) + 1
    assert bounds(CellKind.SUM)[0] == VALUE_BITS + ROW_BITS


def test_decode_gives_exact_ints_scaled_floats_and_roots() -> None:
    assert decode(Aggregate.COUNT, 42, 1, 0) == 42
    assert decode(Aggregate.SUM, 12345, 1, 0) == 12345
    assert decode(Aggregate.SUM, 12345, 1, 2) == 123.45
    assert decode(Aggregate.AVG, 10, 4, 1) == 0.25
    assert decode(Aggregate.VAR_POP, 400, 1, 1) == 4.0
    assert decode(Aggregate.STDDEV_POP, 400, 1, 1) == 2.0
    assert decode(Aggregate.VAR_SAMP, 0, 0, 0) is None  # a single row: undefined
