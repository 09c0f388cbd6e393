"""Locating ranks in secret running counts: a search by levels of blocks.

Given running counts C (nondecreasing, secret) in sorted order and, per row r, a public
scale b_r and a secret threshold θ_r, :func:`locate` returns the value at the first
position k with ``b_r·C[k] >= θ_r`` (0 if there is none). Comparing every position costs
one secure comparison per position and row; instead the M positions are cut into s_1
blocks, each block into s_2 blocks, and so on (M = s_1·…·s_L):

- level 1 compares the last count of each of the s_1 blocks with the threshold. Because C
  is nondecreasing, ``[b·C >= θ]`` is 0 then 1 along the blocks; its first differences
  are a one-hot selector u of the block holding the first crossing (all zero if none);
- ``u @ blocks`` (a secure matrix product, one round, :mod:`engine.mpc._order_products`)
  extracts that block's counts and values, still secret; the next level searches inside
  it, and the last level (blocks of one position) selects the value itself.

So a row costs s_1 + … + s_L comparisons (about L·M^(1/L)) instead of M, in L batches,
plus L matrix products (the first one 2·M local multiply-adds per row, resharing 2·M/s_1
elements per row: the selected block's counts and values). A first level with more
blocks than the others shrinks those extractions; the cost model of
:func:`engine.mpc._order_plan.level_sizes` weighs one against the other. The result is
exact: nothing is approximated, and positions of weight 0 (equal C) are never selected.
Nothing is opened but MPyC's masked comparison values.

The comparisons use ``bits`` as their bit length: every ``b_r·C - θ_r`` must lie in
``[-2^(bits-1), 2^(bits-1))`` (MPyC gives wrong results, silently, otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.mpc._order_products import SecureProducts

SecureArray = Any  # an MPyC secure array (MPyC is not imported here)


async def locate(
    products: SecureProducts,
    prefix: SecureArray,
    values: SecureArray,
    scale: npt.NDArray[np.object_],
    thresholds: SecureArray,
    sizes: Sequence[int],
    bits: int,
) -> SecureArray:
    """Return, per row, the value at the first position where ``scale·C >= threshold``.

    ``prefix`` has shape (S, M): S sources of running counts; the R rows are grouped by
    source, R/S rows each, and row r searches the counts of source ``r // (R/S)``.
    ``values`` (shape (M,)) are the values in the same order, ``scale`` (R public ints > 0)
    and ``thresholds`` (R secret) define the rows. Requires ``prod(sizes) == M``, R a
    multiple of S and the bit bound above. Returns a secure array of shape (R,).
    """
    mpc = products.mpc
    sources, padded = prefix.shape
    rows = len(scale)
    per = rows // sources
    scale_rows = np.asarray(scale, dtype=object).reshape(rows, 1)
    theta_rows = thresholds.reshape(rows, 1)

    first, rest = sizes[0], padded // sizes[0]
    blocks = prefix.reshape(sources, first, rest)
    ends = blocks[:, :, rest - 1].reshape(sources, 1, first)
    difference = ends * scale_rows.reshape(sources, per, 1) - theta_rows.reshape(sources, per, 1)
    selector = _first_crossing(mpc, difference, bits)  # (S, R/S, s_1)
    pairs = [(selector.reshape(rows, first), values.reshape(first, rest))]
    if rest > 1:
        pairs.append((selector, blocks))
    found, *picked = await products.matmul(pairs)  # (R, M/s_1) values, (S, R/S, M/s_1) counts
    counts = picked[0].reshape(rows, rest) if picked else None
    for size in sizes[1:]:
        assert counts is not None
        rest //= size
        counts3 = counts.reshape(rows, size, rest)
        values3 = found.reshape(rows, size, rest)
        difference = counts3[:, :, rest - 1] * scale_rows - theta_rows
        selector = _first_crossing(mpc, difference, bits).reshape(rows, 1, size)
        if rest == 1:
            (found,) = await products.matmul([(selector, values3)])
            counts = None
            continue
        found, counts = await products.matmul([(selector, values3), (selector, counts3)])
        found, counts = found.reshape(rows, rest), counts.reshape(rows, rest)
    return found.reshape(rows)


def _first_crossing(mpc: Any, difference: SecureArray, bits: int) -> SecureArray:
    """Return the one-hot selector of the first nonnegative entry along the last axis.

    Entries must be nondecreasing in sign along the last axis ([d >= 0] is 0s then 1s);
    a row with no nonnegative entry gets all zeros.
    """
    below = mpc.np_sgn(difference, l=bits, LT=True)  # [d < 0]: 1s then 0s
    if difference.shape[-1] == 1:
        return 1 - below
    return mpc.np_concatenate(
        (1 - below[..., :1], below[..., :-1] - below[..., 1:]), axis=difference.ndim - 1
    )
