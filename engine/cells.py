"""Released cells as exact rationals: formulas, bounds, and decoding.

Every released statistic is an exact fraction ``num / den`` of secret-shared totals of a
group. For one column x (scaled to integers by ``10**d``): the count ``n``, the sum ``s``
and the sum of squares ``q``; for a pair (y, x) over the rows where both are present: ``n``,
``sx``, ``sy``, ``sxx``, ``syy``, ``sxy``; for an order statistic computed where the data
is (MIN, MAX, MEDIAN, QUANTILE_CONT): its exact value ``v / w``.

=================  ===============================  ===========================
aggregate          num                              den
=================  ===============================  ===========================
COUNT, REGR_COUNT  n                                1
SUM                s                                1
AVG                s                                n
VAR_POP            n·q − s²                         n²
VAR_SAMP           n·q − s²                         n·(n − 1)
COVAR_POP          c = n·sxy − sx·sy                n²
COVAR_SAMP         c                                n·(n − 1)
REGR_SLOPE         c                                vx = n·sxx − sx²
REGR_INTERCEPT     sy·vx − sx·c                     n·vx
REGR_R2, CORR      c²                               vx·vy   (vy = n·syy − sy²)
MIN … QUANTILE     v                                w
STDDEV_*           as VAR_*                         (the client takes the square root)
=================  ===============================  ===========================

CORR also releases the sign of c (one secure comparison), and the client returns
sign·√(c²/(vx·vy)); STDDEV is a one-to-one function of VAR. Inside MPC each pair is
multiplied by a random field element unknown to anyone, so the analyst learns ``num/den``
— the statistic — and nothing else; rational reconstruction turns ``num·den⁻¹`` back into
the fraction (unique when the field exceeds ``2·|num|·den``). A zero ``den`` is an
undefined statistic (NULL), as in DuckDB, except REGR_R2 of a constant y (DuckDB: 1).
"""

from __future__ import annotations

import math
from enum import IntEnum
from fractions import Fraction

from engine.sql.query import Aggregate

# Bounds that make every fraction reconstructible; owners enforce them before sharing.
OWNER_ROW_BITS = 36  # rows of one dataset at one owner
ROW_BITS = 44  # rows of one cell across all owners (at most 64 UNION ALL branches)
VALUE_BITS = 63  # |value · 10**decimals| < 2**63 (a BIGINT at the owner)
# The dominance rule compares k·a with 100·t (k < 2**7, a and t < 2**(VALUE_BITS + ROW_BITS)).
DOMINANCE_BITS = VALUE_BITS + ROW_BITS + 7 + 1


class CellKind(IntEnum):
    """The formula of a released cell (stable codes: they travel to the MPC worker)."""

    COUNT = 0
    SUM = 1
    AVG = 2
    VAR_POP = 3
    VAR_SAMP = 4
    COVAR_POP = 5
    COVAR_SAMP = 6
    REGR_SLOPE = 7
    REGR_INTERCEPT = 8
    REGR_R2 = 9
    CORR = 10
    VALUE = 11

    @property
    def bivariate(self) -> bool:
        return self in _BIVARIATE


_BIVARIATE = frozenset(
    {
        CellKind.COVAR_POP,
        CellKind.COVAR_SAMP,
        CellKind.REGR_SLOPE,
        CellKind.REGR_INTERCEPT,
        CellKind.REGR_R2,
        CellKind.CORR,
    }
)

KIND_OF: dict[Aggregate, CellKind] = {
    Aggregate.COUNT: CellKind.COUNT,
    Aggregate.REGR_COUNT: CellKind.COUNT,
    Aggregate.SUM: CellKind.SUM,
    Aggregate.AVG: CellKind.AVG,
    Aggregate.VAR_POP: CellKind.VAR_POP,
    Aggregate.VAR_SAMP: CellKind.VAR_SAMP,
    Aggregate.STDDEV_POP: CellKind.VAR_POP,
    Aggregate.STDDEV_SAMP: CellKind.VAR_SAMP,
    Aggregate.COVAR_POP: CellKind.COVAR_POP,
    Aggregate.COVAR_SAMP: CellKind.COVAR_SAMP,
    Aggregate.REGR_SLOPE: CellKind.REGR_SLOPE,
    Aggregate.REGR_INTERCEPT: CellKind.REGR_INTERCEPT,
    Aggregate.REGR_R2: CellKind.REGR_R2,
    Aggregate.CORR: CellKind.CORR,
    Aggregate.MIN: CellKind.VALUE,
    Aggregate.MAX: CellKind.VALUE,
    Aggregate.MEDIAN: CellKind.VALUE,
    Aggregate.QUANTILE_CONT: CellKind.VALUE,
}

_S = VALUE_BITS + ROW_BITS  # |s|, |sx|, |sy|
_Q = 2 * VALUE_BITS + ROW_BITS  # q, sxx, syy, |sxy|
_C = ROW_BITS + _Q + 1  # |c| = |n·sxy − sx·sy|, and vx, vy
_QUANTILE_DEN_BITS = 16  # QUANTILE_CONT fractions q = a/b with b < 2**16


def bounds(kind: CellKind) -> tuple[int, int]:
    """Return (B_num, B_den) in bits: |num| < 2**B_num and 0 <= den < 2**B_den."""
    return {
        CellKind.COUNT: (ROW_BITS, 1),
        CellKind.SUM: (_S, 1),
        CellKind.AVG: (_S, ROW_BITS),
        CellKind.VAR_POP: (_C, 2 * ROW_BITS),
        CellKind.VAR_SAMP: (_C, 2 * ROW_BITS),
        CellKind.COVAR_POP: (_C, 2 * ROW_BITS),
        CellKind.COVAR_SAMP: (_C, 2 * ROW_BITS),
        CellKind.REGR_SLOPE: (_C, _C),
        CellKind.REGR_INTERCEPT: (_S + _C + 1, ROW_BITS + _C),
        CellKind.REGR_R2: (2 * _C, 2 * _C),
        CellKind.CORR: (2 * _C, 2 * _C),
        CellKind.VALUE: (VALUE_BITS + _QUANTILE_DEN_BITS + 2, _QUANTILE_DEN_BITS),
    }[kind]


def field_bits(kinds: set[CellKind]) -> int:
    """Return the least field size in bits that reconstructs every kind in ``kinds``."""
    return max((sum(bounds(k)) + 2 for k in kinds), default=8)


def fraction(kind: CellKind, n: int, s: int, q: int) -> tuple[int, int]:
    """Return (num, den) for plain univariate totals (the oracle of the MPC formulas)."""
    if kind is CellKind.COUNT:
        return n, 1
    if kind is CellKind.SUM:
        return s, 1
    if kind is CellKind.AVG:
        return s, n
    num = n * q - s * s
    return num, n * n if kind is CellKind.VAR_POP else n * (n - 1)


def pair_fraction(
    kind: CellKind, n: int, sx: int, sy: int, sxx: int, syy: int, sxy: int
) -> tuple[int, int]:
    """Return (num, den) for plain bivariate totals (the oracle of the MPC formulas)."""
    c = n * sxy - sx * sy
    vx = n * sxx - sx * sx
    vy = n * syy - sy * sy
    return {
        CellKind.COVAR_POP: (c, n * n),
        CellKind.COVAR_SAMP: (c, n * (n - 1)),
        CellKind.REGR_SLOPE: (c, vx),
        CellKind.REGR_INTERCEPT: (sy * vx - sx * c, n * vx),
        CellKind.REGR_R2: (c * c, vx * vy),
        CellKind.CORR: (c * c, vx * vy),
    }[kind]


def decode(
    function: Aggregate,
    num: int,
    den: int,
    decimals: int,
    second_decimals: int = 0,
    negative: bool = False,
) -> int | float | None:
    """Return the released value of a cell from its exact fraction; None if undefined.

    ``decimals`` scale the aggregated column (y for a pair), ``second_decimals`` the x of
    a pair; ``negative`` is the released sign of a CORR. Counts, sums of integer columns and
    MIN/MAX of integer columns are exact Python ints.
    """
    if den == 0:
        return None
    kind = KIND_OF[function]
    if kind is CellKind.COUNT:
        return num // den
    dy, dx = decimals, second_decimals
    scale = {
        CellKind.SUM: 10**dy,
        CellKind.AVG: 10**dy,
        CellKind.VAR_POP: 10 ** (2 * dy),
        CellKind.VAR_SAMP: 10 ** (2 * dy),
        CellKind.COVAR_POP: 10 ** (dx + dy),
        CellKind.COVAR_SAMP: 10 ** (dx + dy),
        CellKind.REGR_SLOPE: Fraction(10**dy, 10**dx),
        CellKind.REGR_INTERCEPT: 10**dy,
        CellKind.REGR_R2: 1,
        CellKind.CORR: 1,
        CellKind.VALUE: 10**dy,
    }[kind]
    value = Fraction(num, den) / scale
    if kind is CellKind.SUM and dy == 0:
        return int(value.numerator)
    if function in (Aggregate.MIN, Aggregate.MAX) and dy == 0 and value.denominator == 1:
        return int(value.numerator)
    if function in (Aggregate.STDDEV_POP, Aggregate.STDDEV_SAMP):
        return math.sqrt(max(value, Fraction(0)))
    if kind is CellKind.CORR:
        root = math.sqrt(max(value, Fraction(0)))
        return -root if negative else root
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
