"""Field codecs for the canonical entry encoding described in `ledger.entries`."""

from __future__ import annotations

import re

from ledger.errors import FormatError
from ledger.keyring import check_name

MAX_REASON_BYTES = 4096
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # control characters but tab, newline
MAX_REQUEST_BYTES = 1 << 20


def check_text(value: str, what: str) -> bytes:
    """Return the UTF-8 of a reason text; no control characters but tab and newline."""
    if _FORBIDDEN.search(value):
        raise FormatError(f"{what}: got a control character, want none but tab and newline")
    try:
        raw = value.encode()
    except UnicodeEncodeError:
        raise FormatError(f"{what}: got a surrogate character, want valid Unicode") from None
    if len(raw) > MAX_REASON_BYTES:
        raise FormatError(f"{what}: got {len(raw)} bytes, want at most {MAX_REASON_BYTES}")
    return raw


class Writer:
    """Appends canonical field encodings (see ledger.entries)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def name(self, value: str, what: str) -> None:
        check_name(value, what)
        raw = value.encode()
        self.parts += [bytes([len(raw)]), raw]

    def text(self, value: str, what: str) -> None:
        raw = check_text(value, what)
        self.parts += [len(raw).to_bytes(2, "big"), raw]

    def fixed(self, value: bytes, size: int, what: str) -> None:
        if len(value) != size:
            raise FormatError(f"{what}: got {len(value)} bytes, want {size}")
        self.parts.append(value)

    def blob(self, value: bytes, what: str) -> None:
        if len(value) > MAX_REQUEST_BYTES:
            raise FormatError(f"{what}: got {len(value)} bytes, want <= {MAX_REQUEST_BYTES}")
        self.parts += [len(value).to_bytes(4, "big"), value]

    def u8(self, value: int) -> None:
        self.parts.append(bytes([value]))

    def value(self) -> bytes:
        return b"".join(self.parts)


class Reader:
    """Reads canonical field encodings, raising FormatError on anything else."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            have = len(self.data) - self.pos
            raise FormatError(f"entry {what}: got {have} bytes left, want {n}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def _utf8(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"entry {what}: got invalid UTF-8, want UTF-8") from None

    def name(self, what: str) -> str:
        value = self._utf8(self.take(self.uint(1, what), what), what)
        check_name(value, f"entry {what}")
        return value

    def text(self, what: str) -> str:
        size = self.uint(2, what)
        if size > MAX_REASON_BYTES:
            raise FormatError(f"entry {what}: got {size} bytes, want at most {MAX_REASON_BYTES}")
        value = self._utf8(self.take(size, what), what)
        check_text(value, f"entry {what}")
        return value

    def blob(self, what: str) -> bytes:
        size = self.uint(4, what)
        if size > MAX_REQUEST_BYTES:
            raise FormatError(f"entry {what}: got {size} bytes, want <= {MAX_REQUEST_BYTES}")
        return self.take(size, what)
