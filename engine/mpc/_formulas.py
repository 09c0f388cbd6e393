"""Each released cell's fraction (num, den) from its secret totals, on local shares.

See :mod:`engine.cells` for the table of formulas. The products every formula needs run
in at most two rounds, all cells of a job together: first n·q, s², n², n·(n−1) and, for
pairs, n·sxy, sx·sy, n·sxx, n·syy, sy²; then, only for REGR_INTERCEPT, REGR_R2 and CORR,
the products of those (sy·vx, sx·c, n·vx, c², vx·vy). The MPC worker passes the runtime in;
this module does not import MPyC.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from engine.cells import CellKind

Vector = Any  # numpy object array of field elements (Python ints in [0, p))


class Products(Protocol):
    p: int

    async def products(self, *pairs: tuple[Vector, Vector]) -> list[Vector]: ...


def onehot(kinds: Vector, *wanted: CellKind) -> Vector:
    """Return 1 where a cell's kind is one of ``wanted``, else 0 (public coefficients)."""
    return np.isin(kinds, [int(w) for w in wanted]).astype(object)


async def fractions(
    arithmetic: Products,
    kinds: Vector,
    totals: list[Vector],
    first_round: list[tuple[Vector, Vector]],
) -> tuple[Vector, Vector, Vector | None, list[Vector]]:
    """Return (num, den, c, extra) for every cell.

    ``totals`` are the vectors n, s, q, sy, syy, sxy (0 where unused); ``c`` is the
    covariance numerator of CORR cells (for its sign), None if there is none. Products in
    ``first_round`` ride along with the first round; their results come back as ``extra``.
    """
    p = arithmetic.p
    n, s, q, sy, syy, sxy = totals
    num = (
        n * onehot(kinds, CellKind.COUNT)
        + s * onehot(kinds, CellKind.SUM, CellKind.AVG, CellKind.VALUE)
    ) % p
    den = (
        onehot(kinds, CellKind.COUNT, CellKind.SUM)
        + n * onehot(kinds, CellKind.AVG)
        + q * onehot(kinds, CellKind.VALUE)
    ) % p
    variance = onehot(kinds, CellKind.VAR_POP, CellKind.VAR_SAMP)
    pair = onehot(
        kinds,
        CellKind.COVAR_POP,
        CellKind.COVAR_SAMP,
        CellKind.REGR_SLOPE,
        CellKind.REGR_INTERCEPT,
        CellKind.REGR_R2,
        CellKind.CORR,
    )
    second = onehot(kinds, CellKind.REGR_INTERCEPT, CellKind.REGR_R2, CellKind.CORR)
    pairs = list(first_round)
    wanted = variance.any() or pair.any()
    if wanted:
        pairs.append(
            (
                np.stack([n, s, n, n, n, s, sy, n]),
                np.stack([q, s, n, (n - 1) % p, sxy, sy, sy, syy]),
            )
        )
    if not pairs:
        return num, den, None, []
    results = await arithmetic.products(*pairs)
    extra = results[: len(first_round)]
    if not wanted:
        return num, den, None, extra
    nq, ss, nn, nn1, nsxy, sxsy, sysy, nsyy = results[len(first_round)]
    # For a pair, s and q hold sx and sxx.
    c = (nsxy - sxsy) % p
    vx = (nq - ss) % p
    vy = (nsyy - sysy) % p
    num = (num + vx * variance) % p
    den = (den + nn * onehot(kinds, CellKind.VAR_POP) + nn1 * onehot(kinds, CellKind.VAR_SAMP)) % p
    num = (
        num + c * onehot(kinds, CellKind.COVAR_POP, CellKind.COVAR_SAMP, CellKind.REGR_SLOPE)
    ) % p
    den = (
        den
        + nn * onehot(kinds, CellKind.COVAR_POP)
        + nn1 * onehot(kinds, CellKind.COVAR_SAMP)
        + vx * onehot(kinds, CellKind.REGR_SLOPE)
    ) % p
    has_corr = bool(onehot(kinds, CellKind.CORR).any())
    if second.any():
        syvx, sxc, nvx, cc, vxvy = await arithmetic.products(
            (sy, vx), (s, c), (n, vx), (c, c), (vx, vy)
        )
        intercept = onehot(kinds, CellKind.REGR_INTERCEPT)
        squared = onehot(kinds, CellKind.REGR_R2, CellKind.CORR)
        num = (num + (syvx - sxc) * intercept + cc * squared) % p
        den = (den + nvx * intercept + vxvy * squared) % p
    return num, den, (c if has_corr else None), extra
