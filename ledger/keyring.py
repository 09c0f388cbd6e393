"""The federation's key ring: author names mapped to Ed25519 public keys and roles.

Entries name their authors (a party such as "agency-a", or an analyst); verifying an entry
looks the name up here, checks that the author has the role the entry requires, and checks
the signature.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import _keys
from ledger.errors import FormatError, SignatureError

_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


class Role(enum.Enum):
    """What an author may sign."""

    PARTY = "party"  # an agency: registers datasets, approves/refuses, commits, aborts
    ANALYST = "analyst"  # requests queries


def check_name(name: str, what: str) -> None:
    """Check an author name or query id: 1..255 UTF-8 bytes, no control characters.

    Raises FormatError.
    """
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= 255:
        raise FormatError(f"{what}: got {size} bytes, want 1..255")
    if _FORBIDDEN.search(name):
        raise FormatError(f"{what}: got a control or surrogate character, want none")


class KeyRing:
    """Maps author names to (Ed25519 public key, Role)."""

    def __init__(self, keys: Mapping[str, tuple[Ed25519PublicKey | bytes, Role]] = {}) -> None:
        """Build a key ring from {name: (public key, role)}. Raises FormatError."""
        self._keys: dict[str, tuple[Ed25519PublicKey, Role]] = {}
        for name, (key, role) in keys.items():
            self.add(name, key, role)

    def add(self, name: str, public_key: Ed25519PublicKey | bytes, role: Role) -> None:
        """Add an author. Raises FormatError for a bad name or key, or a name already present."""
        check_name(name, "key ring name")
        if name in self._keys:
            raise FormatError(f"key ring: got {name!r} twice, want each name once")
        self._keys[name] = (_keys.public_key(public_key), role)

    def role(self, name: str) -> Role | None:
        """Return the role of an author, or None if unknown."""
        entry = self._keys.get(name)
        return entry[1] if entry else None

    def public_key(self, name: str) -> bytes:
        """Return the raw 32-byte public key of an author. Raises SignatureError if unknown."""
        entry = self._keys.get(name)
        if entry is None:
            raise SignatureError(f"key ring: got unknown author {name!r}")
        return _keys.public_bytes(entry[0])

    def verify(self, name: str, role: Role, message: bytes, signature: bytes, what: str) -> None:
        """Check that `name` has `role` and signed `message`.

        Raises SignatureError naming what was signed and by whom.
        """
        entry = self._keys.get(name)
        if entry is None:
            raise SignatureError(f"{what}: got unknown author {name!r}")
        key, actual = entry
        if actual is not role:
            raise SignatureError(
                f"{what}: author {name!r} has role {actual.value}, want {role.value}"
            )
        if not _keys.verify(key, signature, message):
            raise SignatureError(f"{what}: signature by {name!r} does not verify")

    def __contains__(self, name: object) -> bool:
        return name in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
