"""Hiding and binding commitments to query results.

    commitment = SHA-256("jointstat-ledger-result-commitment/v1\\n" || opening || result)

with a fresh 32-byte random opening. Anyone holding the result and the opening can check the
commitment; without the opening, the 256 random bits hide the result (SHA-256 modelled as a
random oracle), and collision resistance binds the committer to one result. The opening has a
fixed length, so the split between opening and result is unambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ledger.errors import CommitmentError

COMMITMENT_TAG = b"jointstat-ledger-result-commitment/v1\n"
OPENING_SIZE = 32


def commit_result(result: bytes, opening: bytes | None = None) -> tuple[bytes, bytes]:
    """Return (commitment, opening) for result bytes.

    A random opening is drawn unless one is given (tests, re-computation); a given opening
    must be 32 bytes and must never be reused for another result. Raises CommitmentError.
    """
    if opening is None:
        opening = secrets.token_bytes(OPENING_SIZE)
    if len(opening) != OPENING_SIZE:
        raise CommitmentError(f"commitment opening: got {len(opening)} bytes, want 32")
    return hashlib.sha256(COMMITMENT_TAG + opening + result).digest(), opening


def verify_commitment(commitment: bytes, result: bytes, opening: bytes) -> None:
    """Check that (result, opening) opens commitment. Raises CommitmentError."""
    if len(commitment) != 32:
        raise CommitmentError(f"commitment: got {len(commitment)} bytes, want 32")
    expected, _ = commit_result(result, opening)
    if not hmac.compare_digest(expected, commitment):
        raise CommitmentError("commitment: result and opening do not match the commitment")
