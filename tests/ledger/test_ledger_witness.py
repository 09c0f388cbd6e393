"""Tests for ledger.witness: consistency-checked cosigning, rollback refusal, fork evidence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ledger_fixtures import LOG_SIGNER, ORIGIN, log_note, seed

from ledger.checkpoint import Checkpoint
from ledger.errors import (
    ConflictError,
    ForkError,
    FormatError,
    SignatureError,
    StoreError,
    WitnessError,
)
from ledger.merkle import MerkleTree
from ledger.note import NoteSigner, open_note, parse_note, parse_signature_line, sign_note
from ledger.proof import consistency_proof
from ledger.witness import (
    Witness,
    format_add_checkpoint,
    parse_add_checkpoint,
    witnessed_checkpoint,
)

HONEST = MerkleTree(b"entry %d" % i for i in range(40))
FORKED = MerkleTree([*(b"entry %d" % i for i in range(10)), *(b"forked %d" % i for i in range(30))])


def note_at(size: int, tree: MerkleTree = HONEST) -> str:
    return log_note(size, tree.root(size))


def make(path: Path, trust_on_first_use: bool = True) -> Witness:
    return Witness(
        "agency-a.example/witness",
        seed("w"),
        path,
        log=LOG_SIGNER.verifier,
        clock=lambda: 42,
        trust_on_first_use=trust_on_first_use,
    )


def cosign(witness: Witness, old: int, new: int, tree: MerkleTree = HONEST) -> str:
    return witness.cosign(note_at(new, tree), old, consistency_proof(tree, old, new))


def test_first_checkpoint_on_trust_then_consistent_growth(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    assert witness.latest() is None
    line = cosign(witness, 0, 5)
    sig = parse_signature_line(line)
    assert sig.name == witness.name and line.endswith("\n")
    note = parse_note(note_at(5)).with_signatures(sig).format()
    assert open_note(note, [witness.verifier]).verified == (witness.verifier,)
    cosign(witness, 5, 17)
    cosign(witness, 17, 17)  # the same checkpoint again: a fresh cosignature, no change
    cosign(witness, 17, 32)
    latest = witness.latest()
    assert latest is not None and (latest.size, latest.root) == (32, HONEST.root(32))
    witness.close()
    assert make(tmp_path / "w.db").latest() == latest  # state is on disk


def test_old_size_must_match_the_latest_cosigned(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    cosign(witness, 0, 8)
    with pytest.raises(ConflictError, match=r"old size: got 5, want 8") as info:
        cosign(witness, 5, 20)
    assert info.value.latest_size == 8
    with pytest.raises(ConflictError) as info:
        witness.cosign(note_at(20), 0, [])
    assert info.value.latest_size == 8
    with pytest.raises(WitnessError, match=r"old size: got 21, want 0\.\.20"):
        witness.cosign(note_at(20), 21, [])


def test_rollback_is_refused(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    cosign(witness, 0, 20)
    with pytest.raises(
        WitnessError, match=r"checkpoint size: got 12, want >= 20 \(rollback refused\)"
    ):
        witness.cosign(note_at(12), 20, [])
    assert witness.fork_evidence() == []


def test_two_roots_for_one_size_are_kept_as_evidence(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    cosign(witness, 0, 20)
    with pytest.raises(ForkError, match="two different roots signed for one size") as info:
        witness.cosign(note_at(20, FORKED), 20, [])
    [evidence] = make(tmp_path / "w.db").fork_evidence()  # survives reopening
    assert evidence.id == info.value.evidence_id
    assert evidence.cosigned_note == note_at(20) and evidence.offered_note == note_at(20, FORKED)
    # Both notes carry the log's valid signature: the evidence convinces anyone.
    for note in (evidence.cosigned_note, evidence.offered_note):
        open_note(note, [LOG_SIGNER.verifier])
    latest = witness.latest()
    assert latest is not None and latest.root == HONEST.root(20)


def test_an_inconsistent_larger_checkpoint_is_refused_and_kept(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    cosign(witness, 0, 20)
    proof = consistency_proof(FORKED, 20, 35)
    with pytest.raises(ForkError, match="35 is not consistent with cosigned 20"):
        witness.cosign(note_at(35, FORKED), 20, proof)
    [evidence] = witness.fork_evidence()
    assert evidence.proof == tuple(proof) and evidence.old_size == 20 and evidence.recorded_at == 42
    latest = witness.latest()
    assert latest is not None and latest.size == 20
    cosign(witness, 20, 35)  # the honest log can still proceed


def test_bad_proofs_and_signatures(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    with pytest.raises(WitnessError, match="from size 0: got 1 hashes, want 0"):
        witness.cosign(note_at(4), 0, [HONEST.root(1)])
    cosign(witness, 0, 4)
    with pytest.raises(WitnessError, match="at equal sizes: got 1 hashes"):
        witness.cosign(note_at(4), 4, [HONEST.root(1)])
    with pytest.raises(WitnessError, match="want <= 63"):
        witness.cosign(note_at(9), 4, [HONEST.root(1)] * 64)
    impostor = NoteSigner(ORIGIN, seed("impostor"))
    forged = Checkpoint(ORIGIN, 9, FORKED.root(9)).text()
    with pytest.raises(SignatureError, match="no signature by a known key"):
        witness.cosign(sign_note(forged, impostor), 4, consistency_proof(FORKED, 4, 9))
    other = NoteSigner("other.example/log", seed("log"))
    with pytest.raises(SignatureError):
        witness.cosign(
            sign_note(Checkpoint("other.example/log", 9, HONEST.root(9)).text(), other), 4, []
        )
    assert witness.fork_evidence() == []
    latest = witness.latest()
    assert latest is not None and latest.size == 4


def test_explicit_starting_point(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db", trust_on_first_use=False)
    with pytest.raises(WitnessError, match="trust on first use is off"):
        cosign(witness, 0, 5)
    witness.start_from(note_at(10))
    witness.start_from(note_at(10))  # idempotent
    with pytest.raises(WitnessError, match="already at size 10"):
        witness.start_from(note_at(12))
    cosign(witness, 10, 30)


def test_add_checkpoint_wire_format(tmp_path: Path) -> None:
    proof = consistency_proof(HONEST, 6, 13)
    body = format_add_checkpoint(6, proof, note_at(13))
    assert body.startswith("old 6\n") and "\n\n" + ORIGIN in body
    assert parse_add_checkpoint(body) == (6, proof, note_at(13))
    witness = make(tmp_path / "w.db")
    witness.cosign(note_at(6), 0, [])
    assert witness.add_checkpoint(body).startswith("\u2014 agency-a.example/witness ")
    with pytest.raises(FormatError, match="leading zeroes"):
        parse_add_checkpoint(body.replace("old 6", "old 06"))
    with pytest.raises(FormatError, match="no 'old <size>' line"):
        parse_add_checkpoint(body.replace("old 6", "size 6"))
    with pytest.raises(FormatError, match="no blank line"):
        parse_add_checkpoint("old 0\n")
    with pytest.raises(FormatError, match="got 31 bytes"):
        parse_add_checkpoint(format_add_checkpoint(6, [bytes(31)], note_at(13)))


def test_two_connections_share_state_atomically(tmp_path: Path) -> None:
    """Two witness objects on one database (e.g. two processes) never roll the state back."""
    one, two = make(tmp_path / "w.db"), make(tmp_path / "w.db")
    cosign(one, 0, 10)
    with pytest.raises(ConflictError) as info:
        cosign(two, 0, 20)
    assert info.value.latest_size == 10
    cosign(two, 10, 25)
    with pytest.raises(WitnessError, match="rollback refused"):
        cosign(one, 10, 15)


def test_the_empty_tree_is_a_checkpoint_like_any_other(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    cosign(witness, 0, 0)
    with pytest.raises(ForkError, match="two different roots"):
        witness.cosign(log_note(0, HONEST.root(1)), 0, [])
    cosign(witness, 0, 9)  # every tree extends the empty one: no proof needed


def test_concurrent_requests_from_threads_are_serialised(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    outcomes: list[str] = []

    def request() -> None:
        try:
            cosign(witness, 0, 10)
            outcomes.append("cosigned")
        except ConflictError as e:
            outcomes.append(f"conflict {e.latest_size}")

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict 10"] * 7 + ["cosigned"]


def test_an_auditor_reads_the_latest_cosigned_checkpoint_read_only(tmp_path: Path) -> None:
    witness = make(tmp_path / "w.db")
    assert witnessed_checkpoint(tmp_path / "w.db", ORIGIN) is None
    cosign(witness, 0, 5)
    cosign(witness, 5, 17)
    assert witness.latest_note() == note_at(17)
    before = (tmp_path / "w.db").read_bytes()
    found = witnessed_checkpoint(tmp_path / "w.db", ORIGIN)
    assert found is not None and found[0].size == 17 and found[1] == note_at(17)
    assert (tmp_path / "w.db").read_bytes() == before
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(StoreError, match="witness database"):
        witnessed_checkpoint(tmp_path / "other.db", ORIGIN)
