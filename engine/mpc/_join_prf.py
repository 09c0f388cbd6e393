"""Pair keys, pseudonyms and keyed pseudorandom streams of the helper-aligned join.

See docs/join-protocol.md, "Building blocks".

- **Pair keys.** Every call of the join derives fresh keys for each pair of parties from an
  ephemeral X25519 exchange (RFC 7748) and HKDF-SHA256 (RFC 5869), salted with the digest of
  the join's public parameters. Keys are never reused across calls, so a (key, nonce) pair
  is never reused across two vectors (a pair member would learn their difference).
  The links are mutually authenticated TLS in production (the worker), so the exchange is
  not open to a man in the middle; without TLS (tests) it still hides the keys from a passive
  observer.
- **Pseudonyms.** ``HMAC-SHA256(K, 0x00 ‖ key)`` truncated to 128 bits for a real join key,
  ``HMAC-SHA256(K, 0x01 ‖ domain ‖ index)`` for a dummy (RFC 2104, with the pads computed once
  per key). HMAC rather than AES because join keys are byte strings of any length: HMAC is a
  PRF on arbitrary messages as it stands, where AES would need a hash or CMAC in front, and
  it costs about 1 µs per key here. The leading byte separates real keys from dummies, so a
  real key can never produce a dummy's pseudonym.
- **Streams.** AES-256-CTR under the pair's stream key; the initial counter block is
  ``purpose ‖ spoke ‖ column ‖ round ‖ 0…`` and the low 64 bits count blocks, so streams of
  distinct (purpose, spoke, column, round) never overlap; rounds > 0 serve only to replace
  the rare candidates >= p. Field elements are drawn from a stream by
  rejection sampling (:func:`engine.mpc._join_field.uniform`), exactly uniform.
- **Permutations** are the stable argsort of 64-bit random keys (from the CSPRNG, or from a
  pair's stream when two parties must agree on them); ties, which would bias the order, occur
  with probability below M²/2^65 for M keys.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.mpc._join_field import FieldVector, Rows, uniform

PSEUDONYM_BYTES = 16
PUBLIC_KEY_BYTES = 32
_BLOCK = 64  # SHA-256 block size, for the HMAC pads
_STREAM_ID = struct.Struct(">BBHB3x8x")  # purpose, spoke, column, round; 8 bytes count blocks

IndexVector = npt.NDArray[np.int64]


class Purpose(IntEnum):
    """What a keyed stream is for; part of its nonce, so that no two vectors share one."""

    HUB_INPUT = 1  # the hub's share-dealing polynomial, at the partner's point
    SPLIT = 2  # the owner's additive split of its aligned columns (owner–hub)
    MASK = 3  # the hub's and helper's common mask of their additive parts (hub–helper)
    DEAL_HUB = 4  # the hub's re-sharing polynomial, at the owner's point (hub–owner)
    DEAL_HELPER = 5  # the helper's re-sharing polynomial, at the owner's point
    MATCHED = 6  # the helper's sharing of the match indicator, at the owner's point
    ROW_ORDER = 7  # the permutation ρ known to hub and helper
    OPEN_ORDER = 8  # open mode: the permutation σ known to owner and helper
    OPEN_DEAL = 9  # open mode: owner's and helper's re-sharing, at the hub's point
    ORDER_FIRST = 10  # order statistics: the first stage's permutation (owner and partner)
    ORDER_STAGE = 11  # order statistics: the stages' re-sharing, at the quiet party's point
    ORDER_INPUT = 12  # order statistics: the owner's dealt values, at its partner's point
    ORDER_MASK = 13  # order statistics: the dealt masks of the residues, at the partner's
    ORDER_RESHARE = 14  # order statistics: degree reduction of products, at the partner's
    OVERLAP_INPUT = 15  # join overlap control: the hub's dealt power columns, at its partner's
    OVERLAP_MASK = 16  # join overlap control: each party's dealt conversion masks


@dataclass(frozen=True)
class PairKey:
    """The keys two parties share for one join: AES-256 streams and HMAC pseudonyms."""

    stream: bytes
    pseudonym: bytes


class KeyAgreement:
    """An ephemeral X25519 key pair, from which this party derives its pair keys."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public = self._private.public_key().public_bytes_raw()

    def pair_key(self, peer_public: bytes, me: int, peer: int, context: bytes) -> PairKey:
        """Return the key this party shares with ``peer``; ``context`` binds it to the join.

        Raises ValueError if ``peer_public`` is not a valid X25519 public key.
        """
        shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        low, high = sorted((me, peer))
        okm = HKDF(
            algorithm=hashes.SHA256(),
            length=64,
            salt=context,
            info=b"jointstat join pair key v1" + struct.pack(">HH", low, high),
        ).derive(shared)
        return PairKey(stream=okm[:32], pseudonym=okm[32:])


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms under one pair key (RFC 2104, pads precomputed)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def mac(self, message: bytes) -> bytes:
        """Return HMAC-SHA256(key, message), all 32 bytes."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def real(self, keys: Sequence[bytes]) -> list[bytes]:
        """Return the pseudonyms of real join keys."""
        return [self.mac(b"\x00" + key)[:PSEUDONYM_BYTES] for key in keys]

    def dummies(self, domain: int, count: int) -> list[bytes]:
        """Return the pseudonyms of dummies 0 .. count-1 of ``domain`` (0 or 1)."""
        prefix = b"\x01" + bytes([domain])
        return [self.mac(prefix + i.to_bytes(8, "big"))[:PSEUDONYM_BYTES] for i in range(count)]


def fillers(count: int) -> list[bytes]:
    """Return ``count`` fresh random pseudonyms, which match nothing (w.p. 1 - N²/2^128)."""
    blob = secrets.token_bytes(count * PSEUDONYM_BYTES)
    return [blob[i : i + PSEUDONYM_BYTES] for i in range(0, len(blob), PSEUDONYM_BYTES)]


def keyed_bytes(
    key: PairKey, purpose: Purpose, spoke: int, column: int, size: int, round_: int = 0
) -> bytes:
    """Return ``size`` bytes of the AES-256-CTR stream named (purpose, spoke, column, round).

    Requires 0 <= spoke < 256, 0 <= column < 65536 and 0 <= round_ < 256.
    """
    nonce = _STREAM_ID.pack(int(purpose), spoke, column, round_)
    encryptor = Cipher(algorithms.AES(key.stream), modes.CTR(nonce)).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


def keyed_field_vector(
    key: PairKey,
    purpose: Purpose,
    spoke: int,
    column: int,
    length: int,
    modulus: int,
    rows: Rows = None,
) -> FieldVector:
    """Return the named stream's ``length`` uniform elements of GF(modulus) (or those at rows)."""

    def stream(round_: int, size: int) -> bytes:
        return keyed_bytes(key, purpose, spoke, column, size, round_)

    return uniform(stream, length, modulus, rows)


def keyed_permutation(key: PairKey, purpose: Purpose, spoke: int, length: int) -> IndexVector:
    """Return the permutation of range(length) that both holders of ``key`` derive."""
    blob = keyed_bytes(key, purpose, spoke, 0, 8 * length)
    return np.argsort(np.frombuffer(blob, dtype="<u8"), kind="stable").astype(np.int64)


def random_permutation(length: int) -> IndexVector:
    """Return a uniformly random permutation of range(length) from the CSPRNG."""
    keys = np.frombuffer(secrets.token_bytes(8 * length), dtype="<u8")
    return np.argsort(keys, kind="stable").astype(np.int64)
