"""Tests for ledger.entries and ledger.keyring: canonical encoding, signatures, roles."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_fixtures import ANALYST, KEYRING, KEYS, PARTIES, dataset_entry, query_entries

from ledger.entries import (
    ENTRY_TAG,
    MAX_REASON_BYTES,
    MAX_REQUEST_BYTES,
    SIGNED_TAG,
    AuthorSignature,
    DatasetRegistered,
    Decision,
    Entry,
    QueryAborted,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    decode_entry,
    encode_entry,
    request_hash,
    sign_entry,
    signed_message,
    verify_entry,
)
from ledger.errors import FormatError, LedgerError, SignatureError
from ledger.keyring import KeyRing, Role

ALL_KINDS: list[Entry] = [dataset_entry("census-2024"), *query_entries(0), *query_entries(3)]


def test_fixture_covers_every_kind() -> None:
    kinds = {type(e) for e in ALL_KINDS}
    assert kinds == {DatasetRegistered, QueryRequested, QueryDecided, ResultCommitted, QueryAborted}
    assert any(isinstance(e, QueryDecided) and e.decision is Decision.REFUSED for e in ALL_KINDS)


@pytest.mark.parametrize("entry", ALL_KINDS, ids=lambda e: type(e).__name__)
def test_round_trip_and_verify(entry: Entry) -> None:
    data = encode_entry(entry)
    assert data.startswith(ENTRY_TAG + bytes([entry.KIND]))
    assert decode_entry(data) == entry
    assert encode_entry(decode_entry(data)) == data
    verify_entry(entry, KEYRING)


@pytest.mark.parametrize("entry", ALL_KINDS, ids=lambda e: type(e).__name__)
def test_every_single_bit_change_is_detected(entry: Entry) -> None:
    data = encode_entry(entry)
    for bit in range(len(data) * 8):
        tampered = bytearray(data)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(LedgerError):
            verify_entry(decode_entry(bytes(tampered)), KEYRING)


def test_signed_messages_are_domain_separated() -> None:
    decided = next(e for e in ALL_KINDS if isinstance(e, QueryDecided))
    message = signed_message(decided)
    assert message.startswith(SIGNED_TAG + bytes([QueryDecided.KIND]))
    assert not encode_entry(decided).startswith(SIGNED_TAG)
    # An approval signature does not carry over to an abort with the same fields.
    abort = QueryAborted(decided.query_id, decided.party, decided.request_hash, "x")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_entry(dataclasses.replace(abort, signature=decided.signature), KEYRING)


def test_request_signature_covers_exactly_the_request_bytes() -> None:
    req = next(e for e in ALL_KINDS if isinstance(e, QueryRequested))
    assert signed_message(req, ANALYST) == req.request
    assert req.request_hash == request_hash(req.request)
    KEYS[ANALYST].public_key().verify(req.signature, req.request)
    # The coordinator's signature covers the whole entry body, query id included.
    message = signed_message(req, req.coordinator)
    assert message.startswith(SIGNED_TAG + bytes([QueryRequested.KIND]))
    KEYS[req.coordinator].public_key().verify(req.coordinator_signature, message)
    renamed = dataclasses.replace(req, query_id="q-other")
    with pytest.raises(SignatureError, match=f"signature by '{req.coordinator}' does not verify"):
        verify_entry(renamed, KEYRING)
    with pytest.raises(FormatError, match="want 'analyst-1' or"):
        sign_entry(req, "agency-x", KEYS[PARTIES[0]])
    with pytest.raises(FormatError, match="analyst as coordinator"):
        QueryRequested("q", ANALYST, b"", ANALYST)


def test_roles_and_unknown_authors() -> None:
    entry = DatasetRegistered("d", ANALYST, bytes(32), bytes(32))
    signed = sign_entry(entry, ANALYST, KEYS[ANALYST])
    with pytest.raises(SignatureError, match="role analyst, want party"):
        verify_entry(signed, KEYRING)
    stranger = sign_entry(
        DatasetRegistered("d", "nobody", bytes(32), bytes(32)), "nobody", KEYS[PARTIES[0]]
    )
    with pytest.raises(SignatureError, match="unknown author 'nobody'"):
        verify_entry(stranger, KEYRING)
    forged = sign_entry(
        DatasetRegistered("d", PARTIES[1], bytes(32), bytes(32)), PARTIES[1], KEYS[PARTIES[0]]
    )
    with pytest.raises(SignatureError, match="signature by 'agency-b' does not verify"):
        verify_entry(forged, KEYRING)


def test_result_needs_every_signature_to_verify() -> None:
    result = next(e for e in ALL_KINDS if isinstance(e, ResultCommitted))
    assert [s.author for s in result.signatures] == sorted(PARTIES)
    bad = dataclasses.replace(
        result, signatures=(*result.signatures[:2], AuthorSignature(PARTIES[2], bytes(64)))
    )
    with pytest.raises(SignatureError, match="bureau-c"):
        verify_entry(bad, KEYRING)
    resigned = sign_entry(result, PARTIES[0], KEYS[PARTIES[0]])
    assert len(resigned.signatures) == 3


def test_unsigned_entries_cannot_be_encoded_or_verified() -> None:
    entry = DatasetRegistered("d", PARTIES[0], bytes(32), bytes(32))
    with pytest.raises(FormatError, match=r"signature by 'agency-a': got 0 bytes, want 64"):
        encode_entry(entry)
    with pytest.raises(FormatError, match="no signature"):
        verify_entry(entry, KEYRING)
    result = ResultCommitted("q", bytes(32), bytes(32))
    with pytest.raises(FormatError, match="got 0, want at least 1"):
        encode_entry(result)
    with pytest.raises(FormatError, match="no signatures"):
        verify_entry(result, KEYRING)


def test_sign_entry_checks_the_author() -> None:
    entry = QueryDecided("q", PARTIES[0], bytes(32), Decision.APPROVED)
    with pytest.raises(FormatError, match="got 'agency-b', want 'agency-a'"):
        sign_entry(entry, PARTIES[1], KEYS[PARTIES[1]])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DatasetRegistered("", "a", bytes(32), bytes(32)), "got 0 bytes, want 1..255"),
        (lambda: DatasetRegistered("x" * 256, "a", bytes(32), bytes(32)), "got 256 bytes"),
        (lambda: DatasetRegistered("a\nb", "a", bytes(32), bytes(32)), "control"),
        (lambda: DatasetRegistered("d", "a", bytes(31), bytes(32)), "schema hash: got 31"),
        (lambda: DatasetRegistered("d", "a", bytes(32), bytes(32), b"x"), "got 1 bytes, want 64"),
        (lambda: QueryRequested("q", "a", bytes(MAX_REQUEST_BYTES + 1), "c"), "want <= 1048576"),
        (lambda: QueryDecided("q", "a", bytes(32), Decision.REFUSED), "empty reason"),
        (lambda: QueryDecided("q", "a", bytes(32), 1), "want a Decision"),  # type: ignore[arg-type]
        (lambda: QueryDecided("q", "a", bytes(32), Decision.REFUSED, "r" * 4097), "at most 4096"),
        (lambda: QueryDecided("q", "a", bytes(32), Decision.REFUSED, "a\x00"), "control"),
        (lambda: QueryAborted("q", "a", bytes(32), ""), "empty reason"),
        (
            lambda: ResultCommitted(
                "q",
                bytes(32),
                bytes(32),
                (AuthorSignature("b", bytes(64)), AuthorSignature("a", bytes(64))),
            ),
            "unsorted or repeated",
        ),
        (
            lambda: ResultCommitted(
                "q",
                bytes(32),
                bytes(32),
                (AuthorSignature("a", bytes(64)), AuthorSignature("a", bytes(64))),
            ),
            "unsorted or repeated",
        ),
    ],
)
def test_invalid_fields_are_rejected(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(FormatError, match=message):
        build()


def _decided_bytes() -> bytes:
    return encode_entry(next(e for e in ALL_KINDS if isinstance(e, QueryDecided)))


def test_non_canonical_encodings_are_rejected() -> None:
    data = _decided_bytes()
    with pytest.raises(FormatError, match="1 trailing bytes"):
        decode_entry(data + b"\x00")
    with pytest.raises(FormatError, match="bytes left, want 64"):
        decode_entry(data[:-1])
    with pytest.raises(FormatError, match="unknown tag or version"):
        decode_entry(data.replace(b"/v1\n", b"/v2\n", 1))
    with pytest.raises(FormatError, match="entry kind: got 9"):
        decode_entry(ENTRY_TAG + b"\x09" + data[len(ENTRY_TAG) + 1 :])
    # The decision byte sits right after query id, party and request hash.
    pos = len(ENTRY_TAG) + 1
    pos += 1 + data[pos]
    pos += 1 + data[pos]
    pos += 32
    assert data[pos] in (1, 2)
    with pytest.raises(FormatError, match="decision: got 3"):
        decode_entry(data[:pos] + b"\x03" + data[pos + 1 :])
    # A reason length beyond the limit.
    with pytest.raises(FormatError, match="at most 4096"):
        decode_entry(data[: pos + 1] + (MAX_REASON_BYTES + 1).to_bytes(2, "big") + data[pos + 3 :])
    # Invalid UTF-8 in the query id.
    bad = bytearray(data)
    bad[len(ENTRY_TAG) + 2] = 0xFF
    with pytest.raises(FormatError, match="invalid UTF-8"):
        decode_entry(bytes(bad))
    with pytest.raises(FormatError, match="unknown tag"):
        decode_entry(b"")


def test_result_with_unsorted_signers_on_the_wire_is_rejected() -> None:
    result = next(e for e in ALL_KINDS if isinstance(e, ResultCommitted))
    data = encode_entry(result)
    tail = 1 + sum(1 + len(s.author) + 64 for s in result.signatures)
    head, sigs = data[:-tail], data[-tail:]
    # Swap the first two (name, signature) records.
    a_len = 1 + len(result.signatures[0].author) + 64
    b_len = 1 + len(result.signatures[1].author) + 64
    swapped = (
        sigs[:1]
        + sigs[1 + a_len : 1 + a_len + b_len]
        + sigs[1 : 1 + a_len]
        + sigs[1 + a_len + b_len :]
    )
    with pytest.raises(FormatError, match="unsorted or repeated"):
        decode_entry(head + swapped)
    with pytest.raises(FormatError, match="got 0, want at least 1"):
        decode_entry(head + b"\x00")


names = st.text(
    alphabet=st.characters(
        min_codepoint=0x20,
        max_codepoint=0x2FFF,
        exclude_categories=("Cs",),
        exclude_characters="\x7f",
    ),
    min_size=1,
    max_size=40,
)
reasons = st.text(
    alphabet=st.characters(
        min_codepoint=0x20,
        max_codepoint=0x2FFF,
        exclude_categories=("Cs",),
        exclude_characters="\x7f",
    ),
    max_size=60,
)
hashes = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.integers(1, 5))
    if kind == 1:
        return DatasetRegistered(draw(names), draw(names), draw(hashes), draw(hashes), draw(sigs))
    if kind == 2:
        analyst, coordinator = draw(st.lists(names, min_size=2, max_size=2, unique=True))
        request = draw(st.binary(max_size=300))
        return QueryRequested(draw(names), analyst, request, coordinator, draw(sigs), draw(sigs))
    if kind == 3:
        decision = draw(st.sampled_from(Decision))
        reason = draw(reasons)
        if decision is Decision.REFUSED and not reason:
            reason = "r"
        return QueryDecided(draw(names), draw(names), draw(hashes), decision, reason, draw(sigs))
    if kind == 4:
        signers = sorted(set(draw(st.lists(names, min_size=1, max_size=5))), key=str.encode)
        return ResultCommitted(
            draw(names),
            draw(hashes),
            draw(hashes),
            tuple(AuthorSignature(n, draw(sigs)) for n in signers),
        )
    return QueryAborted(
        draw(names), draw(names), draw(hashes), draw(reasons.filter(bool)), draw(sigs)
    )


@settings(max_examples=300, deadline=None)
@given(entries())
def test_any_entry_round_trips(entry: Entry) -> None:
    data = encode_entry(entry)
    assert decode_entry(data) == entry


@settings(max_examples=300, deadline=None)
@given(entries(), st.data())
def test_any_truncation_or_extension_is_rejected(entry: Entry, data: st.DataObject) -> None:
    raw = encode_entry(entry)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(FormatError):
        decode_entry(raw[:cut])
    with pytest.raises(FormatError):
        decode_entry(raw + data.draw(st.binary(min_size=1, max_size=4)))


def test_keyring_rejects_bad_input() -> None:
    ring = KeyRing()
    ring.add("a", KEYS[PARTIES[0]].public_key(), Role.PARTY)
    assert "a" in ring and len(ring) == 1 and list(ring) == ["a"]
    assert ring.role("a") is Role.PARTY and ring.role("b") is None
    with pytest.raises(FormatError, match="'a' twice"):
        ring.add("a", KEYS[PARTIES[1]].public_key(), Role.PARTY)
    with pytest.raises(FormatError, match="got 31 bytes, want 32"):
        ring.add("b", bytes(31), Role.PARTY)
    with pytest.raises(FormatError, match=r"want 1\.\.255"):
        ring.add("", bytes(32), Role.PARTY)
    assert ring.public_key("a") == KEYRING.public_key(PARTIES[0])
    with pytest.raises(SignatureError, match="unknown author"):
        ring.public_key("zz")
