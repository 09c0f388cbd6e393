"""Errors raised by the ledger package.

Every error is a `LedgerError`; the hierarchy is drawn in the `ledger` package docstring.
Messages follow the house style "what: got X, want Y" and carry sizes, indices, names and
hash prefixes only, never entry contents.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error raised by `ledger`."""


class FormatError(LedgerError):
    """Bytes or text are malformed or not in canonical form (notes, entries, receipts)."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify, or cannot be built."""


class SignatureError(LedgerError):
    """A signature does not verify, or no signature from a trusted key is present."""


class QuorumError(SignatureError):
    """Fewer than the required number of witnesses cosigned a checkpoint."""


class WitnessError(LedgerError):
    """A witness refuses to cosign a checkpoint."""


class ConflictError(WitnessError):
    """The old size given to a witness is not the size it last cosigned.

    `latest_size` is the size of the witness's latest cosigned checkpoint, so the caller can
    retry with a consistency proof from that size (C2SP tlog-witness "409 Conflict").
    """

    def __init__(self, message: str, latest_size: int) -> None:
        super().__init__(message)
        self.latest_size = latest_size


class ForkError(WitnessError):
    """A validly signed checkpoint is inconsistent with the one the witness last cosigned.

    The witness has stored both signed checkpoints (and the proof offered) as evidence;
    `evidence_id` is the row id of that record in the witness database.
    """

    def __init__(self, message: str, evidence_id: int) -> None:
        super().__init__(message)
        self.evidence_id = evidence_id


class CommitmentError(LedgerError):
    """A result and opening do not match a result commitment."""


class StoreError(LedgerError):
    """The SQLite store cannot serve a request (index out of range, foreign schema, ...)."""


def short_hex(data: bytes) -> str:
    """Return the first 8 hex digits of a hash, for error messages."""
    return data[:4].hex()


def differing_hex(got: bytes, want: bytes) -> tuple[str, str]:
    """Return hex prefixes of two hashes that tell them apart, for "got X, want Y" messages.

    Each is at least 8 digits long and runs 4 digits past the first digit that differs
    (the whole hashes when one is a prefix of the other or they are equal).
    """
    a, b = got.hex(), want.hex()
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if first is None:
        return a, b
    length = max(8, first + 5)
    return a[:length], b[:length]
