"""Tests for ledger.note: C2SP signed notes, Ed25519 keys, strict parsing."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.cosignature import cosignature_timestamp
from ledger.errors import FormatError, SignatureError
from ledger.note import (
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    check_key_name,
    key_id,
    open_note,
    parse_note,
    parse_signature_line,
    sign_note,
)

ALICE = NoteSigner("alice.example/log", bytes(range(32)))
BOB = NoteSigner("bob.example/log", bytes(range(1, 33)))


# --- Upstream vectors -------------------------------------------------------------------


def test_go_note_package_example(vectors: dict[str, Any]) -> None:
    v = vectors["signed_notes"][0]
    verifier = NoteVerifier.from_vkey(v["vkey"])
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.vkey == v["vkey"]
    opened = open_note(v["note"], [verifier])
    assert opened.verified == (verifier,)
    signer = NoteSigner.from_skey(v["skey_TEST_ONLY"])
    assert signer.key_id == verifier.key_id
    assert sign_note(opened.text, signer) == v["note"]  # Ed25519 is deterministic


def test_c2sp_signed_note_example(vectors: dict[str, Any]) -> None:
    v = vectors["signed_notes"][1]
    opened = open_note(v["note"], [NoteVerifier.from_vkey(v["vkey"])])
    assert opened.text == "This is an example message.\n"


def test_sumdb_production_tree_head(vectors: dict[str, Any]) -> None:
    v = vectors["signed_notes"][2]
    opened = open_note(v["note"], [NoteVerifier.from_vkey(v["vkey"])])
    assert opened.text.split("\n")[0] == "go.sum database tree"


class EcdsaVerifier:
    """Signature type 0x02 (ECDSA P-256, key ID = SHA-256(DER SPKI)[:4]), test-only.

    Shows that the note layer accepts other verifiers through the Verifier protocol.
    """

    def __init__(self, vkey: str) -> None:
        name, kid_hex, key_b64 = vkey.split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 0x02
        self._spki = raw[1:]
        key = serialization.load_der_public_key(self._spki)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        self._key = key
        self.name = name
        self.key_id = hashlib.sha256(self._spki).digest()[:4]
        assert self.key_id.hex() == kid_hex

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def test_witnessed_production_checkpoint_with_ecdsa_log_key(vectors: dict[str, Any]) -> None:
    v = vectors["signed_notes"][3]
    log = EcdsaVerifier(v["log_vkey_type_0x02_ecdsa"])
    opened = open_note(v["note"], [log])
    assert opened.verified == (log,)
    # The witnesses' keys are not published: check the cosignature framing only.
    witnesses = {s.name: s for s in opened.note.signatures[1:]}
    small = witnesses["ArmoredWitness-small-breeze"]
    autumn = witnesses["ArmoredWitness-autumn-wood"]
    assert (small.key_id.hex(), cosignature_timestamp(small)) == ("9d1ab951", 1738713836)
    assert (autumn.key_id.hex(), cosignature_timestamp(autumn)) == ("a996f95d", 1738713829)
    assert len(small.key_id + small.signature) == 76


# --- Round trips and the opening rules --------------------------------------------------


def test_sign_parse_format_round_trip() -> None:
    text = "line one\n\nline three after an empty line\n"
    signed = sign_note(text, ALICE, BOB)
    note = parse_note(signed)
    assert note.text == text
    assert [s.name for s in note.signatures] == [ALICE.name, BOB.name]
    assert note.format() == signed
    assert parse_note(signed.encode()) == note
    opened = open_note(signed, [BOB.verifier])
    assert opened.verified == (BOB.verifier,)


def test_unknown_signers_only_is_rejected() -> None:
    signed = sign_note("hello\n", ALICE)
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(signed, [BOB.verifier])


def test_signature_by_unknown_key_sharing_the_name_is_ignored() -> None:
    impostor = NoteSigner(ALICE.name, bytes(32))  # same name, other key, other key ID
    signed = sign_note("hello\n", impostor, ALICE)
    assert open_note(signed, [ALICE.verifier]).verified == (ALICE.verifier,)
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(sign_note("hello\n", impostor), [ALICE.verifier])


def test_known_signer_whose_signature_fails_rejects_the_note() -> None:
    good = sign_note("hello\n", ALICE, BOB)
    forged = NoteSignature(BOB.name, BOB.key_id, bytes(64))
    note = parse_note(good)
    bad = Note(note.text, (note.signatures[0], forged)).format()
    with pytest.raises(SignatureError, match=f"by {BOB.name}\\+{BOB.key_id.hex()}"):
        open_note(bad, [ALICE.verifier, BOB.verifier])
    # Signature over a different text by a known key: rejected too.
    other = parse_note(sign_note("other\n", BOB)).signatures[0]
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(Note("hello\n", (other,)).format(), [BOB.verifier])


def test_two_signatures_by_one_known_key_are_rejected() -> None:
    sig = parse_note(sign_note("hello\n", ALICE)).signatures[0]
    with pytest.raises(FormatError, match="two signatures by"):
        open_note(Note("hello\n", (sig, sig)).format(), [ALICE.verifier])


def test_duplicate_verifiers_are_rejected() -> None:
    with pytest.raises(FormatError, match="twice"):
        open_note(sign_note("x\n", ALICE), [ALICE.verifier, ALICE.verifier])


def test_with_signatures_merges_by_key() -> None:
    note = parse_note(sign_note("x\n", ALICE))
    again = parse_note(sign_note("x\n", ALICE)).signatures[0]
    merged = note.with_signatures(again, parse_note(sign_note("x\n", BOB)).signatures[0])
    assert [s.name for s in merged.signatures] == [ALICE.name, BOB.name]


# --- Strict parsing ---------------------------------------------------------------------

SIGNED = sign_note("hello\n", ALICE)
SIG_B64 = SIGNED.split(" ")[-1].strip()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (SIGNED[:-1], "no final newline"),
        ("hello\n— " + SIGNED.split("— ")[1], "no blank line"),
        ("hello\n\n", "got 0 signatures"),
        ("hel\tlo\n" + SIGNED[6:], "control character U\\+0009"),
        ("hello\r\n" + SIGNED[6:], "control character U\\+000D"),
        (SIGNED.replace("— ", "- "), "no leading em dash"),
        (SIGNED.replace(ALICE.name, "alice example"), "invalid base64"),
        (SIGNED.replace(ALICE.name, "alice+x"), "'\\+'"),
        (SIGNED.replace(f"{ALICE.name} ", " "), "empty name"),
        (SIGNED.replace(SIG_B64, SIG_B64.rstrip("=")), "base64"),
        (SIGNED.replace(SIG_B64, SIG_B64 + "=="), "base64"),
        (SIGNED.replace(SIG_B64, SIG_B64[:-2] + "x="), "non-canonical base64"),
        (SIGNED.replace(SIG_B64, base64.b64encode(b"abcd").decode()), "want a key ID and more"),
        (SIGNED + "\n", "got 0 signatures"),
        (SIGNED + SIGNED.split("\n\n")[1] * MAX_SIGNATURES, "at most 64"),
    ],
)
def test_malformed_notes_are_rejected(data: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_note(data)


def test_non_canonical_padding_bits_are_rejected() -> None:
    raw = base64.b64decode(SIG_B64)
    assert len(raw) % 3 == 2  # 68 bytes: one padding character, two spare bits
    last = SIG_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) ^ 1]  # same decoded bytes, one padding bit set
    assert base64.b64decode(SIG_B64[:-2] + twin + "=") == raw
    with pytest.raises(FormatError, match="non-canonical"):
        parse_note(SIGNED.replace(SIG_B64, SIG_B64[:-2] + twin + "="))


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(FormatError, match="invalid UTF-8"):
        parse_note(b"\xff\n\n" + SIGNED.split("\n\n")[1].encode())


def test_signing_rejects_text_a_note_cannot_carry() -> None:
    with pytest.raises(FormatError, match="no final newline"):
        sign_note("hello", ALICE)
    with pytest.raises(FormatError, match="control character"):
        sign_note("a\x00b\n", ALICE)


def test_signature_line_parser() -> None:
    sig = parse_signature_line(SIGNED.split("\n\n")[1])
    assert (sig.name, sig.key_id) == (ALICE.name, ALICE.key_id)
    assert sig.line() == SIGNED.split("\n\n")[1]


def test_parsing_the_same_note_again_gives_the_same_note() -> None:
    assert parse_note(SIGNED) is parse_note(SIGNED)  # remembered; a Note is immutable
    bad = SIGNED.replace("\n\n", "\n")
    for _ in range(2):  # a failure is never remembered as a success
        with pytest.raises(FormatError, match="no blank line"):
            parse_note(bad)


# --- Keys -------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=12))
def test_key_names_are_checked_as_the_spec_says(name: str) -> None:
    allowed = "+" not in name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
    if allowed:
        check_key_name(name)
    else:
        with pytest.raises(FormatError, match="key name"):
            check_key_name(name)


@pytest.mark.parametrize("name", ["a b", "a\u00a0b", "a\u2028b", "a+b", "a\x1fb", "\u3000"])
def test_key_names_with_any_space_plus_or_control_are_rejected(name: str) -> None:
    with pytest.raises(FormatError, match="key name"):
        check_key_name(name)


def test_a_verifier_checks_each_valid_signature_once_and_every_invalid_one() -> None:
    verifier = ALICE.verifier
    sig = parse_note(SIGNED).signatures[0].signature
    text = parse_note(SIGNED).text.encode()
    assert verifier.verify(text, sig) and verifier.verify(text, sig)
    assert not verifier.verify(text, sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not verifier.verify(text + b"x", sig)
    # A shorter signature whose bytes, with the text, spell a remembered pair is refused.
    assert not verifier.verify(text[1:], sig + text[:1])
    assert not verifier.verify(text, sig[:63])


def test_key_id_follows_the_spec() -> None:
    pub = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key().public_bytes_raw()
    want = hashlib.sha256(ALICE.name.encode() + b"\n\x01" + pub).digest()[:4]
    assert key_id(ALICE.name, 0x01, pub) == want == ALICE.key_id


def test_vkey_round_trip_and_rejections() -> None:
    vkey = ALICE.verifier.vkey
    assert NoteVerifier.from_vkey(vkey).key_id == ALICE.key_id
    name, kid, key = vkey.split("+", 2)
    with pytest.raises(FormatError, match="does not match"):
        NoteVerifier.from_vkey(f"{name}+00000000+{key}")
    with pytest.raises(FormatError, match="3"):
        NoteVerifier.from_vkey(f"{name}+{kid}")
    with pytest.raises(FormatError, match="want 0x01"):
        cosig_key = base64.b64encode(b"\x04" + base64.b64decode(key)[1:]).decode()
        NoteVerifier.from_vkey(
            f"{name}+{key_id(name, 4, base64.b64decode(key)[1:]).hex()}+{cosig_key}"
        )
    with pytest.raises(FormatError, match="does not match"):
        NoteSigner.from_skey(
            f"PRIVATE+KEY+{name}+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode()
        )
    with pytest.raises(FormatError, match="got 5 bytes, want 32"):
        NoteVerifier(name, b"short")
