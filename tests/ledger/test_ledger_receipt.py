"""Tests for ledger.receipt: C2SP tlog-proof receipts verified offline; every tamper fails."""

from __future__ import annotations

import base64

import pytest
from ledger_fixtures import cosigned_note, make_quorum, sample_entries

from ledger.entries import encode_entry
from ledger.errors import FormatError, LedgerError, ProofError, QuorumError
from ledger.merkle import MerkleTree
from ledger.note import Note, parse_note
from ledger.proof import inclusion_proof
from ledger.receipt import HEADER, Receipt, build_receipt

ENTRIES = [encode_entry(e) for e in sample_entries(45)]
TREE = MerkleTree(ENTRIES)
SIZE = 45
NOTE = cosigned_note(SIZE, TREE.root(SIZE), witnesses=2)
QUORUM = make_quorum(k=2)
INDEX = 21


def receipt(index: int = INDEX, extra: bytes | None = None) -> Receipt:
    return build_receipt(index, inclusion_proof(TREE, index, SIZE), NOTE, extra)


def test_format_follows_tlog_proof() -> None:
    text = receipt(extra=b"query q-000003").format()
    lines = text.split("\n")
    assert lines[0] == HEADER == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"query q-000003").decode()
    assert lines[2] == f"index {INDEX}"
    proof = inclusion_proof(TREE, INDEX, SIZE)
    assert lines[3 : 3 + len(proof)] == [base64.b64encode(h).decode() for h in proof]
    assert text.endswith("\n\n" + NOTE)
    assert "extra" not in receipt().format()


@pytest.mark.parametrize("extra", [None, b"x", b"\x00" * 40])
def test_round_trip(extra: bytes | None) -> None:
    r = receipt(extra=extra)
    assert Receipt.parse(r.format()) == r


def test_every_entry_verifies_offline() -> None:
    for index, entry in enumerate(ENTRIES):
        checkpoint = Receipt.parse(receipt(index).format()).verify(entry, QUORUM)
        assert (checkpoint.size, checkpoint.root) == (SIZE, TREE.root(SIZE))


def test_receipts_of_one_checkpoint_share_its_verification() -> None:
    checkpoint = QUORUM.verify(NOTE)
    for index, entry in enumerate(ENTRIES):
        receipt(index).verify_included(entry, checkpoint)
    with pytest.raises(ProofError, match="receipt: "):
        receipt(3).verify_included(ENTRIES[4], checkpoint)
    other = QUORUM.verify(cosigned_note(SIZE - 1, TREE.root(SIZE - 1), witnesses=2))
    with pytest.raises(ProofError, match="got checkpoint 44, want the receipt's own"):
        receipt(3).verify_included(ENTRIES[3], other)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_single_bit_change_to_the_entry_is_rejected() -> None:
    entry = ENTRIES[INDEX]
    r = receipt()
    for bit in range(len(entry) * 8):
        with pytest.raises(ProofError):
            r.verify(_flip(entry, bit), QUORUM)


def test_every_single_bit_change_to_the_proof_is_rejected() -> None:
    r = receipt()
    for i, h in enumerate(r.proof):
        for bit in range(256):
            bad = Receipt(INDEX, (*r.proof[:i], _flip(h, bit), *r.proof[i + 1 :]), NOTE)
            with pytest.raises(ProofError):
                bad.verify(ENTRIES[INDEX], QUORUM)


def test_changed_index_truncated_or_padded_proof_is_rejected() -> None:
    r = receipt()
    for index in {*(INDEX ^ (1 << b) for b in range(7)), INDEX + 1, INDEX - 1, SIZE}:
        with pytest.raises(ProofError):
            Receipt(index, r.proof, NOTE).verify(ENTRIES[INDEX], QUORUM)
    with pytest.raises(ProofError, match="length: got"):
        Receipt(INDEX, r.proof[:-1], NOTE).verify(ENTRIES[INDEX], QUORUM)
    with pytest.raises(ProofError, match="length: got"):
        Receipt(INDEX, (*r.proof, r.proof[0]), NOTE).verify(ENTRIES[INDEX], QUORUM)


def test_every_change_to_the_checkpoint_is_rejected() -> None:
    note = parse_note(NOTE)
    lines = note.text.split("\n")
    other_root = base64.b64encode(TREE.root(SIZE - 1)).decode()
    for text in (
        f"{lines[0]}\n{SIZE + 1}\n{lines[2]}\n",
        f"{lines[0]}\n{SIZE - 1}\n{lines[2]}\n",
        f"{lines[0]}\n{SIZE}\n{other_root}\n",
        f"{lines[0]}x\n{SIZE}\n{lines[2]}\n",
        f"{lines[0]}\n{SIZE}\n{lines[2]}\nextension\n",
    ):
        forged = Note(text, note.signatures).format()
        with pytest.raises(LedgerError):
            Receipt(INDEX, receipt().proof, forged).verify(ENTRIES[INDEX], QUORUM)
    # A checkpoint correctly signed by the log for another size does not fit the proof.
    smaller = cosigned_note(SIZE - 1, TREE.root(SIZE - 1))
    with pytest.raises(ProofError):
        Receipt(INDEX, receipt().proof, smaller).verify(ENTRIES[INDEX], QUORUM)


def test_too_few_cosignatures_are_rejected() -> None:
    one = cosigned_note(SIZE, TREE.root(SIZE), witnesses=1)
    with pytest.raises(QuorumError, match="got 1 cosignatures, want 2 of 3"):
        build_receipt(INDEX, receipt().proof, one).verify(ENTRIES[INDEX], QUORUM)


def test_extra_data_is_not_authenticated() -> None:
    """tlog-proof: applications must not trust `extra`; changing it changes nothing."""
    receipt(extra=b"anything").verify(ENTRIES[INDEX], QUORUM)


TEXT = receipt().format()
PROOF_LINE = TEXT.split("\n")[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TEXT.replace(HEADER, "c2sp.org/tlog-proof@v2"), "want 'c2sp.org/tlog-proof@v1'"),
        (TEXT.replace(f"index {INDEX}", f"index 0{INDEX}"), "leading zeroes"),
        (TEXT.replace(f"index {INDEX}", f"index  {INDEX}"), "leading zeroes"),
        (TEXT.replace(f"index {INDEX}\n", ""), "no 'index <n>' line"),
        (TEXT.replace(PROOF_LINE, PROOF_LINE.rstrip("=")), "base64"),
        (TEXT.replace(PROOF_LINE, base64.b64encode(bytes(31)).decode()), "got 31 bytes"),
        (TEXT.replace(HEADER + "\n", HEADER + "\nextra \n"), "empty extra"),
        (TEXT.replace(HEADER + "\n", HEADER + "\nextra eA\n"), "base64"),
        (TEXT.replace(f"index {INDEX}\n", f"index {INDEX}\nextra eA==\n"), "base64"),
        (TEXT.replace("\n\n", "\n", 1), "no blank line|base64"),
        (TEXT[:-1], "no final newline"),
        (TEXT.replace(PROOF_LINE, "\n".join([PROOF_LINE] * 64)), "at most 63"),
    ],
)
def test_strict_parsing(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Receipt.parse(text)
