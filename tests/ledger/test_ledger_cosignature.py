"""Tests for ledger.cosignature: C2SP cosignature/v1 (Ed25519, timestamped)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_timestamp,
    cosigned_message,
    parse_vkey,
)
from ledger.errors import FormatError, SignatureError
from ledger.note import NoteSigner, NoteVerifier, open_note, parse_note, parse_signature_line

LOG = NoteSigner("jointstat.example/log", bytes(range(32)))
WITNESS = CosignatureSigner("agency-a.example/witness", bytes(range(2, 34)), clock=lambda: 1700)


def test_c2sp_example_framing(vectors: dict[str, Any]) -> None:
    v = vectors["cosignature_v1"]["c2sp_example_decoded"]
    sig = parse_signature_line(v["line"])
    assert len(sig.key_id + sig.signature) == v["decoded"]["total_len"]
    assert sig.key_id.hex() == v["decoded"]["key_id_hex"]
    assert cosignature_timestamp(sig) == v["decoded"]["timestamp"]
    # The checkpoint is the tlog-checkpoint spec example; its body follows the header lines.
    body = v["signed_message_per_spec"].split("\n", 2)[2]
    message = cosigned_message(body, v["decoded"]["timestamp"])
    assert message.decode() == v["signed_message_per_spec"]


def test_self_generated_ed25519_cosignature(vectors: dict[str, Any]) -> None:
    v = vectors["cosignature_v1"]["ed25519_selfgenerated"]
    seed = bytes.fromhex(v["seed_hex_TEST_ONLY"])
    signer = CosignatureSigner(v["cosigner_name"], seed, clock=lambda: v["timestamp"])
    assert signer.verifier.public_key.hex() == v["public_key_hex"]
    assert signer.verifier.vkey == v["vkey_type_0x04"]
    assert cosigned_message(v["checkpoint_text"], v["timestamp"]).decode() == v["signed_message"]
    assert signer.cosign(v["checkpoint_text"]).line() == v["signature_line"]
    verifier = parse_vkey(v["vkey_type_0x04"])
    assert isinstance(verifier, CosignatureVerifier)
    sig = parse_signature_line(v["signature_line"])
    assert verifier.verify(v["checkpoint_text"].encode(), sig.signature)


def _cosigned_note(checkpoint: Checkpoint) -> str:
    note = sign_checkpoint(checkpoint, LOG)
    return parse_note(note).with_signatures(WITNESS.cosign(checkpoint.text())).format()


def test_cosigned_checkpoint_opens_with_log_and_witness_keys() -> None:
    note = _cosigned_note(Checkpoint("jointstat.example/log", 5, bytes(32)))
    opened = open_note(note, [LOG.verifier, WITNESS.verifier])
    assert opened.verified == (LOG.verifier, WITNESS.verifier)
    assert cosignature_timestamp(opened.note.signatures[1]) == 1700


def test_cosignature_over_a_different_root_is_rejected() -> None:
    a = Checkpoint("jointstat.example/log", 5, bytes(32))
    b = Checkpoint("jointstat.example/log", 5, bytes(31) + b"\x01")
    cosig_a = WITNESS.cosign(a.text())
    note_b = parse_note(sign_checkpoint(b, LOG)).with_signatures(cosig_a).format()
    with pytest.raises(SignatureError, match=r"agency-a\.example/witness.*does not verify"):
        open_note(note_b, [LOG.verifier, WITNESS.verifier])


def test_changed_timestamp_is_rejected() -> None:
    checkpoint = Checkpoint("jointstat.example/log", 5, bytes(32))
    sig = WITNESS.cosign(checkpoint.text())
    moved = (cosignature_timestamp(sig) + 1).to_bytes(8, "big") + sig.signature[8:]
    assert not WITNESS.verifier.verify(checkpoint.text().encode(), moved)
    assert not WITNESS.verifier.verify(checkpoint.text().encode(), sig.signature[:-1])
    huge = (1 << 63).to_bytes(8, "big") + sig.signature[8:]
    assert not WITNESS.verifier.verify(checkpoint.text().encode(), huge)


def test_note_key_and_cosignature_key_do_not_mix() -> None:
    """The type byte in the key ID keeps a log signature from passing as a cosignature."""
    seed = bytes(range(2, 34))
    as_log = NoteSigner(WITNESS.name, seed)
    assert as_log.key_id != WITNESS.key_id
    note = sign_checkpoint(Checkpoint("jointstat.example/log", 5, bytes(32)), as_log)
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_note(note, [WITNESS.verifier])


def test_vkey_dispatch_and_rejections() -> None:
    assert isinstance(parse_vkey(LOG.verifier.vkey), NoteVerifier)
    assert parse_vkey(WITNESS.verifier.vkey).key_id == WITNESS.key_id
    name = "x"
    ecdsa = f"{name}+00000000+" + base64.b64encode(b"\x02abc").decode()
    with pytest.raises(FormatError):
        parse_vkey(ecdsa)
    with pytest.raises(FormatError, match="want 0x04"):
        CosignatureVerifier.from_vkey(LOG.verifier.vkey)
    with pytest.raises(FormatError, match="got 71 bytes, want 72"):
        cosignature_timestamp(bytes(71))
    with pytest.raises(FormatError, match="timestamp: got -1"):
        cosigned_message("x\n", -1)
