"""The helper-aligned private join (JOIN.md, hidden-membership mode), for the MPC worker.

Joins one owner's table (the hub, A) with another owner's table (B) on a join key, with the
help of a third party H that has no input to this join, so that:

- A and B learn nothing: not which of their rows matched, not how many;
- H learns ``|A ∩ B| + d_A + d_B``: the intersection size plus two independent exact
  discrete-Laplace noises (one per owner, each clipped to ``[0, D]``), so
  ``|A ∩ B| <= observed <= |A ∩ B| + 2D``; each owner's noise alone makes it
  (ε, δ)-differentially private in ``|A ∩ B|``, δ ≈ exp(-ε·D/2);
- nobody learns the tables' sizes: each is padded to the public length N;
- every party ends with ordinary MPyC shares (degree 1, threshold 1) of A's columns in A's
  secret shuffled order, of B's columns aligned row by row to them (0 where A's row has no
  real match), and of the match indicator ``w``, so aggregates over the join are exact.

Security model: semi-honest parties, at most one corrupted (MPyC's t = 1), TLS on every link.
:func:`star_join` joins several tables onto one hub (A–B with helper C and A–C with helper B
for three tables); :func:`aligned_join` is the one-table case.

Protocol, one spoke (hub a, owner b, helper h; JOIN.md steps 1–4)
----------------------------------------------------------------
0. All parties exchange the digest of the public parameters (a mismatch aborts everywhere),
   a flag saying whether their side was valid, and ephemeral X25519 keys; each pair derives
   fresh pair keys for this call (:mod:`engine.mpc._join_prf`).
1. a and b pad and shuffle their sides (:mod:`engine.mpc._join_tables`) and send their N
   pseudonyms ``HMAC-SHA256(K_ab, key)`` to h. a deals its columns as Shamir sharings.
2. h pairs equal pseudonyms. b's side is extended by N zero rows; ψ, a permutation of
   range(2N), sends each of a's rows to its match or else to a zero row (rows N .. 2N-1 of
   ψ take what is left). With ρ a permutation of range(2N) only a and h know (from K_ah),
   h sends b ``τ = ψ ∘ ρ⁻¹``, which is uniform to b, and deals w.
3. b permutes its extended plaintext columns by τ and splits them additively between a and
   h: a's part is a stream of K_ab (nothing is sent to a), h receives the rest (2N values).
4. a and h add and subtract a common mask (K_ah, so that b does not know a's part), keep
   the positions ρ(0 .. N-1) of their parts and each deals its part with b's share fixed
   to a stream that b shares with it (a pair stage in one round). The sum is b's extended
   columns in the order ``ψ = τ ∘ ρ``: row i holds b's row ψ(i), aligned to a's row i.

This is JOIN.md's two pair stages with the stage between b and h done by b alone on its
plaintext (b knows τ), which saves a round, combined with JOIN.md's "variant without w"
(zero rows for the unmatched), which spares the engine any multiplication by w. Traffic
per B column: 4N field elements; per A column and for w: N each; pseudonyms 2·16N bytes;
τ 8N bytes. Each party's view is uniform: every share vector it receives is masked by a
stream it does not know, and τ is masked by ρ.

What the engine must guarantee, and how to use the result
----------------------------------------------------------
- Every payload column is 0 on the rows the library added (dummies and fillers): this
  library pads with 0, so a column the owner passes is 0 exactly off its real rows.
- Hub row i of a spoke's columns holds the values of the spoke's row with the same key if
  row i is one of the hub's real rows and that key is in the spoke's table, and 0
  otherwise. So ``Σ_i Q(f[i])·g[i]`` is the sum over matching real key pairs, for any hub
  columns f, any polynomial Q and any spoke column g (and products of spoke columns):
  COUNT = f_A @ f_B, SUM = f_A @ (f_B·v) with the owners' filters multiplied in locally,
  GROUP BY = one dot product per one-hot hub column — no secure multiplication. Sums of
  hub columns alone need Q(0) = 0. Include a column that is 1 on real rows in each side.
- ``matched[i]`` (w) is 1 for hub rows whose pseudonym matched: the real matches **and**
  the ``d_a + d_b`` dummy matches (all-zero rows on both sides). So ``Σ w`` is the noisy
  size, never a count; ``Σ w·f·g`` equals ``Σ f·g``; anti-joins are
  ``Σ Q(f) - Σ Q(f)·r_B`` with r_B the spoke's real-row column (or ``Σ (1 - w)·Q(f)`` with
  Q(0) = 0). With several spokes, multiply their columns: ``Σ f·g_B·g_C`` needs one
  elementwise product of the two spokes' columns.
- All parties call with the same public arguments, in the same order relative to their
  other MPC work; each job must have a wall-clock timeout (a party that fails mid-way
  leaves the others waiting) and a failed session must be torn down, as the worker does.

Parties and keys
----------------
Any number n >= 3 of parties with MPyC threshold t = 1: the join runs among {hub, owner,
helper} and the other parties only receive their shares (N elements from each dealer per
column), so the result lives in the full session. With t > 1 the three-party protocol
would not tolerate t corruptions, so it is refused. Pair keys are fresh per call
(ephemeral X25519); each keyed stream has its own nonce (purpose, spoke, column) and is
used for one vector only. A reusable join view (keeping ψ, ρ, τ and [w] per table version)
is not provided: each call draws new permutations, dummies and noise, so H observes a
fresh noisy size per call; callers must count every call against the privacy budget of
the intersection size.

Known limitations (JOIN.md, "What is revealed, and hardening")
--------------------------------------------------------------
- Outside the model, H colluding with B can dictionary-attack A's low-entropy keys: B holds
  K_ab, H sees A's pseudonyms. DH pseudonyms (each owner blinds with its own exponent) would
  stop that at about 10x the cost; not implemented here.
- A malicious H (outside the model) could mark a single row as matched and learn one unnamed
  person's value through the aggregate: minimum group sizes and DP on outputs limit this.
- The parameter check and the validity flag reveal whether an owner's side could be
  prepared (one bit, e.g. that it has more than N - 2D rows) — the query aborts anyway.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError, PeerError
from engine.mpc._join_field import FieldVector
from engine.mpc._join_links import exchange, spawn
from engine.mpc._join_noise import JoinNoise, dummy_count
from engine.mpc._join_prf import PUBLIC_KEY_BYTES, KeyAgreement, PairKey
from engine.mpc._join_spoke import SpokeRun, align_spoke, hub_input
from engine.mpc._join_tables import JoinSide, PaddedTable

__all__ = [
    "AlignedJoin",
    "AlignedSpoke",
    "JoinNoise",
    "JoinSide",
    "Spoke",
    "StarJoin",
    "aligned_join",
    "star_join",
]

SecureArray = Any  # an MPyC secure array of the join's secure type (MPyC is not imported here)

_PROTOCOL = "jointstat helper-aligned join, hidden membership, v1"
_MAX_SPOKES = 255
_MAX_WIDTH = 65_535
_MAX_LENGTH = (1 << 32) - 1


@dataclass(frozen=True)
class Spoke:
    """A table joined onto the hub: its ``owner``, the ``helper`` and its number of columns.

    The helper must be neither the hub nor the owner; it may own another spoke.
    """

    owner: int
    helper: int
    width: int


@dataclass
class AlignedSpoke:
    """One spoke, aligned to the hub's rows: its columns and the match indicator ``matched``.

    ``noisy_match_count`` is what the helper learned (matched rows including dummies); it is
    set only at that spoke's helper and None at every other party.
    """

    columns: list[SecureArray]
    matched: SecureArray
    noisy_match_count: int | None


@dataclass
class StarJoin:
    """The hub's columns in its secret shuffled order, and each spoke aligned to them."""

    hub_columns: list[SecureArray]
    spokes: list[AlignedSpoke]


@dataclass
class AlignedJoin:
    """The join of the hub with one other owner (see :class:`AlignedSpoke` for the fields)."""

    hub_columns: list[SecureArray]
    other_columns: list[SecureArray]
    matched: SecureArray
    noisy_match_count: int | None


async def aligned_join(
    mpc: Any,
    secint: Any,
    *,
    hub: int,
    other: int,
    helper: int,
    my_side: JoinSide | None,
    hub_width: int,
    other_width: int,
    padded_length: int,
    noise: JoinNoise,
) -> AlignedJoin:
    """Join the hub's table with ``other``'s, matched by ``helper``; return aligned shares.

    Every party of the session calls this with the same public arguments; ``my_side`` is the
    hub's side at the hub, the other owner's at ``other`` and None elsewhere. Each returned
    array has length ``padded_length``. Preconditions and errors as for :func:`star_join`.
    """
    star = await star_join(
        mpc,
        secint,
        hub=hub,
        hub_width=hub_width,
        spokes=[Spoke(owner=other, helper=helper, width=other_width)],
        my_side=my_side,
        padded_length=padded_length,
        noise=noise,
    )
    (spoke,) = star.spokes
    return AlignedJoin(star.hub_columns, spoke.columns, spoke.matched, spoke.noisy_match_count)


async def star_join(
    mpc: Any,
    secint: Any,
    *,
    hub: int,
    hub_width: int,
    spokes: Sequence[Spoke],
    my_side: JoinSide | None,
    padded_length: int,
    noise: JoinNoise,
) -> StarJoin:
    """Join each spoke's table onto the hub's table; return every party's shares.

    ``mpc`` is MPyC's runtime (started, n >= 3 parties, threshold 1) and ``secint`` a secure
    integer type of it (``mpc.SecInt(l)``); payload values must lie in
    ``[-2^(l-1), 2^(l-1))`` and the field must be large enough for the sums the engine
    computes afterwards (not checked here). Public arguments, equal at every party: party
    indices, widths (columns per side), ``padded_length`` N, which must be at least every
    side's row count plus ``2 * noise.dummies``, and ``noise``. ``my_side`` is this party's
    table (required at the hub and at each spoke owner, None elsewhere; a party owns at most
    one side).

    Raises ValueError if the public arguments are invalid (the same at every party);
    DataError or CapacityError at an owner whose side is invalid or too long, and then
    PeerError at every other party; PeerError if the parties' public arguments differ or a
    peer sends a malformed message.
    """
    plan = _Plan(mpc, secint, hub, hub_width, tuple(spokes), my_side, padded_length, noise)
    local = _prepare_locally(plan, my_side)
    keys = await _agree(mpc, plan, local)
    assert not isinstance(local, EngineError)  # _agree raised otherwise
    hub_table, d_hub, own_table, d_own = local
    hub_shares = spawn(mpc, lambda: hub_input(mpc, plan.run(0), keys, hub_table))
    runs: list[Awaitable[tuple[list[FieldVector], FieldVector, int | None]]] = []
    for k in range(len(plan.spokes)):
        run = plan.run(k)
        table = hub_table if plan.me == plan.hub else own_table
        partial = d_hub[k] if plan.me == plan.hub else d_own
        runs.append(spawn(mpc, functools.partial(align_spoke, mpc, run, keys, table, partial)))
    hub_columns = [_secure(secint, v) for v in await hub_shares]
    aligned = []
    for result in runs:
        columns, matched, count = await result
        aligned.append(
            AlignedSpoke([_secure(secint, v) for v in columns], _secure(secint, matched), count)
        )
    return StarJoin(hub_columns=hub_columns, spokes=aligned)


def _secure(secint: Any, shares: FieldVector) -> SecureArray:
    return secint.array(secint.field.array(shares, check=False))


class _Plan:
    """The validated public parameters of one call, and this party's place in it."""

    def __init__(
        self,
        mpc: Any,
        secint: Any,
        hub: int,
        hub_width: int,
        spokes: tuple[Spoke, ...],
        my_side: JoinSide | None,
        length: int,
        noise: JoinNoise,
    ) -> None:
        n = len(mpc.parties)
        if n < 3:
            raise ValueError(f"parties: got {n}, want at least 3")
        if mpc.threshold != 1:
            raise ValueError(f"threshold: got {mpc.threshold}, want 1 (the join tolerates one)")
        if not 1 <= len(spokes) <= _MAX_SPOKES:
            raise ValueError(f"spokes: got {len(spokes)}, want 1 to {_MAX_SPOKES}")
        owners = [s.owner for s in spokes]
        if len(set(owners)) != len(owners) or hub in owners:
            raise ValueError("spokes: got a party owning two sides, want one side per party")
        for index in [hub] + owners + [s.helper for s in spokes]:
            if not 0 <= index < n:
                raise ValueError(f"party index: got {index}, want 0 <= index < {n}")
        for s in spokes:
            if s.helper in (hub, s.owner):
                raise ValueError(f"helper: got {s.helper}, want neither hub nor owner")
        for width in [hub_width] + [s.width for s in spokes]:
            if not 0 <= width <= _MAX_WIDTH:
                raise ValueError(f"width: got {width}, want 0 to {_MAX_WIDTH}")
        if not 2 * noise.dummies <= length <= _MAX_LENGTH:
            raise ValueError(
                f"padded length: got {length}, want {2 * noise.dummies} to {_MAX_LENGTH}"
            )
        self.n, self.me, self.hub, self.hub_width = n, mpc.pid, hub, hub_width
        self.spokes, self.length, self.noise = spokes, length, noise
        self.modulus: int = secint.field.order
        self.bits: int = secint.bit_length
        self.owns_side = mpc.pid == hub or mpc.pid in owners
        if self.owns_side != (my_side is not None):
            want = "a JoinSide" if self.owns_side else "None"
            raise ValueError(
                f"my_side of party {mpc.pid}: got {type(my_side).__name__}, want {want}"
            )
        public = {
            "protocol": _PROTOCOL,
            "parties": n,
            "hub": hub,
            "hub_width": hub_width,
            "spokes": [[s.owner, s.helper, s.width] for s in spokes],
            "length": length,
            "dummies": noise.dummies,
            "epsilon": [noise.epsilon.numerator, noise.epsilon.denominator],
            "modulus": str(self.modulus),
            "bits": secint.bit_length,
        }
        self.digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).digest()

    def run(self, k: int) -> SpokeRun:
        """Return the public description of spoke ``k`` as seen by this party."""
        spoke = self.spokes[k]
        return SpokeRun(
            index=k,
            parties=self.n,
            me=self.me,
            hub=self.hub,
            owner=spoke.owner,
            helper=spoke.helper,
            hub_width=self.hub_width,
            width=spoke.width,
            length=self.length,
            dummies=self.noise.dummies,
            modulus=self.modulus,
        )


_Local = tuple[PaddedTable | None, list[int], PaddedTable | None, int]


def _prepare_locally(plan: _Plan, my_side: JoinSide | None) -> _Local | EngineError:
    """Pad and shuffle this party's side and draw its dummy counts (JOIN.md step 1)."""
    reserve = 2 * plan.noise.dummies
    try:
        if my_side is None:
            return None, [], None, 0
        if plan.me == plan.hub:
            table = PaddedTable(
                my_side, plan.hub_width, plan.length, reserve, plan.modulus, plan.bits
            )
            return table, [dummy_count(plan.noise) for _ in plan.spokes], None, 0
        (width,) = [s.width for s in plan.spokes if s.owner == plan.me]
        table = PaddedTable(my_side, width, plan.length, reserve, plan.modulus, plan.bits)
        return None, [], table, dummy_count(plan.noise)
    except EngineError as exc:
        return exc


async def _agree(mpc: Any, plan: _Plan, local: _Local | EngineError) -> dict[int, PairKey]:
    """Check that all parties agree on the parameters and are ready; derive pair keys."""
    agreement = KeyAgreement()
    ready = b"\x00" if isinstance(local, EngineError) else b"\x01"
    message = plan.digest + agreement.public + ready
    peers = [i for i in range(plan.n) if i != plan.me]
    pending = await exchange(mpc, {i: message for i in peers}, peers)
    received = await pending
    if isinstance(local, EngineError):
        raise local
    for peer in peers:
        payload = received[peer]
        if len(payload) != len(message) or payload[:32] != plan.digest:
            raise PeerError(f"join parameters: party {peer} got other public arguments")
        if payload[-1:] != b"\x01":
            raise PeerError(f"join: party {peer} could not prepare its side")
    return {
        peer: agreement.pair_key(
            received[peer][32 : 32 + PUBLIC_KEY_BYTES], plan.me, peer, plan.digest
        )
        for peer in peers
    }
