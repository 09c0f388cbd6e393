"""Released cells as exact rationals: formulas, bounds, and decoding.

Every released statistic is an exact fraction ``num / den`` of the secret-shared totals of
a group — the count ``n``, the sum ``s`` and the sum of squares ``q`` of a column scaled to
integers by ``10**decimals``:

=============  ===============  ==============
aggregate      num              den
=============  ===============  ==============
COUNT          n                1
SUM            s                1
AVG            s                n
VAR_POP        n·q − s²         n²
VAR_SAMP       n·q − s²         n·(n − 1)
STDDEV_*       as VAR_*         as VAR_*       (the analyst's client takes the square root)
=============  ===============  ==============

Inside MPC, the pair is multiplied by a random field element unknown to anyone, so the
analyst learns ``num/den`` — exactly the statistic — and nothing else; rational
reconstruction turns the field element ``num·den⁻¹`` back into the fraction (unique when
the field is larger than ``2·|num|·den``). STDDEV is a one-to-one function of VAR, so
taking the root at the client releases no more than the standard deviation itself.
"""

from __future__ import annotations

import math
from enum import IntEnum
from fractions import Fraction

from engine.sql.parse import Aggregate

# Bounds that make every fraction reconstructible; owners enforce them before sharing.
OWNER_ROW_BITS = 36  # rows of one dataset at one owner
ROW_BITS = 44  # rows of one cell across all owners (at most 64 UNION ALL branches)
VALUE_BITS = 63  # |value · 10**decimals| < 2**63 (a BIGINT at the owner)


class CellKind(IntEnum):
    """The formula of a released cell (stable codes: they travel to the MPC worker)."""

    COUNT = 0
    SUM = 1
    AVG = 2
    VAR_POP = 3
    VAR_SAMP = 4


KIND_OF: dict[Aggregate, CellKind] = {
    Aggregate.COUNT: CellKind.COUNT,
    Aggregate.SUM: CellKind.SUM,
    Aggregate.AVG: CellKind.AVG,
    Aggregate.VAR_POP: CellKind.VAR_POP,
    Aggregate.VAR_SAMP: CellKind.VAR_SAMP,
    Aggregate.STDDEV_POP: CellKind.VAR_POP,
    Aggregate.STDDEV_SAMP: CellKind.VAR_SAMP,
}


def bounds(kind: CellKind) -> tuple[int, int]:
    """Return (B_num, B_den) in bits: |num| < 2**B_num and 0 <= den < 2**B_den."""
    s_bits = VALUE_BITS + ROW_BITS
    q_bits = 2 * VALUE_BITS + ROW_BITS
    return {
        CellKind.COUNT: (ROW_BITS, 1),
        CellKind.SUM: (s_bits, 1),
        CellKind.AVG: (s_bits, ROW_BITS),
        CellKind.VAR_POP: (ROW_BITS + q_bits, 2 * ROW_BITS),
        CellKind.VAR_SAMP: (ROW_BITS + q_bits, 2 * ROW_BITS),
    }[kind]


def field_bits(kinds: set[CellKind]) -> int:
    """Return the least field size in bits that reconstructs every kind in ``kinds``."""
    return max((sum(bounds(k)) + 2 for k in kinds), default=8)


def fraction(kind: CellKind, n: int, s: int, q: int) -> tuple[int, int]:
    """Return (num, den) for plain integer totals (the oracle of the MPC formulas)."""
    if kind is CellKind.COUNT:
        return n, 1
    if kind is CellKind.SUM:
        return s, 1
    if kind is CellKind.AVG:
        return s, n
    num = n * q - s * s
    return num, n * n if kind is CellKind.VAR_POP else n * (n - 1)


def decode(function: Aggregate, num: int, den: int, decimals: int) -> int | float | None:
    """Return the released value of a cell from its exact fraction; None if undefined.

    Counts, and sums of integer columns (``decimals == 0``), are exact Python ints.
    """
    if den == 0:
        return None
    kind = KIND_OF[function]
    if kind is CellKind.COUNT:
        return num // den
    scale = 10 ** (2 * decimals if kind in (CellKind.VAR_POP, CellKind.VAR_SAMP) else decimals)
    value = Fraction(num, den * scale)
    if kind is CellKind.SUM and decimals == 0:
        return value.numerator
    if function in (Aggregate.STDDEV_POP, Aggregate.STDDEV_SAMP):
        return math.sqrt(max(value, Fraction(0)))
    return float(value)


def reconstruct_fraction(u: int, modulus: int, num_bits: int, den_bits: int) -> tuple[int, int]:
    """Return (a, b) with a ≡ u·b (mod modulus), |a| < 2**num_bits, 0 < b < 2**den_bits.

    Rational reconstruction by the half extended Euclidean algorithm (Wang 1981). The
    answer is unique when ``modulus > 2**(num_bits + den_bits + 1)``. Raises ValueError if
    no such fraction exists (a corrupted share or a bound violated upstream).
    """
    if modulus <= 1 << (num_bits + den_bits + 1):
        raise ValueError(
            f"modulus: got {modulus.bit_length()} bits, want > {num_bits + den_bits + 1}"
        )
    bound = 1 << num_bits
    r0, r1 = modulus, u % modulus
    t0, t1 = 0, 1
    while r1 >= bound:
        quotient = r0 // r1
        r0, r1 = r1, r0 - quotient * r1
        t0, t1 = t1, t0 - quotient * t1
    a, b = r1, t1
    if b < 0:
        a, b = -a, -b
    if not 0 < b < 1 << den_bits or (a - u * b) % modulus:
        raise ValueError("fraction: got none within the bounds, want |num| and den in range")
    return a, b
