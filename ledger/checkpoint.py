"""C2SP checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head.

The note text is the origin line, the tree size as a decimal without leading zeroes, the
base64 root hash, and optional non-empty extension lines, each ending in a newline:

    jointstat.example/federation-1
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

Parsing rejects anything else (empty lines, "+5", "05", non-canonical base64, a root that is
not 32 bytes, a missing final newline).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger._text import MAX_UINT63, b64decode_hash, b64encode, parse_decimal
from ledger.errors import FormatError
from ledger.merkle import HASH_SIZE
from ledger.note import OpenedNote, Signer, Verifier, open_note, sign_note

_CONTROL = re.compile("[\x00-\x1f]")
_CACHED_TEXT_CHARS = 1 << 14


def _check_line(line: str, what: str) -> None:
    if not line:
        raise FormatError(f"checkpoint {what}: got an empty line, want a non-empty one")
    if _CONTROL.search(line):
        raise FormatError(f"checkpoint {what}: got a control character, want none")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root, plus opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_UINT63:
            raise FormatError(f"checkpoint size: got {self.size}, want 0..2**63-1")
        if len(self.root) != HASH_SIZE:
            raise FormatError(f"checkpoint root: got {len(self.root)} bytes, want {HASH_SIZE}")
        for line in self.extensions:
            _check_line(line, "extension line")

    def text(self) -> str:
        """Return the checkpoint note text, final newline included."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text strictly. Raises FormatError."""
        if len(text) <= _CACHED_TEXT_CHARS:
            return _parse_cached(text)
        return _parse(text)


def _parse(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise FormatError("checkpoint: got no final newline, want text ending in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(f"checkpoint: got {len(lines)} lines, want at least 3")
    origin, size_text, root_text, *extensions = lines
    size = parse_decimal(size_text, "checkpoint size")
    root = b64decode_hash(root_text, "checkpoint root")
    return Checkpoint(origin, size, root, tuple(extensions))


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str) -> Checkpoint:
    """Parse a checkpoint text, remembering the latest few (a Checkpoint is immutable):
    a party parses the same checkpoint several times while checking and storing it."""
    return _parse(text)


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> str:
    """Return the checkpoint as a note signed by each signer."""
    return sign_note(checkpoint.text(), *signers)


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[Verifier], origin: str | None = None
) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint note and return the checkpoint and the opened note.

    When origin is given the checkpoint must carry it. Raises FormatError for a malformed
    note or checkpoint or another origin, SignatureError when signatures fail (see
    `ledger.note.open_note`).
    """
    opened = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise FormatError(f"checkpoint origin: got {checkpoint.origin!r}, want {origin!r}")
    return checkpoint, opened
