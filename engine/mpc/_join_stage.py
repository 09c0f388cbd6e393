"""Pair stages and dealt inputs on raw Shamir shares (docs/join-protocol.md, "Building blocks").

Two primitives, reused by the open join (:mod:`engine.mpc._join_open`), the hub's input
(:mod:`engine.mpc._join_spoke`) and order statistics (:mod:`engine.mpc._order`). Vectors
are this party's raw shares (numpy object arrays of field elements, degree 1, MPyC's
points x_i = i + 1); keys are the call's pair keys (:mod:`engine.mpc._join_keys`).

- :func:`pair_stage` — two parties i, j that know an index vector ρ (a permutation, or a
  selection of rows) turn their shares of x into shares of x[ρ]: each multiplies its share
  by its Lagrange coefficient for the pair {i, j} (so that the two products add up to x),
  takes rows ρ, and deals the result with the share of a third party q (the quiet party)
  fixed to a stream it shares with q. q receives nothing; every other party receives one
  vector from each dealer (other than itself). One round; per vector, 2·m field elements
  for three parties (m = len(ρ)), plus 2·m per bystander.
- :func:`deal_vectors` — one party deals plaintext vectors with the share of a partner
  fixed to a stream they share: the partner receives nothing, everyone else m elements per
  vector.
- :func:`reshare` — degree reduction after a local multiplication: three parties turn
  their degree-2 shares into additive ones (Lagrange coefficients of the three) and each
  deals its part like :func:`deal_vectors`, with the next one as partner. One round; per
  element 3 field elements for three parties (MPyC's own resharing sends 6, and draws each
  random coefficient with ``secrets.randbelow``, about 5 µs a value on this machine).

Each single party's view is uniform: every received vector is a point of a line through the
dealer's secret and a stream value the receiver does not know, and q's new share is a sum
of streams. ρ is known to i and j only; a permutation that no single party may know is a
composition of stages by different pairs (docs/join-protocol.md). Every stream is named by (purpose,
index, vector) under one pair key, used for one vector only: callers pass a distinct
(purpose, index) per stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.mpc._join_field import FieldVector, decode, encode
from engine.mpc._join_links import exchange
from engine.mpc._join_prf import IndexVector, PairKey, Purpose, keyed_field_vector
from engine.mpc._join_shamir import add, deal, point
from engine.shamir import lagrange_at


def pair_coefficient(me: int, partner: int, modulus: int) -> int:
    """Return the Lagrange coefficient at 0 of party ``me`` for the pair {me, partner}."""
    return lagrange_at(0, [point(me), point(partner)], modulus)[0]


async def pair_stage(
    mpc: Any,
    keys: dict[int, PairKey],
    *,
    dealers: tuple[int, int],
    quiet: int,
    rows: IndexVector | None,
    shares: Sequence[FieldVector],
    length: int,
    modulus: int,
    purpose: Purpose,
    index: int,
) -> list[FieldVector]:
    """Return this party's shares of ``x[rows]`` for each shared vector x (one pair stage).

    Every party of the session calls this at the same step with the same public arguments:
    ``dealers`` (i, j), the ``quiet`` party q (neither dealer), ``length`` = len(rows), the
    field ``modulus`` and a stream name (``purpose``, ``index``) not used before under the
    call's keys. ``rows`` (indices into the vectors, repeats allowed) is required at the
    dealers and ignored elsewhere; ``shares`` are this party's shares of the vectors (all
    of equal length; only their number matters at q and at bystanders).

    Raises PeerError if a dealer sends a malformed message.
    """
    i, j = dealers
    if i == j or quiet in dealers:
        raise ValueError(f"pair stage: got dealers {dealers} and quiet {quiet}, want three")
    me, count = mpc.pid, len(shares)
    receivers = [r for r in range(len(mpc.parties)) if r != quiet]
    outgoing: dict[int, bytes] = {}
    own: list[FieldVector] = []
    if me in dealers:
        if rows is None or len(rows) != length:
            raise ValueError(
                f"pair stage rows: got {rows is not None and len(rows)}, want {length}"
            )
        weight = pair_coefficient(me, j if me == i else i, modulus)
        dealt = [
            deal(
                vector[rows] * weight % modulus,
                quiet,
                keyed_field_vector(keys[quiet], purpose, index, v, length, modulus),
                receivers,
                modulus,
            )
            for v, vector in enumerate(shares)
        ]
        outgoing = {r: encode([d[r] for d in dealt], modulus) for r in receivers if r != me}
        own = [d[me] for d in dealt]
    sources = [d for d in dealers if d != me] if me != quiet else []
    received = await (await exchange(mpc, outgoing, sources))
    if me == quiet:
        return [
            add(
                keyed_field_vector(keys[i], purpose, index, v, length, modulus),
                keyed_field_vector(keys[j], purpose, index, v, length, modulus),
                modulus,
            )
            for v in range(count)
        ]
    parts = [decode(received[d], count, length, modulus, "pair stage") for d in sources]
    if me in dealers:
        parts.append(own)
    return [add(a, b, modulus) for a, b in zip(*parts, strict=True)]


async def deal_vectors(
    mpc: Any,
    keys: dict[int, PairKey],
    *,
    dealer: int,
    partner: int,
    vectors: Sequence[FieldVector] | None,
    count: int,
    length: int,
    modulus: int,
    purpose: Purpose,
    index: int,
) -> list[FieldVector]:
    """Deal ``count`` plaintext vectors of ``length`` field elements; return this party's shares.

    Every party calls this at the same step with the same public arguments; ``vectors``
    (elements in [0, modulus)) is required at the dealer and ignored elsewhere. The
    ``partner``'s shares are the streams (``purpose``, ``index``, vector) of its key with
    the dealer. Raises PeerError if the dealer sends a malformed message.
    """
    if dealer == partner:
        raise ValueError(f"deal: got partner {partner} equal to the dealer, want another party")
    me = mpc.pid
    recipients = [r for r in range(len(mpc.parties)) if r not in (dealer, partner)]
    outgoing: dict[int, bytes] = {}
    own: list[FieldVector] = []
    if me == dealer:
        if vectors is None or len(vectors) != count:
            raise ValueError(
                f"deal: got {vectors is not None and len(vectors)} vectors, want {count}"
            )
        dealt = [
            deal(
                vector,
                partner,
                keyed_field_vector(keys[partner], purpose, index, v, length, modulus),
                [*recipients, dealer],
                modulus,
            )
            for v, vector in enumerate(vectors)
        ]
        outgoing = {r: encode([d[r] for d in dealt], modulus) for r in recipients}
        own = [d[dealer] for d in dealt]
    received = await (await exchange(mpc, outgoing, [dealer] if me in recipients else []))
    if me == dealer:
        return own
    if me == partner:
        return [
            keyed_field_vector(keys[dealer], purpose, index, v, length, modulus)
            for v in range(count)
        ]
    return decode(received[dealer], count, length, modulus, "dealt vectors")


RESHARING_PARTIES = (0, 1, 2)  # 2t + 1 = 3 holders of a degree-2 sharing suffice for t = 1


async def reshare(
    mpc: Any,
    keys: dict[int, PairKey],
    products: FieldVector,
    *,
    modulus: int,
    purpose: Purpose,
    index: int,
) -> FieldVector:
    """Return this party's degree-1 shares of the values whose degree-2 shares are ``products``.

    ``products`` (1-D) are this party's shares of a degree-2 sharing, e.g. the local product
    of two degree-1 share vectors. Every party calls this at the same step with a stream
    name (``purpose``, ``index``) not used before under the call's keys. Requires at least
    three parties and threshold 1. Raises PeerError if a dealer sends a malformed message.
    """
    me, length = mpc.pid, len(products)
    dealers = RESHARING_PARTIES
    partners = {d: dealers[(k + 1) % len(dealers)] for k, d in enumerate(dealers)}
    outgoing: dict[int, bytes] = {}
    own: FieldVector | None = None
    if me in dealers:
        weight = lagrange_at(0, [point(d) for d in dealers], modulus)[dealers.index(me)]
        partner = partners[me]
        recipients = [r for r in range(len(mpc.parties)) if r != partner]
        dealt = deal(
            products * (weight % modulus) % modulus,
            partner,
            keyed_field_vector(keys[partner], purpose, index, 0, length, modulus),
            recipients,
            modulus,
        )
        outgoing = {r: encode([dealt[r]], modulus) for r in recipients if r != me}
        own = dealt[me]
    sources = [d for d in dealers if d != me and partners[d] != me]
    received = await (await exchange(mpc, outgoing, sources))
    total = np.zeros(length, dtype=object) if own is None else own
    for dealer in dealers:
        if partners[dealer] == me:
            part = keyed_field_vector(keys[dealer], purpose, index, 0, length, modulus)
        elif dealer != me:
            (part,) = decode(received[dealer], 1, length, modulus, "reshared products")
        else:
            continue
        total = total + part
    return total % modulus
