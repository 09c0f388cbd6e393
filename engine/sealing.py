"""Seal a party's result shares so that only the requesting analyst can open them.

ECIES-style: the party makes an ephemeral X25519 key, agrees a secret with the analyst's
``result_key`` from the signed request, derives a one-time key with HKDF-SHA256, and
encrypts with ChaCha20-Poly1305, binding the query id and the party name as associated
data. The coordinator that relays the sealed shares cannot read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import AuthError

_INFO = b"jointstat/result-share/v1"
_NONCE = b"\x00" * 12  # each derived key encrypts exactly one message


@dataclass(frozen=True)
class Shares:
    """One party's shares of one query's released cells."""

    x: int
    modulus: int
    num: tuple[int, ...]
    den: tuple[int, ...]
    flag: tuple[int, ...]
    sign: tuple[int, ...] = ()

    def to_bytes(self) -> bytes:
        body = {
            "x": self.x,
            "modulus": format(self.modulus, "x"),
            "num": [format(v, "x") for v in self.num],
            "den": [format(v, "x") for v in self.den],
            "flag": [format(v, "x") for v in self.flag],
            "sign": [format(v, "x") for v in self.sign],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Shares:
        body = json.loads(raw)
        return cls(
            x=int(body["x"]),
            modulus=int(body["modulus"], 16),
            num=tuple(int(v, 16) for v in body["num"]),
            den=tuple(int(v, 16) for v in body["den"]),
            flag=tuple(int(v, 16) for v in body["flag"]),
            sign=tuple(int(v, 16) for v in body.get("sign", [])),
        )


@dataclass(frozen=True)
class SealedShares:
    """A party's shares encrypted to the analyst."""

    party: str
    ephemeral_key: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        """Return the canonical bytes the party's ledger commitment covers."""
        name = self.party.encode()
        return (
            b"jointstat/sealed-shares/v1\n"
            + len(name).to_bytes(1, "big")
            + name
            + self.ephemeral_key
            + len(self.ciphertext).to_bytes(4, "big")
            + self.ciphertext
        )


def _raw(public: x25519.X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, query_id: str, party: str) -> bytes:
    info = _INFO + b"|" + query_id.encode() + b"|" + party.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seal(result_key: bytes, query_id: str, party: str, shares: Shares) -> SealedShares:
    """Encrypt ``shares`` to the analyst's X25519 ``result_key``."""
    ephemeral = x25519.X25519PrivateKey.generate()
    shared = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(result_key))
    aad = f"{query_id}|{party}".encode()
    cipher = ChaCha20Poly1305(_key(shared, query_id, party))
    return SealedShares(
        party, _raw(ephemeral.public_key()), cipher.encrypt(_NONCE, shares.to_bytes(), aad)
    )


def open_sealed(private: x25519.X25519PrivateKey, query_id: str, sealed: SealedShares) -> Shares:
    """Decrypt a party's sealed shares; raise AuthError if they were tampered with."""
    try:
        peer = x25519.X25519PublicKey.from_public_bytes(sealed.ephemeral_key)
        shared = private.exchange(peer)
        aad = f"{query_id}|{sealed.party}".encode()
        raw = ChaCha20Poly1305(_key(shared, query_id, sealed.party)).decrypt(
            _NONCE, sealed.ciphertext, aad
        )
    except (InvalidTag, ValueError):
        raise AuthError(
            f"sealed shares of party {sealed.party!r}: got ones that do not decrypt, want shares "
            "sealed to this request's result key"
        ) from None
    return Shares.from_bytes(raw)


def new_result_key() -> tuple[x25519.X25519PrivateKey, bytes]:
    """Return a fresh X25519 private key and its raw public key."""
    private = x25519.X25519PrivateKey.generate()
    return private, _raw(private.public_key())
