"""Secret residues modulo public divisors: x mod b for a vector of secret x >= 0.

Needed for QUANTILE_CONT's interpolation weight ``(a(T-1) mod b) / b``. MPyC's ``mod`` is
scalar, and in 0.11 it masks with ``b·r`` for r below ``2^k`` only (k the security
parameter), too little for inputs near ``2^k``; so this module masks itself:

1. Two parties p1, p2 each deal (:func:`engine.mpc._join_stage.deal_vectors`) a mask
   ``r_i = b·R_i + ρ_i`` and ``ρ_i``, with ρ_i uniform in [0, b) and R_i uniform below
   ``2^h``, ``b·2^h >= 2^(l_x + k)``; no single party knows ``r = r_1 + r_2`` or
   ``ρ = ρ_1 + ρ_2``.
2. Everyone opens ``c = x + r``. Then ``c ≡ x + ρ (mod b)``, so with ``e = (c mod b) - ρ``,
   which lies in ``[-2b + 2, b - 1]``, ``x mod b = e + b·([e < 0] + [e < -b])``: two
   comparisons of ``log2(2b) + 2`` bits per element, in one batch.

c is uniform modulo b (ρ_i is, for the party that did not draw it) and its quotient by b is
within statistical distance ``2^-k`` of uniform; so c reveals nothing about x. Requires
``x < 2^l_x`` and ``l_x + k + 4`` bits in the field, so that c does not wrap around (checked
by :class:`engine.mpc._order_plan.OrderPlan`). Cost: one round of dealing (2 vectors from
each of p1, p2), one opening, one comparison batch.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.mpc._join_field import secure_array
from engine.mpc._join_links import spawn
from engine.mpc._join_prf import PairKey, Purpose
from engine.mpc._join_stage import deal_vectors
from engine.mpc._order_plan import OrderPlan

SecureArray = Any  # an MPyC secure array (MPyC is not imported here)


async def residues(
    mpc: Any,
    secint: Any,
    plan: OrderPlan,
    keys: dict[int, PairKey],
    x: SecureArray,
    divisors: npt.NDArray[np.object_],
) -> SecureArray:
    """Return ``x mod divisors`` elementwise (secure array of the shape of ``divisors``).

    ``x`` (1-D, secret, 0 <= x < 2^plan.residue_bits) and ``divisors`` (public ints >= 2)
    have equal lengths. Every party calls this at the same step.
    """
    count, modulus = len(divisors), plan.modulus
    contributors = (plan.first, plan.second)
    dealt = []
    for index, dealer in enumerate(contributors):
        mine = None
        if plan.me == dealer:
            mine = _masks(divisors, plan.residue_bits + plan.sec_param, modulus)
        deal = functools.partial(
            deal_vectors,
            mpc,
            keys,
            dealer=dealer,
            partner=contributors[1 - index],
            vectors=mine,
            count=2,
            length=count,
            modulus=modulus,
            purpose=Purpose.ORDER_MASK,
            index=index,
        )
        dealt.append(spawn(mpc, deal))
    (mask_1, low_1), (mask_2, low_2) = [await d for d in dealt]
    mask = secure_array(secint, (mask_1 + mask_2) % modulus)
    low = secure_array(secint, (low_1 + low_2) % modulus)
    opened = await mpc.output(x + mask)
    reduced = np.array([int(c) % int(b) for c, b in zip(opened, divisors, strict=True)], object)
    excess = -(low - reduced)  # e = (c mod b) - ρ
    bits = (2 * int(max(divisors))).bit_length() + 1
    below = mpc.np_sgn(mpc.np_concatenate((excess, excess + divisors)), l=bits, LT=True)
    return excess + (below[:count] + below[count:]) * divisors


def _masks(divisors: npt.NDArray[np.object_], bits: int, modulus: int) -> list[npt.NDArray[Any]]:
    """Return fresh ``[b·R + ρ, ρ]`` per divisor b (ρ < b, b·R below about 2^(bits+1))."""
    lows = [secrets.randbelow(int(b)) for b in divisors]
    highs = [secrets.randbits(bits - int(b).bit_length() + 1) for b in divisors]
    masks = [int(b) * h + r for b, h, r in zip(divisors, highs, lows, strict=True)]
    return [np.array(masks, dtype=object) % modulus, np.array(lows, dtype=object)]
