"""Agreement on a call's public parameters, and fresh pair keys for it.

See docs/join-protocol.md, "Public parameters" and "Building blocks".

Before the first message of a protocol call (a join, or order statistics on a join), every
party sends every other one the SHA-256 digest of the call's public parameters, its
ephemeral X25519 public key and a flag saying whether its own input could be prepared. A
mismatch or a failed input aborts the call at every party at the same step, so that the MPC
session stays in step; otherwise each pair derives its key for this call
(:class:`engine.mpc._join_prf.KeyAgreement`, salted with the digest).
"""

from __future__ import annotations

from typing import Any

from engine.errors import PeerError
from engine.mpc._join_links import exchange
from engine.mpc._join_prf import PUBLIC_KEY_BYTES, KeyAgreement, PairKey

DIGEST_BYTES = 32


async def agree(mpc: Any, digest: bytes, failed: bool, what: str) -> dict[int, PairKey]:
    """Check that every party has the same ``digest`` and is ready; return the pair keys.

    ``failed`` says that this party's input could not be prepared: it then still takes part
    in the exchange (and the caller raises its own error afterwards), while every other
    party raises PeerError. ``what`` names the protocol in error messages.

    Raises PeerError if a peer's digest differs, a peer failed, or a peer sent an invalid
    message. Requires a 32-byte digest.
    """
    if len(digest) != DIGEST_BYTES:
        raise ValueError(f"digest: got {len(digest)} bytes, want {DIGEST_BYTES}")
    agreement = KeyAgreement()
    message = digest + agreement.public + (b"\x00" if failed else b"\x01")
    peers = [i for i in range(len(mpc.parties)) if i != mpc.pid]
    received = await (await exchange(mpc, {i: message for i in peers}, peers))
    keys = {}
    for peer in peers:
        payload = received[peer]
        if len(payload) != len(message) or payload[:DIGEST_BYTES] != digest:
            raise PeerError(f"{what} parameters: party {peer} got other public arguments")
        if payload[-1:] != b"\x01" and not failed:
            raise PeerError(f"{what}: party {peer} could not prepare its input")
        try:
            public = payload[DIGEST_BYTES : DIGEST_BYTES + PUBLIC_KEY_BYTES]
            keys[peer] = agreement.pair_key(public, mpc.pid, peer, digest)
        except ValueError:
            raise PeerError(f"{what}: party {peer} sent an invalid X25519 public key") from None
    return keys
