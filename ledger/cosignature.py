"""C2SP witness cosignatures, Ed25519 `cosignature/v1` (c2sp.org/tlog-cosignature).

A cosignature is a note signature (type 0x04) on a checkpoint. Its bytes are an 8-byte
big-endian POSIX timestamp followed by an Ed25519 signature over

    cosignature/v1
    time <timestamp>
    <the whole checkpoint note text>

It states that, at that time, this was the largest consistent tree the witness had seen for
the origin. The ML-DSA-44 `subtree/v1` variant is out of scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import _keys
from ledger._text import MAX_UINT63
from ledger.errors import FormatError
from ledger.note import (
    SIG_TYPE_ED25519,
    NoteSignature,
    NoteVerifier,
    Verifier,
    check_key_name,
    parse_vkey_fields,
)

SIG_TYPE_COSIGNATURE_V1 = 0x04
_SIG_LEN = 8 + 64


def cosigned_message(checkpoint_text: str | bytes, timestamp: int) -> bytes:
    """Return the bytes an Ed25519 cosignature signs. Requires 0 <= timestamp <= 2**63-1."""
    if not 0 <= timestamp <= MAX_UINT63:
        raise FormatError(f"cosignature timestamp: got {timestamp}, want 0..2**63-1")
    text = checkpoint_text.encode() if isinstance(checkpoint_text, str) else checkpoint_text
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def cosignature_timestamp(signature: NoteSignature | bytes) -> int:
    """Return the timestamp of a cosignature. Raises FormatError if it is not 72 bytes."""
    raw = signature.signature if isinstance(signature, NoteSignature) else signature
    if len(raw) != _SIG_LEN:
        raise FormatError(f"cosignature: got {len(raw)} bytes, want {_SIG_LEN}")
    return int.from_bytes(raw[:8], "big")


class CosignatureVerifier(NoteVerifier):
    """Verifies `cosignature/v1` signatures of one named witness key."""

    sig_type = SIG_TYPE_COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != _SIG_LEN:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_UINT63:
            return False
        return self._verified.verify(signature[8:], cosigned_message(text, timestamp))

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.vkey!r})"


class CosignatureSigner:
    """Produces `cosignature/v1` signatures with a witness's Ed25519 key.

    `clock` returns the POSIX time to stamp; it defaults to the system clock.
    """

    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey | bytes,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """Build a signer from a key object or a 32-byte seed. Raises FormatError."""
        check_key_name(name)
        self._key = _keys.private_key(private_key)
        self._name = name
        self._clock = clock or (lambda: int(time.time()))
        self._verifier = CosignatureVerifier(name, self._key.public_key())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    @property
    def verifier(self) -> CosignatureVerifier:
        """Return the matching verifier."""
        return self._verifier

    def sign(self, text: bytes, timestamp: int | None = None) -> bytes:
        """Return timestamp || Ed25519 signature over the cosigned message for text."""
        ts = self._clock() if timestamp is None else timestamp
        return ts.to_bytes(8, "big") + self._key.sign(cosigned_message(text, ts))

    def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> NoteSignature:
        """Return the cosignature of a checkpoint's note text as a note signature."""
        return NoteSignature(
            self._name, self.key_id, self.sign(checkpoint_text.encode(), timestamp)
        )


def parse_vkey(vkey: str) -> Verifier:
    """Return a verifier for an Ed25519 note key (0x01) or cosignature key (0x04).

    Raises FormatError for other types, malformed strings or a mismatched key ID.
    """
    _, sig_type, _ = parse_vkey_fields(vkey)
    if sig_type == SIG_TYPE_ED25519:
        return NoteVerifier.from_vkey(vkey)
    if sig_type == SIG_TYPE_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(vkey)
    raise FormatError(f"verifier key: got type {sig_type:#04x}, want 0x01 or 0x04")
