"""Sealed result shares (engine.sealing): only the requesting analyst opens them, and only
for the query and party they were sealed for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import AuthError
from engine.sealing import Shares, new_result_key, open_sealed, seal

SHARES = Shares(x=2, modulus=(1 << 127) - 1, num=(5, 1 << 100), den=(1, 3), flag=(1, 0), sign=(0,))


def test_the_analyst_opens_what_a_party_sealed_to_its_result_key() -> None:
    private, public = new_result_key()
    sealed = seal(public, "q1", "tax", SHARES)
    assert sealed.party == "tax"
    assert open_sealed(private, "q1", sealed) == SHARES


def test_the_ciphertext_hides_the_shares() -> None:
    _, public = new_result_key()
    sealed = seal(public, "q1", "tax", SHARES)
    assert SHARES.to_bytes() not in sealed.ciphertext
    # A fresh ephemeral key per seal: sealing the same shares twice gives other bytes.
    assert seal(public, "q1", "tax", SHARES).ciphertext != sealed.ciphertext


@pytest.mark.parametrize("change", ["other key", "other query", "other party", "flipped bit"])
def test_anything_else_does_not_open(change: str) -> None:
    private, public = new_result_key()
    sealed = seal(public, "q1", "tax", SHARES)
    query = "q1"
    if change == "other key":
        private, _ = new_result_key()
    elif change == "other query":
        query = "q2"  # shares of one query replayed as another's
    elif change == "other party":
        sealed = replace(sealed, party="social")  # one party's shares passed off as another's
    else:
        flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
        sealed = replace(sealed, ciphertext=flipped)
    with pytest.raises(AuthError, match="do not decrypt"):
        open_sealed(private, query, sealed)


def test_shares_round_trip_through_their_bytes() -> None:
    assert Shares.from_bytes(SHARES.to_bytes()) == SHARES
