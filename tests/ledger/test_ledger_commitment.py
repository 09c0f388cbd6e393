"""Tests for ledger.commitment: hiding, binding result commitments."""

from __future__ import annotations

import hashlib

import pytest

from ledger.commitment import COMMITMENT_TAG, commit_result, verify_commitment
from ledger.errors import CommitmentError

RESULT = b'{"count": 1234, "sum": 98765}'


def test_commitment_is_the_documented_hash() -> None:
    opening = bytes(range(32))
    commitment, got_opening = commit_result(RESULT, opening)
    assert got_opening == opening
    assert commitment == hashlib.sha256(COMMITMENT_TAG + opening + RESULT).digest()


def test_anyone_with_result_and_opening_can_check() -> None:
    commitment, opening = commit_result(RESULT)
    assert len(opening) == 32
    verify_commitment(commitment, RESULT, opening)


def test_fresh_openings_hide_equal_results() -> None:
    first, _ = commit_result(RESULT)
    second, _ = commit_result(RESULT)
    assert first != second


def test_wrong_result_or_opening_is_rejected() -> None:
    commitment, opening = commit_result(RESULT)
    with pytest.raises(CommitmentError, match="do not match"):
        verify_commitment(commitment, RESULT + b" ", opening)
    with pytest.raises(CommitmentError, match="do not match"):
        verify_commitment(commitment, RESULT, bytes(32))
    # Moving bytes between opening and result does not help: the opening has a fixed size.
    with pytest.raises(CommitmentError, match="got 33 bytes"):
        verify_commitment(commitment, RESULT[1:], opening + RESULT[:1])
    with pytest.raises(CommitmentError, match="commitment: got 31 bytes"):
        verify_commitment(commitment[:31], RESULT, opening)
