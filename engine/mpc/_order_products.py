"""Secure products for order statistics: local products, then one round of resharing.

MPyC multiplies shared arrays by multiplying shares locally and resharing (GRR), drawing
every random coefficient with ``secrets.randbelow``: about 5 µs per element and party on
this machine, which dominated the search's block extractions (millions of elements).
:class:`SecureProducts` multiplies the raw shares locally (numpy) and reduces the degree
with :func:`engine.mpc._join_stage.reshare` under the call's pair keys: AES streams instead
of ``secrets``, half the traffic, several products per round. Everything stays an ordinary
MPyC sharing: inputs are MPyC secure arrays, results are wrapped as MPyC secure arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.mpc._join_field import FieldVector, secure_array
from engine.mpc._join_prf import PairKey, Purpose
from engine.mpc._join_stage import reshare

SecureArray = Any  # an MPyC secure array (MPyC is not imported here)
_MAX_CALLS = 256  # stream names (purpose, index) per call of order statistics


class SecureProducts:
    """Matrix and elementwise products of secure arrays, one resharing round per call."""

    def __init__(self, mpc: Any, secint: Any, keys: dict[int, PairKey]) -> None:
        self.mpc, self.secint, self.keys = mpc, secint, keys
        self.modulus: int = secint.field.order
        self._calls = 0

    async def shares(self, array: SecureArray) -> FieldVector:
        """Return this party's shares of ``array`` (waiting until they are computed)."""
        return (await self.mpc.gather(array)).value  # type: ignore[no-any-return]

    def secure(self, shares: FieldVector) -> SecureArray:
        """Return the MPyC secure array whose shares (at this party) are ``shares``."""
        return secure_array(self.secint, shares)

    async def matmul(self, pairs: Sequence[tuple[SecureArray, SecureArray]]) -> list[SecureArray]:
        """Return ``a @ b`` for each pair (numpy's matmul rules), in one resharing round."""
        products = []
        for a, b in pairs:
            x, y = await self.shares(a), await self.shares(b)
            products.append(field_matmul(x, y, self.modulus))
        return await self._reduced(products)

    async def multiply_shares(
        self, pairs: Sequence[tuple[FieldVector, FieldVector]]
    ) -> list[FieldVector]:
        """Return shares of ``a * b`` (elementwise, broadcast) for raw share arrays, one round."""
        reduced = await self._reshared([np.multiply(a, b) for a, b in pairs])
        return reduced

    async def reduce_shares(self, products: list[FieldVector]) -> list[FieldVector]:
        """Return degree-1 shares of each degree-2 share array of ``products``, one round."""
        return await self._reshared(products)

    async def _reduced(self, products: list[FieldVector]) -> list[SecureArray]:
        return [self.secure(v) for v in await self._reshared(products)]

    async def _reshared(self, products: list[FieldVector]) -> list[FieldVector]:
        if self._calls >= _MAX_CALLS:
            raise ValueError(f"secure products: got more than {_MAX_CALLS} rounds, want fewer")
        index, self._calls = self._calls, self._calls + 1
        flat = np.concatenate([(p % self.modulus).reshape(-1) for p in products])
        reduced = await reshare(
            self.mpc,
            self.keys,
            flat,
            modulus=self.modulus,
            purpose=Purpose.ORDER_RESHARE,
            index=index,
        )
        result, start = [], 0
        for p in products:
            result.append(reduced[start : start + p.size].reshape(p.shape))
            start += p.size
        return result


_MANTISSA_BITS = 53  # integers below 2^53 are exact in float64


def field_matmul(a: FieldVector, b: FieldVector, modulus: int) -> FieldVector:
    """Return ``(a @ b) % modulus`` for arrays of field elements (numpy matmul rules).

    Exact and about ten times faster than numpy's matmul on Python ints: the elements are
    cut into limbs of w bits, and each pair of limbs is multiplied as float64 matrices
    (BLAS), whose sums stay below 2^53 (w chosen from the inner dimension), then
    recombined with Python ints on the output only. Requires elements in [0, modulus).
    """
    inner = a.shape[-1]
    # A sum of limb products adds up to ``count`` matrix products of ``inner`` terms each,
    # every term below 2^(2w): 2w + log2(inner) + log2(count) bits must fit the mantissa.
    width = 24
    count = -(-modulus.bit_length() // width)
    while width >= 8 and 2 * width + inner.bit_length() + count.bit_length() > _MANTISSA_BITS:
        width -= 1
        count = -(-modulus.bit_length() // width)
    if width < 8:  # an inner dimension beyond about 2^30: not worth limbs
        return np.matmul(a, b) % modulus  # type: ignore[no-any-return]
    left, right = _limbs(a, width, count, modulus), _limbs(b, width, count, modulus)
    sums: list[npt.NDArray[np.float64]] = []
    for i in range(count):
        for j in range(count):
            term = np.matmul(left[i], right[j])
            if i + j < len(sums):
                sums[i + j] += term
            else:
                sums.append(term)
    result = np.zeros(sums[0].shape, dtype=object)
    for k in range(len(sums) - 1, -1, -1):
        result = (result << width) + sums[k].astype(np.int64).astype(object)
    return result % modulus


def _limbs(
    values: FieldVector, width: int, count: int, modulus: int
) -> list[npt.NDArray[np.float64]]:
    """Return ``count`` float64 arrays of the w-bit limbs of ``values``, lowest first."""
    mask = (1 << width) - 1
    if modulus <= 1 << 64:
        words = values.astype(np.uint64)
        return [
            ((words >> np.uint64(width * i)) & np.uint64(mask)).astype(np.float64)
            for i in range(count)
        ]
    return [((values >> (width * i)) & mask).astype(np.float64) for i in range(count)]
