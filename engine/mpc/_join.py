"""The helper-aligned private join (docs/join-protocol.md), for the MPC worker.

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
for three tables: A learns nothing, each helper one noisy intersection size);
:func:`aligned_join` is the one-table case. :func:`open_join` (the open variant) keeps
only the matched rows, for per-row work that is not linear, and reveals the noisy match
count to every party (:mod:`engine.mpc._join_open`).

Modules: ``_join_run`` (parameters, agreement, one call), ``_join_spoke`` (the rounds of a
spoke), ``_join_tables`` (padding, shuffling, matching), ``_join_prf`` (pair keys,
pseudonyms, keyed streams), ``_join_field`` (field vectors on the wire), ``_join_shamir``
(dealing), ``_join_noise`` (exact DP noise), ``_join_links`` (messages over MPyC's links:
the only place private MPyC API is used), ``_join_open`` (the open variant), ``_join_keys``
(agreement on the public parameters, pair keys), ``_join_stage`` (pair stages and dealt
inputs on raw shares, reused by :mod:`engine.mpc._order`).

Protocol, one spoke (hub a, owner b, helper h; docs/join-protocol.md, "The join, step by step")
---------------------------------------------------------------------------------------------
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

This is the two pair stages of the textbook construction with the stage between b and h
done by b alone on its plaintext (b knows τ), which saves a round, combined with zero rows
for the unmatched (instead of multiplying by w), which spares the engine a multiplication. Traffic
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

Known limitations (docs/join-protocol.md, "Limits")
---------------------------------------------------
- Outside the model, H colluding with B can dictionary-attack A's low-entropy keys: B holds
  K_ab, H sees A's pseudonyms. DH pseudonyms (each owner blinds with its own exponent) would
  stop that at about 10x the cost; not implemented here.
- A malicious H (outside the model) could mark a single row as matched and learn one unnamed
  person's value through the aggregate: minimum group sizes and DP on outputs limit this.
- The parameter check and the validity flag reveal whether an owner's side could be
  prepared (one bit, e.g. that it has more than N - 2D rows) — the query aborts anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.mpc._join_field import secure_array
from engine.mpc._join_noise import JoinNoise
from engine.mpc._join_open import compact
from engine.mpc._join_prf import IndexVector
from engine.mpc._join_run import JoinPlan, Spoke, run_star
from engine.mpc._join_tables import JoinSide

__all__ = [
    "AlignedJoin",
    "AlignedSpoke",
    "JoinNoise",
    "JoinSide",
    "OpenJoin",
    "Spoke",
    "StarJoin",
    "aligned_join",
    "open_join",
    "star_join",
]

SecureArray = Any  # an MPyC secure array of the join's secure type (MPyC is not imported here)

_HIDDEN = "jointstat helper-aligned join, hidden membership, v1"
_OPEN = "jointstat helper-aligned join, open mode, v1"


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
    """The hub's columns in its secret shuffled order, and each spoke aligned to them.

    ``hub_rows`` is the hub's shuffle, set at the hub only (None at every other party):
    position i of every returned array holds the hub's row ``hub_rows[i]`` (an index into
    its ``JoinSide``), or a padding row if ``hub_rows[i]`` is -1. The hub needs it to put
    per-row data of its own in the joined order (e.g. values it inputs for order
    statistics, :mod:`engine.mpc._order`); no other party learns it.
    """

    hub_columns: list[SecureArray]
    spokes: list[AlignedSpoke]
    hub_rows: IndexVector | None = None


@dataclass
class AlignedJoin:
    """The join of the hub with one other owner (see :class:`AlignedSpoke` for the fields).

    ``hub_rows`` is the hub's shuffle, at the hub only (see :class:`StarJoin`).
    """

    hub_columns: list[SecureArray]
    other_columns: list[SecureArray]
    matched: SecureArray
    noisy_match_count: int | None
    hub_rows: IndexVector | None = None


@dataclass
class OpenJoin:
    """The matched rows only: hub's and other's columns, aligned, ``match_count`` rows each.

    ``match_count`` (public at every party) is |A ∩ B| + d_A + d_B; the dummy pairs among the
    rows have payload 0 on both sides.
    """

    hub_columns: list[SecureArray]
    other_columns: list[SecureArray]
    match_count: int


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
    return AlignedJoin(
        star.hub_columns, spoke.columns, spoke.matched, spoke.noisy_match_count, star.hub_rows
    )


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
    agreed: str = "",
) -> StarJoin:
    """Join each spoke's table onto the hub's table; return every party's shares.

    ``mpc`` is MPyC's runtime (started, n >= 3 parties, threshold 1) and ``secint`` a secure
    integer type of it (``mpc.SecInt(l)``); payload values must lie in
    ``[-2^(l-1), 2^(l-1))`` and the field must be large enough for the sums the engine
    computes afterwards (not checked here). Public arguments, equal at every party: party
    indices, widths (columns per side), ``padded_length`` N, which must be at least every
    side's row count plus ``2 * noise.dummies``, and ``noise``. ``my_side`` is this party's
    table (required at the hub and at each spoke owner, None elsewhere; a party owns at most
    one side). Every returned array has length N.

    ``agreed`` is a caller's public text that every party must hold equal too (it joins
    the digest the parties compare). Raises ValueError if the public arguments are invalid
    (the same at every party);
    DataError or CapacityError at an owner whose side is invalid or too long, and then
    PeerError at every other party; PeerError if the parties' public arguments differ or a
    peer sends a malformed message.
    """
    plan = JoinPlan(
        mpc,
        secint,
        protocol=_HIDDEN + (f"; {agreed}" if agreed else ""),
        hub=hub,
        hub_width=hub_width,
        spokes=spokes,
        my_side=my_side,
        length=padded_length,
        noise=noise,
    )
    shares = await run_star(mpc, plan, my_side)
    return StarJoin(
        hub_columns=[secure_array(secint, v) for v in shares.hub_columns],
        spokes=[
            AlignedSpoke(
                [secure_array(secint, v) for v in spoke.columns],
                secure_array(secint, spoke.matched),
                spoke.noisy_count,
            )
            for spoke in shares.spokes
        ],
        hub_rows=shares.hub_rows,
    )


async def open_join(
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
) -> OpenJoin:
    """Join as :func:`aligned_join`, then keep only the matched rows (the open variant).

    Every party learns the noisy match count (see :mod:`engine.mpc._join_open`). Arguments,
    preconditions and errors as for :func:`aligned_join`.
    """
    plan = JoinPlan(
        mpc,
        secint,
        protocol=_OPEN,
        hub=hub,
        hub_width=hub_width,
        spokes=[Spoke(owner=other, helper=helper, width=other_width)],
        my_side=my_side,
        length=padded_length,
        noise=noise,
    )
    hub_rows, other_rows, count = await compact(mpc, plan, await run_star(mpc, plan, my_side))
    return OpenJoin(
        hub_columns=[secure_array(secint, v) for v in hub_rows],
        other_columns=[secure_array(secint, v) for v in other_rows],
        match_count=count,
    )
