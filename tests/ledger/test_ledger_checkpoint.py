"""Tests for ledger.checkpoint: C2SP tlog-checkpoint text, signing, strict parsing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import FormatError, SignatureError
from ledger.merkle import EMPTY_ROOT, MerkleTree
from ledger.note import NoteSigner, NoteVerifier

LOG = NoteSigner("jointstat.example/log", bytes(range(32)))
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_tessera_signed_checkpoints(vectors: dict[str, Any]) -> None:
    """Every Tessera checkpoint verifies, matches MTH, and re-signs byte for byte."""
    section = vectors["tessera_tiled_log_testdata"]
    verifier = NoteVerifier.from_vkey(section["log_vkey"])
    signer = NoteSigner.from_skey(section["log_skey_TEST_ONLY"])
    tree = MerkleTree(e.encode() for e in section["entries_ascii_in_order"])
    assert len(section["checkpoints"]) == 16
    for size_text, note in section["checkpoints"].items():
        checkpoint, opened = open_checkpoint(note, [verifier], origin=section["origin"])
        assert checkpoint.size == int(size_text)
        assert checkpoint.root == tree.root(checkpoint.size)
        assert opened.verified == (verifier,)
        assert sign_checkpoint(checkpoint, signer) == note


def test_go_sumdb_tree_golden(vectors: dict[str, Any]) -> None:
    section = vectors["go_sumdb_tlog_goldens"]
    root = base64.b64decode(section["record_hash_of_hello_world_b64"])
    checkpoint = Checkpoint("go.sum database tree", 123456789012, root)
    assert checkpoint.text() == section["format_tree_golden"]
    assert Checkpoint.parse(section["format_tree_golden"]) == checkpoint


def test_round_trip_with_extension_lines() -> None:
    checkpoint = Checkpoint("jointstat.example/log", 7, ROOT, ("ext one", "ext two"))
    text = checkpoint.text()
    assert text == f"jointstat.example/log\n7\n{ROOT_B64}\next one\next two\n"
    assert Checkpoint.parse(text) == checkpoint
    note = sign_checkpoint(checkpoint, LOG)
    got, _ = open_checkpoint(note, [LOG.verifier], origin="jointstat.example/log")
    assert got == checkpoint


def test_empty_tree_checkpoint() -> None:
    text = Checkpoint("o", 0, EMPTY_ROOT).text()
    assert text.split("\n")[1] == "0"
    assert Checkpoint.parse(text).size == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"o\n05\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n00\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n+5\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n-1\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n 5\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n5 \n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n1_000\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n\u0665\n{ROOT_B64}\n", "leading zeroes"),  # Arabic-Indic five
        (f"o\n{1 << 63}\n{ROOT_B64}\n", "at most 2\\*\\*63-1"),
        (f"o\n{'9' * 40}\n{ROOT_B64}\n", "leading zeroes"),
        (f"o\n5\n{ROOT_B64.rstrip('=')}\n", "base64"),
        (f"o\n5\n{ROOT_B64[:-2]}B=\n", "non-canonical"),
        (f"o\n5\n{base64.b64encode(bytes(31)).decode()}\n", "got 31 bytes, want 32"),
        (f"o\n5\n{base64.b64encode(bytes(33)).decode()}\n", "got 33 bytes, want 32"),
        (f"o\n5\n{ROOT_B64}", "no final newline"),
        (f"o\n5\n{ROOT_B64}\n\n", "empty line"),
        (f"o\n5\n{ROOT_B64}\next\n\nmore\n", "empty line"),
        (f"\n5\n{ROOT_B64}\n", "origin: got an empty line"),
        ("o\n5\n", "got 2 lines, want at least 3"),
    ],
)
def test_strict_parsing(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Checkpoint.parse(text)


def test_invalid_fields_are_rejected_at_construction() -> None:
    with pytest.raises(FormatError, match="got 3 bytes, want 32"):
        Checkpoint("o", 1, b"abc")
    with pytest.raises(FormatError, match="size: got -1"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(FormatError, match="origin: got a control character"):
        Checkpoint("o\nx", 1, ROOT)


def test_open_checkpoint_checks_origin_and_signature() -> None:
    note = sign_checkpoint(Checkpoint("jointstat.example/log", 3, ROOT), LOG)
    with pytest.raises(FormatError, match=r"origin: got 'jointstat\.example/log', want 'other'"):
        open_checkpoint(note, [LOG.verifier], origin="other")
    stranger = NoteSigner("jointstat.example/log", bytes(32))
    with pytest.raises(SignatureError, match="no signature by a known key"):
        open_checkpoint(note, [stranger.verifier])
    tampered = note.replace("\n3\n", "\n4\n")
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(tampered, [LOG.verifier])
