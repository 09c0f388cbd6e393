"""The open variant of the join (docs/join-protocol.md, "Open variant"): matched rows only.

For work on each matched row that is not linear (a predicate comparing the hub's and the
other owner's columns costs a secure comparison per row), it pays to keep only the m
matched rows instead of N. After the hidden join of :mod:`engine.mpc._join_spoke`:

1. The helper h, which knows w, and the owner b derive a permutation σ of range(N) from
   K_bh; the hub does not know it. h publishes P, the sorted positions j with w[σ(j)] = 1.
2. b and h turn their Shamir shares of the aligned columns (hub's and owner's) into
   additive ones (Lagrange coefficients of the pair {b, h}), take rows σ(P), and each
   deals its part with the hub's share fixed to a stream it shares with the hub (a pair
   stage on m rows only, :func:`engine.mpc._join_stage.pair_stage`).

Revealed to every party: m = |P| = |A ∩ B| + d_A + d_B, the noisy size only the helper
learns in hidden mode. P is uniform to the hub (σ is unknown to it); b learns which hub
rows matched, in the hub's shuffled order, which it cannot relate to its own rows (it does
not know ρ) nor to the hub's (it does not know π_A). m - |A ∩ B| of the rows are dummy
pairs whose payload is 0 on both sides.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import PeerError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_links import exchange
from engine.mpc._join_prf import IndexVector, Purpose, keyed_permutation
from engine.mpc._join_run import JoinPlan, StarShares
from engine.mpc._join_stage import pair_stage


async def compact(
    mpc: Any, plan: JoinPlan, shares: StarShares
) -> tuple[list[FieldVector], list[FieldVector], int]:
    """Return this party's shares of the hub's and the owner's columns on the matched rows.

    Requires a plan with one spoke. The third value is m, the number of matched rows.
    """
    (spoke,) = plan.spokes
    hub, owner, helper, me = plan.hub, spoke.owner, spoke.helper, plan.me
    length, modulus, keys = plan.length, plan.modulus, shares.keys
    vectors = shares.hub_columns + shares.spokes[0].columns
    others = [i for i in range(plan.n) if i != me]
    sigma: IndexVector | None = None
    if me in (owner, helper):
        key = keys[helper if me == owner else owner]
        sigma = keyed_permutation(key, Purpose.OPEN_ORDER, 0, length)

    outgoing = {}
    if me == helper:
        assert sigma is not None and shares.spokes[0].matched_in_clear is not None
        matched = shares.spokes[0].matched_in_clear[sigma]
        published = np.flatnonzero(matched == 1).astype("<u4").tobytes()
        outgoing = {i: published for i in others}
    received = await (await exchange(mpc, outgoing, [] if me == helper else [helper]))
    positions = _positions(outgoing[others[0]] if me == helper else received[helper], length)
    count = len(positions)

    result = await pair_stage(
        mpc,
        keys,
        dealers=(owner, helper),
        quiet=hub,
        rows=None if sigma is None else sigma[positions],
        shares=vectors,
        length=count,
        modulus=modulus,
        purpose=Purpose.OPEN_DEAL,
        index=0,
    )
    return result[: plan.hub_width], result[plan.hub_width :], count


def _positions(payload: bytes, length: int) -> IndexVector:
    """Return the published positions; PeerError unless sorted, distinct and below N."""
    if len(payload) % 4 or len(payload) > 4 * length:
        raise PeerError(f"matched positions: got {len(payload)} bytes, want 4 per row <= N")
    positions = np.frombuffer(payload, dtype="<u4").astype(np.int64)
    if len(positions) and (positions[-1] >= length or np.any(np.diff(positions) <= 0)):
        raise PeerError("matched positions: got unsorted or out-of-range rows, want sorted < N")
    return positions
