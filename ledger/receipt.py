"""Receipts: C2SP transparency log proofs (c2sp.org/tlog-proof), verifiable offline.

    c2sp.org/tlog-proof@v1
    extra <base64>                   (optional, unauthenticated application data)
    index 73894
    <base64 hash>                    (inclusion proof, leaf's sibling first; zero or more)

    <cosigned checkpoint note, verbatim>

Verification needs only the entry bytes and the federation's `Quorum` (the log key, the
witness keys and k): the checkpoint must meet the quorum, and the entry's leaf hash must be
included at `index` in the tree of the checkpoint's size and root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger._text import b64decode, b64decode_hash, b64encode, parse_decimal
from ledger.checkpoint import Checkpoint
from ledger.errors import FormatError, ProofError
from ledger.merkle import leaf_hash
from ledger.note import parse_note
from ledger.proof import verify_inclusion
from ledger.quorum import Quorum

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63


@dataclass(frozen=True)
class Receipt:
    """An entry's index, its inclusion proof and the cosigned checkpoint they refer to."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if self.index < 0:
            raise FormatError(f"receipt index: got {self.index}, want >= 0")
        if len(self.proof) > MAX_PROOF_HASHES or any(len(h) != 32 for h in self.proof):
            raise FormatError("receipt proof: want at most 63 hashes of 32 bytes")
        if self.extra is not None and not self.extra:
            raise FormatError("receipt extra: got empty extra data, want it omitted")
        parse_note(self.checkpoint)

    def format(self) -> str:
        """Return the receipt in the tlog-proof text format."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + b64encode(self.extra))
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Parse a tlog-proof strictly. Raises FormatError."""
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise FormatError("receipt: got no blank line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise FormatError(f"receipt: got first line {lines[0][:40]!r}, want {HEADER!r}")
        pos = 1
        extra = None
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = b64decode(lines[pos][6:], "receipt extra")
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise FormatError("receipt: got no 'index <n>' line, want one")
        index = parse_decimal(lines[pos][6:], "receipt index")
        hashes = tuple(b64decode_hash(line, "receipt proof line") for line in lines[pos + 1 :])
        return cls(index, hashes, note, extra)

    def verify(self, entry: bytes, quorum: Quorum) -> Checkpoint:
        """Return the checkpoint if it meets the quorum and includes entry at index.

        Raises FormatError, SignatureError, QuorumError or ProofError.
        """
        checkpoint = quorum.verify(self.checkpoint)
        self.verify_included(entry, checkpoint)
        return checkpoint

    def verify_included(self, entry: bytes, checkpoint: Checkpoint) -> None:
        """Check that entry is included at index in `checkpoint`, this receipt's checkpoint
        as the caller already verified it (with `Quorum.verify`): for several receipts
        against one checkpoint, its signatures need checking only once.

        Raises FormatError, or ProofError (another checkpoint, or entry not included).
        """
        if Checkpoint.parse(parse_note(self.checkpoint).text) != checkpoint:
            raise ProofError(f"receipt: got checkpoint {checkpoint.size}, want the receipt's own")
        try:
            verify_inclusion(
                leaf_hash(entry), self.index, checkpoint.size, self.proof, checkpoint.root
            )
        except ProofError as e:
            raise ProofError(f"receipt: {e}") from None


def build_receipt(
    index: int, proof: Sequence[bytes], checkpoint_note: str, extra: bytes | None = None
) -> Receipt:
    """Return a receipt; a convenience for `Receipt(index, tuple(proof), note, extra)`."""
    return Receipt(index, tuple(proof), checkpoint_note, extra)
