"""The owner's sort of secret vectors, in two pair stages, and the owner's dealt values.

The owner o knows its sort order σ (a permutation of the N hub rows, by label and value).
No other party may learn it: with the join's view (a helper knows where matches fall in hub
order) it would tell which values matched. So σ = σ1 ∘ σ2 is applied in two pair stages
(:func:`engine.mpc._join_stage.pair_stage`) by different pairs:

1. σ1, uniform, drawn from the pair key of o and its first partner p (stage 1 by {o, p};
   the second partner r is quiet);
2. σ2 = σ1⁻¹ ∘ σ, which o sends to r; it is uniform to r, which does not know σ1
   (stage 2 by {o, r}; p is quiet).

After both, position k holds row σ(k). p sees only σ1 and r only σ2, each independent of
σ and of everything else they hold; every share vector they receive is uniform. In the same
round as stage 1, o deals the vector of :class:`engine.mpc._order_plan.OwnerInput` (its
sorted values and group ends) with p's shares fixed to a stream.

Messages: stage 1 and stage 2 each 2·V·N field elements (V vectors; plus 2·V·N to each
bystander), σ2 4·N bytes to r, the owner's dealing (M + group ends) field elements to each
party but o and p.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.mpc._join_field import FieldVector
from engine.mpc._join_links import decode_permutation, encode_permutation, exchange, spawn
from engine.mpc._join_prf import IndexVector, PairKey, Purpose, keyed_permutation
from engine.mpc._join_stage import deal_vectors, pair_stage
from engine.mpc._order_plan import OrderPlan, OwnerInput


async def sort_by_owner(
    mpc: Any,
    plan: OrderPlan,
    keys: dict[int, PairKey],
    shares: Sequence[FieldVector],
    local: OwnerInput | None,
) -> tuple[list[FieldVector], FieldVector]:
    """Return this party's shares of the vectors in the owner's order, and of its dealt vector.

    ``shares`` are this party's shares of the vectors to sort (length N each); ``local`` is
    the owner's input at the owner and None elsewhere. Raises PeerError if a peer sends a
    malformed message.
    """
    me, owner, first, second = plan.me, plan.owner, plan.first, plan.second
    length, modulus = plan.length, plan.modulus
    sigma1: IndexVector | None = None
    if me in (owner, first):
        key = keys[first if me == owner else owner]
        sigma1 = keyed_permutation(key, Purpose.ORDER_FIRST, 0, length)
    outgoing: dict[int, bytes] = {}
    sigma2: IndexVector | None = None
    if me == owner:
        assert local is not None and sigma1 is not None
        sigma2 = second_stage(sigma1, local.order)
        outgoing = {second: encode_permutation(sigma2)}
    order = await exchange(mpc, outgoing, [owner] if me == second else [])
    dealt = spawn(
        mpc,
        lambda: deal_vectors(
            mpc,
            keys,
            dealer=owner,
            partner=first,
            vectors=None if local is None else [local.dealt],
            count=1,
            length=plan.dealt_length,
            modulus=modulus,
            purpose=Purpose.ORDER_INPUT,
            index=0,
        ),
    )
    middle = await pair_stage(
        mpc,
        keys,
        dealers=(owner, first),
        quiet=second,
        rows=sigma1,
        shares=shares,
        length=length,
        modulus=modulus,
        purpose=Purpose.ORDER_STAGE,
        index=0,
    )
    received = await order
    if me == second:
        sigma2 = decode_permutation(received[owner], length, "sort order σ2")
    final = await pair_stage(
        mpc,
        keys,
        dealers=(owner, second),
        quiet=first,
        rows=sigma2,
        shares=middle,
        length=length,
        modulus=modulus,
        purpose=Purpose.ORDER_STAGE,
        index=1,
    )
    (vector,) = await dealt
    return final, vector


def second_stage(first: IndexVector, order: IndexVector) -> IndexVector:
    """Return σ2 = σ1⁻¹ ∘ σ: gathering by σ1, then by σ2, gathers by σ (``x[σ1][σ2] == x[σ]``).

    For σ1 uniform and unknown to the holder of σ2, σ2 is uniform whatever σ is.
    """
    inverse = np.empty(len(first), dtype=np.int64)
    inverse[first] = np.arange(len(first), dtype=np.int64)
    result: IndexVector = inverse[order]
    return result
