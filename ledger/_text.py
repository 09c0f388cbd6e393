"""Strict parsers for the text encodings shared by notes, checkpoints, receipts and witnesses.

C2SP specs use standard base64 (RFC 4648 §4) and ASCII decimals with no leading zeroes.
Strictness matters here: two encodings of one value would let the same signed object have
two byte representations.
"""

from __future__ import annotations

import base64
import binascii
import re

from ledger.errors import FormatError

# Sizes and indices are stored in SQLite INTEGER columns (signed 64-bit).
MAX_UINT63 = (1 << 63) - 1

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def parse_decimal(text: str, what: str) -> int:
    """Return the value of a canonical ASCII decimal.

    Requires no sign, no leading zeroes (except "0" itself), ASCII digits only and a value
    of at most 2**63 - 1. Raises FormatError otherwise.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise FormatError(f"{what}: got {text[:24]!r}, want a decimal without leading zeroes")
    value = int(text)
    if value > MAX_UINT63:
        raise FormatError(f"{what}: got {text[:24]}, want at most 2**63-1")
    return value


def b64encode(data: bytes) -> str:
    """Return the standard padded base64 encoding of data."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Return the bytes of a canonical standard base64 string.

    Rejects characters outside the alphabet, missing or extra padding and non-zero padding
    bits (so that exactly one string decodes to given bytes). Raises FormatError.
    """
    try:
        raw = text.encode("ascii")
        data = base64.b64decode(raw, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise FormatError(f"{what}: got invalid base64, want standard base64") from None
    if base64.b64encode(data) != raw:
        raise FormatError(f"{what}: got non-canonical base64, want canonical padding")
    return data


def b64decode_hash(text: str, what: str) -> bytes:
    """Return a 32-byte hash from canonical base64. Raises FormatError."""
    data = b64decode(text, what)
    if len(data) != 32:
        raise FormatError(f"{what}: got {len(data)} bytes, want 32")
    return data
