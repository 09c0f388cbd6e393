"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signers and verifiers.

A signed note is a text ending in a newline, a blank line, and one or more signature lines
"— <key name> base64(key ID || signature)". Parsing is strict: valid UTF-8, no control
characters but newline, canonical base64, key names without spaces or "+", at most
MAX_SIGNATURES signatures.

Opening a note applies the spec's rules: signatures from unknown keys (name and key ID not
both matching a configured verifier) are ignored; a signature from a known key must verify,
or the whole note is rejected; two signatures from one known key are rejected; and at least
one known key must have signed.

Verifiers and signers are small protocols, so other signature types (C2SP cosignatures in
`ledger.cosignature`, or ECDSA in the tests) plug into the same `open_note`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import _keys
from ledger._text import b64decode, b64encode
from ledger.errors import FormatError, SignatureError

SIG_TYPE_ED25519 = 0x01
MAX_SIGNATURES = 64  # the spec requires accepting at least 16
MAX_NOTE_CHARS = 1 << 20
_DASH = "\u2014 "  # em dash and space open every signature line
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII control characters but newline
_BAD_KEY_NAME = re.compile(r"[\s+\x00-\x1f]")  # \s is exactly str.isspace
_CACHED_NOTE_CHARS = 1 << 14  # parse_note remembers notes up to this size


class Verifier(Protocol):
    """A key that can check note signatures: identified by (name, key ID)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Return whether signature (without the key ID prefix) is valid for text."""
        ...


class Signer(Protocol):
    """A key that can sign note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes:
        """Return the signature (without the key ID prefix) of text."""
        ...


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Return the C2SP key ID SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def check_key_name(name: str) -> None:
    """Check a key name: non-empty, no Unicode spaces, no "+", no control characters.

    Raises FormatError.
    """
    if not name:
        raise FormatError("key name: got an empty name, want a non-empty one")
    if _BAD_KEY_NAME.search(name):
        raise FormatError("key name: got spaces, '+' or control characters, want none")


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_NOTE_CHARS:
        raise FormatError(f"{what}: got {len(text)} characters, want at most {MAX_NOTE_CHARS}")
    bad = _CONTROL.search(text)
    if bad is not None:
        code = ord(bad.group())
        raise FormatError(f"{what}: got control character U+{code:04X}, want none")
    if not text.endswith("\n"):
        raise FormatError(f"{what}: got no final newline, want text ending in a newline")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the signature line, newline included."""
        return f"{_DASH}{self.name} {b64encode(self.key_id + self.signature)}\n"


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line (with or without its final newline). Raises FormatError."""
    body = line[:-1] if line.endswith("\n") else line
    if not body.startswith(_DASH) or "\n" in body:
        raise FormatError("note signature line: got no leading em dash, want '— name sig'")
    name, sep, sig_text = body[len(_DASH) :].partition(" ")
    if not sep:
        raise FormatError("note signature line: got no space after the key name")
    check_key_name(name)
    raw = b64decode(sig_text, "note signature")
    if len(raw) < 5:
        raise FormatError(f"note signature: got {len(raw)} bytes, want a key ID and more")
    return NoteSignature(name, raw[:4], raw[4:])


@dataclass(frozen=True)
class Note:
    """A note text and its signatures, in the order they appear."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    def format(self) -> str:
        """Return the signed note. Requires at least one signature."""
        if not self.signatures:
            raise FormatError("note: got 0 signatures, want at least 1")
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, *signatures: NoteSignature) -> Note:
        """Return a copy with signatures added; a new one replaces one with the same key."""
        merged = {(s.name, s.key_id): s for s in self.signatures}
        for s in signatures:
            merged[(s.name, s.key_id)] = s
        return Note(self.text, tuple(merged.values()))


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note strictly without checking signatures. Raises FormatError.

    A log's parties parse the same few checkpoint notes many times (to verify, to store,
    to cosign), so the latest small notes are remembered (a Note is immutable).
    """
    if len(data) <= _CACHED_NOTE_CHARS:
        return _parse_note_cached(data)
    return _parse_note(data)


@functools.lru_cache(maxsize=64)
def _parse_note_cached(data: str | bytes) -> Note:
    return _parse_note(data)


def _parse_note(data: str | bytes) -> Note:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("note: got invalid UTF-8, want UTF-8") from None
    _check_text(data, "note")
    split = data.rfind("\n\n")
    if split < 0:
        raise FormatError("note: got no blank line before the signatures, want one")
    text, block = data[: split + 1], data[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise FormatError("note: got 0 signatures, want at least 1")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"note: got {len(lines)} signatures, want at most {MAX_SIGNATURES}")
    return Note(text, tuple(parse_signature_line(line) for line in lines))


def sign_note(text: str, *signers: Signer) -> str:
    """Return text signed by each signer as a note.

    Requires text ending in a newline with no control characters but newlines. Raises
    FormatError otherwise.
    """
    _check_text(text, "note text")
    data = text.encode()
    sigs = [NoteSignature(s.name, s.key_id, s.sign(data)) for s in signers]
    return Note(text, tuple(sigs)).format()


@dataclass(frozen=True)
class OpenedNote:
    """A note whose known signatures all verified; `verified` lists the keys that signed."""

    note: Note
    verified: tuple[Verifier, ...]

    @property
    def text(self) -> str:
        """Return the note text (what the signatures cover)."""
        return self.note.text


def open_note(data: str | bytes | Note, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse a note and check its signatures against the known verifiers.

    Raises FormatError for a malformed note or duplicate keys, and SignatureError when a
    known key's signature does not verify or no known key signed.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known:
            raise FormatError(f"verifiers: got key {v.name}+{v.key_id.hex()} twice, want once")
        known[(v.name, v.key_id)] = v
    text = note.text.encode()
    verified: list[Verifier] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue  # unknown keys are ignored, even if name or ID alone matches
        if verifier in verified:
            raise FormatError(f"note: got two signatures by {sig.name}+{sig.key_id.hex()}")
        if not verifier.verify(text, sig.signature):
            raise SignatureError(
                f"note signature by {sig.name}+{sig.key_id.hex()}: does not verify"
            )
        verified.append(verifier)
    if not verified:
        raise SignatureError(
            f"note: got no signature by a known key, want one of {len(known)} known keys"
        )
    return OpenedNote(note, tuple(verified))


def format_vkey(name: str, sig_type: int, public_key: bytes) -> str:
    """Return the verifier key string name+hex(key ID)+base64(type || public key)."""
    kid = key_id(name, sig_type, public_key)
    return f"{name}+{kid.hex()}+{b64encode(bytes([sig_type]) + public_key)}"


def parse_vkey_fields(vkey: str) -> tuple[str, int, bytes]:
    """Return (name, signature type, public key) of a verifier key whose ID is the C2SP hash.

    Raises FormatError when the string is malformed or the key ID does not match.
    """
    parts = vkey.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise FormatError(f"verifier key: got {len(parts)} '+'-separated fields, want 3")
    name, kid_hex, key_b64 = parts
    check_key_name(name)
    raw = b64decode(key_b64, "verifier key")
    if len(raw) < 2:
        raise FormatError("verifier key: got no key material")
    sig_type, material = raw[0], raw[1:]
    if kid_hex != key_id(name, sig_type, material).hex():
        raise FormatError(f"verifier key {name}: key ID {kid_hex[:8]!r} does not match the key")
    return name, sig_type, material


class NoteVerifier:
    """Verifies Ed25519 note signatures (signature type 0x01) by one named key.

    Subclasses for other signature types set ``sig_type`` and override ``verify``.
    """

    sig_type = SIG_TYPE_ED25519

    def __init__(self, name: str, public_key: Ed25519PublicKey | bytes) -> None:
        """Build a verifier. Raises FormatError for a bad name or key."""
        check_key_name(name)
        self._key = _keys.public_key(public_key)
        self._name = name
        self._raw = _keys.public_bytes(self._key)
        self._key_id = key_id(name, self.sig_type, self._raw)
        self._verified = _keys.VerifiedSignatures(self._key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Build a verifier from "name+keyid+base64(type || key)". Raises FormatError."""
        name, sig_type, material = parse_vkey_fields(vkey)
        if sig_type != cls.sig_type:
            raise FormatError(
                f"verifier key {name}: got type {sig_type:#04x}, want {cls.sig_type:#04x}"
            )
        return cls(name, material)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """Return the raw 32-byte public key."""
        return self._raw

    @property
    def vkey(self) -> str:
        """Return the C2SP verifier key string."""
        return format_vkey(self._name, self.sig_type, self._raw)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Return whether signature is valid for text (each valid one is checked once)."""
        return self._verified.verify(signature, text)

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey!r})"


class NoteSigner:
    """Signs notes with an Ed25519 key (signature type 0x01) under a key name."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey | bytes) -> None:
        """Build a signer from a key object or a 32-byte seed. Raises FormatError."""
        check_key_name(name)
        self._key = _keys.private_key(private_key)
        self._name = name
        self._verifier = NoteVerifier(name, self._key.public_key())

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Build a signer from "PRIVATE+KEY+name+keyid+base64(0x01 || seed)".

        Raises FormatError when malformed or when the key ID does not match.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise FormatError("signer key: got a malformed string, want PRIVATE+KEY+...")
        name, kid_hex, key_b64 = parts[2:]
        raw = b64decode(key_b64, "signer key")
        if len(raw) != 33 or raw[0] != SIG_TYPE_ED25519:
            raise FormatError("signer key: got a non-Ed25519 key, want type 0x01 and 32 bytes")
        signer = cls(name, raw[1:])
        if signer.key_id.hex() != kid_hex:
            raise FormatError(f"signer key {name}: key ID {kid_hex[:8]!r} does not match")
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    @property
    def verifier(self) -> NoteVerifier:
        """Return the matching verifier."""
        return self._verifier

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)

    def __repr__(self) -> str:
        return f"NoteSigner({self._name!r}, key_id={self.key_id.hex()})"
