"""The rounds of the join for one spoke, and the hub's input (see :mod:`engine.mpc._join`).

docs/join-protocol.md, "The join, step by step", describes these rounds.

Every party runs :func:`align_spoke` for every spoke and :func:`hub_input` once, with its
own role; each makes the same exchanges in the same order, most of them empty for it.
Parties outside {hub, owner, helper} (bystanders) only receive shares. Messages, with N the
padded length, c the spoke's columns and e the bytes of a field element:

=============  ================================  =====================================  ======
exchange       from → to                         content                                bytes
=============  ================================  =====================================  ======
hub input      hub → all but hub and helper      the hub's columns, dealt               h·N·e
pseudonyms     hub, owner → helper               N pseudonyms each                      16·N
hub's part     hub → helper, bystanders          hub's masked additive part, dealt      c·N·e
order          helper → owner                    τ, a permutation of range(2N)          8·N
matched        helper → hub, bystanders          w, dealt                               N·e
split          owner → helper                    owner's columns by τ, minus a stream   c·2N·e
helper's part  helper → hub, bystanders          helper's additive part, dealt          c·N·e
=============  ================================  =====================================  ======

(h is the hub's number of columns; hub input is sent once per call, not per spoke.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.mpc._join_field import FieldVector, decode, encode
from engine.mpc._join_links import decode_permutation, encode_permutation, exchange
from engine.mpc._join_prf import (
    IndexVector,
    PairKey,
    Pseudonymizer,
    Purpose,
    keyed_field_vector,
    keyed_permutation,
)
from engine.mpc._join_shamir import add, deal
from engine.mpc._join_stage import deal_vectors
from engine.mpc._join_tables import (
    HUB_DOMAIN,
    OTHER_DOMAIN,
    Matching,
    PaddedTable,
    match_pseudonyms,
)


@dataclass(frozen=True)
class SpokeRun:
    """The public description of one spoke of a call, and this party's index ``me``."""

    index: int
    parties: int
    me: int
    hub: int
    owner: int
    helper: int
    hub_width: int
    width: int
    length: int
    dummies: int
    modulus: int

    @property
    def bystanders(self) -> list[int]:
        """Return the parties with no role in this spoke (they only receive shares)."""
        return [i for i in range(self.parties) if i not in (self.hub, self.owner, self.helper)]

    def stream(
        self, key: PairKey, purpose: Purpose, column: int, rows: IndexVector | None = None
    ) -> FieldVector:
        """Return the keyed stream (purpose, this spoke, column) under ``key``.

        Without ``rows``: its N elements. With ``rows``: its elements at those positions of
        the 2N-element stream (the owner's side extended by N zero rows).
        """
        if rows is None:
            return keyed_field_vector(key, purpose, self.index, column, self.length, self.modulus)
        return keyed_field_vector(
            key, purpose, self.index, column, 2 * self.length, self.modulus, rows
        )


async def hub_input(
    mpc: object, run: SpokeRun, keys: dict[int, PairKey], table: PaddedTable | None
) -> list[FieldVector]:
    """Deal the hub's columns (shuffled order) to all parties; return this party's shares.

    The hub's partner, whose shares are a stream it shares with the hub, is the helper of
    ``run`` (the first spoke); everyone else receives N elements per column.
    """
    return await deal_vectors(
        mpc,
        keys,
        dealer=run.hub,
        partner=run.helper,
        vectors=None if table is None else table.columns,
        count=run.hub_width,
        length=run.length,
        modulus=run.modulus,
        purpose=Purpose.HUB_INPUT,
        index=0,
    )


@dataclass
class SpokeShares:
    """This party's shares of one spoke: aligned columns and w (raw field elements).

    ``noisy_count`` and ``matched_in_clear`` (w itself) are set at the helper only.
    """

    columns: list[FieldVector]
    matched: FieldVector
    noisy_count: int | None = None
    matched_in_clear: FieldVector | None = None


async def align_spoke(
    mpc: object,
    run: SpokeRun,
    keys: dict[int, PairKey],
    table: PaddedTable | None,
    partial: int,
) -> SpokeShares:
    """Run one spoke; return this party's shares of its aligned columns and of w.

    ``table`` is the hub's table at the hub, the owner's at the owner (None elsewhere);
    ``partial`` is how many of the partner's dummies that owner holds.
    """
    me, hub, owner, helper = run.me, run.hub, run.owner, run.helper
    length, modulus, width = run.length, run.modulus, run.width
    dealt_to = [hub, *run.bystanders]  # receivers of the helper's sharings
    extended = np.arange(2 * length, dtype=np.int64)  # the owner's rows, then N zero rows
    rho: IndexVector = extended  # ρ, a permutation of range(2N) known to hub and helper only
    if me in (hub, helper):
        key = keys[helper if me == hub else hub]
        rho = keyed_permutation(key, Purpose.ROW_ORDER, run.index, 2 * length)
    kept = rho[:length]  # hub row i receives position ρ(i) of the owner's permuted rows

    # Step 1: pseudonyms to the helper.
    outgoing: dict[int, bytes] = {}
    if me == hub:
        assert table is not None
        pseudonymizer = Pseudonymizer(keys[owner].pseudonym)
        outgoing = {helper: table.pseudonyms(pseudonymizer, HUB_DOMAIN, run.dummies, partial)}
    elif me == owner:
        assert table is not None
        pseudonymizer = Pseudonymizer(keys[hub].pseudonym)
        outgoing = {helper: table.pseudonyms(pseudonymizer, OTHER_DOMAIN, run.dummies, partial)}
    pseudonyms = await exchange(mpc, outgoing, [hub, owner] if me == helper else [])

    # Step 4, hub's half (it depends on nothing the others send): deal a's masked part.
    outgoing, hub_part = {}, []
    if me == hub:
        parts = [
            (
                run.stream(keys[owner], Purpose.SPLIT, j, kept)
                + run.stream(keys[helper], Purpose.MASK, j, kept)
            )
            % modulus
            for j in range(width)
        ]
        dealt = [
            deal(
                part,
                owner,
                run.stream(keys[owner], Purpose.DEAL_HUB, j),
                [hub, helper, *run.bystanders],
                modulus,
            )
            for j, part in enumerate(parts)
        ]
        outgoing = {r: encode([d[r] for d in dealt], modulus) for r in [helper, *run.bystanders]}
        hub_part = [d[hub] for d in dealt]
    from_hub = await exchange(mpc, outgoing, [hub] if me in (helper, *run.bystanders) else [])

    # Steps 2 and 3 at the helper: match, send τ = ψ ∘ ρ⁻¹ to the owner, deal w.
    order_out: dict[int, bytes] = {}
    matched_out: dict[int, bytes] = {}
    matched_share: FieldVector | None = None
    matching: Matching | None = None
    if me == helper:
        got = await pseudonyms
        matching = match_pseudonyms(got[hub], got[owner], length)
        inverse = np.empty(2 * length, dtype=np.int64)
        inverse[rho] = extended
        order_out = {owner: encode_permutation(matching.pairing[inverse])}
        stream = run.stream(keys[owner], Purpose.MATCHED, 0)
        dealt_w = deal(matching.matched, owner, stream, [helper, *dealt_to], modulus)
        matched_out = {r: encode([dealt_w[r]], modulus) for r in dealt_to}
        matched_share = dealt_w[helper]
    else:
        await pseudonyms
    order = await exchange(mpc, order_out, [helper] if me == owner else [])
    matched = await exchange(mpc, matched_out, [helper] if me in dealt_to else [])

    # Step 3 at the owner: permute the plaintext by τ, split it, send h its part.
    split_out: dict[int, bytes] = {}
    if me == owner:
        assert table is not None
        tau = decode_permutation((await order)[helper], 2 * length, "row order τ")
        zeros = np.zeros(length, dtype=object)
        split_out = {
            helper: encode(
                [
                    (
                        np.concatenate([column, zeros])[tau]
                        - run.stream(keys[hub], Purpose.SPLIT, j, extended)
                    )
                    % modulus
                    for j, column in enumerate(table.columns)
                ],
                modulus,
            )
        }
    else:
        await order
    split = await exchange(mpc, split_out, [owner] if me == helper else [])

    # Step 4, helper's half: unmask the positions ρ(0 .. N-1) only, deal.
    outgoing, helper_part = {}, []
    if me == helper:
        received = decode((await split)[owner], width, 2 * length, modulus, "owner's part", kept)
        dealt = [
            deal(
                (part - run.stream(keys[hub], Purpose.MASK, j, kept)) % modulus,
                owner,
                run.stream(keys[owner], Purpose.DEAL_HELPER, j),
                [helper, *dealt_to],
                modulus,
            )
            for j, part in enumerate(received)
        ]
        outgoing = {r: encode([d[r] for d in dealt], modulus) for r in dealt_to}
        helper_part = [d[helper] for d in dealt]
    else:
        await split
    from_helper = await exchange(mpc, outgoing, [helper] if me in dealt_to else [])

    # This party's shares.
    received_hub = await from_hub
    received_helper = await from_helper
    received_matched = await matched
    if me == owner:
        columns = [
            add(
                run.stream(keys[hub], Purpose.DEAL_HUB, j),
                run.stream(keys[helper], Purpose.DEAL_HELPER, j),
                modulus,
            )
            for j in range(width)
        ]
        return SpokeShares(columns, run.stream(keys[helper], Purpose.MATCHED, 0))
    if me == helper:
        assert matched_share is not None and matching is not None
        hub_half = decode(received_hub[hub], width, length, modulus, "hub's part")
        columns = [add(a, b, modulus) for a, b in zip(hub_half, helper_part, strict=True)]
        return SpokeShares(columns, matched_share, matching.count, matching.matched)
    helper_half = decode(received_helper[helper], width, length, modulus, "helper's part")
    (matched_vector,) = decode(received_matched[helper], 1, length, modulus, "w")
    if me == hub:
        first = hub_part
    else:
        first = decode(received_hub[hub], width, length, modulus, "hub's part")
    columns = [add(a, b, modulus) for a, b in zip(first, helper_half, strict=True)]
    return SpokeShares(columns, matched_vector)
