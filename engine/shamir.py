"""Recombine Shamir shares released to the analyst, and check that they are consistent.

Each party returns its share (evaluation at its point x = index + 1) of a fresh random
polynomial of degree t whose constant term is the released value. Any t + 1 shares give the
value; with more shares, the rest must lie on the same polynomial, which detects a party
that returned a wrong share.
"""

from __future__ import annotations

from collections.abc import Sequence


def lagrange_at(x: int, xs: Sequence[int], modulus: int) -> list[int]:
    """Return the Lagrange coefficients at ``x`` of the distinct points ``xs`` mod ``modulus``."""
    coefficients = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * (x - xj) % modulus
                den = den * (xi - xj) % modulus
        coefficients.append(num * pow(den, -1, modulus) % modulus)
    return coefficients


def recombine(
    shares: dict[int, Sequence[int]], threshold: int, modulus: int
) -> tuple[list[int], list[int]]:
    """Return (values, inconsistent_points) from ``shares`` (point -> share vector).

    Uses the t + 1 lowest points to interpolate and checks every other point against the
    polynomial; ``inconsistent_points`` lists the points whose shares disagree. Raises
    ValueError with fewer than t + 1 shares or vectors of different lengths.
    """
    points = sorted(shares)
    if len(points) < threshold + 1:
        raise ValueError(f"shares: got {len(points)}, want at least {threshold + 1}")
    lengths = {len(shares[x]) for x in points}
    if len(lengths) != 1:
        raise ValueError(f"shares: got vectors of lengths {sorted(lengths)}, want equal lengths")
    base = points[: threshold + 1]
    at_zero = lagrange_at(0, base, modulus)
    size = lengths.pop()
    values = [
        sum(c * shares[x][k] for c, x in zip(at_zero, base, strict=True)) % modulus
        for k in range(size)
    ]
    bad = []
    for extra in points[threshold + 1 :]:
        coefficients = lagrange_at(extra, base, modulus)
        for k in range(size):
            expected = sum(c * shares[x][k] for c, x in zip(coefficients, base, strict=True))
            if expected % modulus != shares[extra][k] % modulus:
                bad.append(extra)
                break
    return values, bad
