"""Ed25519 key coercion shared by notes, cosignatures, entries and witnesses.

Callers may hold keys as `cryptography` objects or as raw bytes (32-byte private seed,
32-byte public key, RFC 8032 encoding); everything inside `ledger` works on the objects.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import FormatError

PrivateKeyLike = Ed25519PrivateKey | bytes
PublicKeyLike = Ed25519PublicKey | bytes


def private_key(key: PrivateKeyLike) -> Ed25519PrivateKey:
    """Return an Ed25519 private key from an object or a 32-byte seed. Raises FormatError."""
    if isinstance(key, Ed25519PrivateKey):
        return key
    if len(key) != 32:
        raise FormatError(f"Ed25519 private key: got {len(key)} bytes, want 32")
    return Ed25519PrivateKey.from_private_bytes(key)


def public_key(key: PublicKeyLike) -> Ed25519PublicKey:
    """Return an Ed25519 public key from an object or 32 raw bytes. Raises FormatError."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if len(key) != 32:
        raise FormatError(f"Ed25519 public key: got {len(key)} bytes, want 32")
    try:
        return Ed25519PublicKey.from_public_bytes(key)
    except ValueError:
        raise FormatError("Ed25519 public key: got bytes that are not a curve point") from None


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """Return the 32-byte RFC 8032 encoding of a public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Return whether signature is a valid Ed25519 signature of message under key."""
    if len(signature) != 64:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class VerifiedSignatures:
    """Verifies signatures by one key, remembering the latest valid ones.

    A party meets the same checkpoint signature several times (checking a batch into its
    mirror, cosigning it, storing it with the quorum's cosignatures); verification is
    deterministic, so a verifier shared by those steps checks each signature once.
    """

    def __init__(self, key: Ed25519PublicKey, size: int = 256) -> None:
        self._key = key
        self._size = size
        self._valid: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Return whether signature is a valid signature of message under the key."""
        if len(signature) != 64:
            return False
        memo = hashlib.sha256(signature + message).digest()  # unambiguous: 64-byte prefix
        with self._lock:
            if memo in self._valid:
                self._valid.move_to_end(memo)
                return True
        if not verify(self._key, signature, message):
            return False
        with self._lock:
            self._valid[memo] = None
            if len(self._valid) > self._size:
                self._valid.popitem(last=False)
        return True
