"""Signed requests: canonical bytes, signature, freshness and parsing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine import pki
from engine.config import load_federation
from engine.errors import AuthError, CapacityError
from engine.federation_init import create_federation
from engine.request import DOMAIN, new_request, parse, sign, verify
from engine.sealing import Shares, new_result_key, open_sealed, seal


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fed")
    create_federation(root, ["a", "b", "c"], ["alice"], name="f", base_port=21000)
    return root


def test_signed_request_verifies_and_round_trips(fed: Path) -> None:
    federation = load_federation(fed / "federation.toml")
    key = pki.load_signing_key(fed / "analysts" / "alice" / "signing.key")
    request = new_request("alice", "f", "SELECT 1", new_result_key()[1], now=1000)
    signed = sign(request, key)
    assert parse(signed.body) == request
    assert verify(signed, federation, peer_analyst="alice", now=1010) == request
    assert len(signed.query_id) == 32


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda r: dataclasses.replace(r, federation="other"), "federation"),
        (lambda r: dataclasses.replace(r, analyst="mallory"), "registered"),
        (lambda r: dataclasses.replace(r, issued_at=0), "issued_at"),
        (lambda r: dataclasses.replace(r, issued_at=10_000), "issued_at"),
    ],
)
def test_bad_requests_are_refused(fed: Path, change: object, needle: str) -> None:
    federation = load_federation(fed / "federation.toml")
    key = pki.load_signing_key(fed / "analysts" / "alice" / "signing.key")
    request = change(new_request("alice", "f", "SELECT 1", new_result_key()[1], now=1000))  # type: ignore[operator]
    with pytest.raises(AuthError, match=needle):
        verify(sign(request, key), federation, peer_analyst=None, now=1000)


def test_non_canonical_and_oversized_bytes_are_refused() -> None:
    request = new_request("alice", "f", "SELECT 1", new_result_key()[1], now=1)
    body = request.to_bytes()
    with pytest.raises(AuthError, match="non-canonical"):
        parse(body.replace(b'{"analyst"', b'{ "analyst"'))
    with pytest.raises(AuthError, match="format"):
        parse(body[len(DOMAIN) :])
    with pytest.raises(CapacityError):
        parse(DOMAIN + b" " * 100_000)


def test_sealed_shares_open_only_with_the_right_key_and_query() -> None:
    private, public = new_result_key()
    shares = Shares(2, 101, (1, 2), (3, 4), (5, 6))
    sealed = seal(public, "q1", "tax", shares)
    assert open_sealed(private, "q1", sealed) == shares
    with pytest.raises(AuthError):
        open_sealed(private, "q2", sealed)
    with pytest.raises(AuthError):
        open_sealed(new_result_key()[0], "q1", sealed)
    with pytest.raises(AuthError):
        open_sealed(private, "q1", dataclasses.replace(sealed, party="social"))
