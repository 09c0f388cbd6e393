"""End-to-end tests: sequencer, witnesses, mirrors and receipts in one federation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from ledger_fixtures import (
    KEYRING,
    LOG_SIGNER,
    PARTIES,
    make_quorum,
    sample_entries,
    seed,
)

from ledger.entries import QueryDecided, encode_entry
from ledger.errors import (
    ForkError,
    FormatError,
    ProofError,
    QuorumError,
    SignatureError,
    StoreError,
    WitnessError,
)
from ledger.mirror import Mirror
from ledger.note import parse_note
from ledger.receipt import Receipt
from ledger.sequencer import Sequencer
from ledger.store import LedgerStore
from ledger.witness import Witness

ENTRIES = sample_entries(200)
QUORUM = make_quorum(k=2)


def witnesses(tmp: Path) -> list[Witness]:
    return [
        Witness(
            f"{p}.example/witness", seed(p + "/witness"), tmp / f"{p}-w.db", log=LOG_SIGNER.verifier
        )
        for p in PARTIES
    ]


def sequencer(path: Path) -> Sequencer:
    return Sequencer(LedgerStore(path), LOG_SIGNER, KEYRING, QUORUM)


def test_batches_are_cosigned_and_receipts_verify(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    ws = witnesses(tmp_path)
    assert [w.verifier.vkey for w in ws] == [w.vkey for w in QUORUM.witnesses]
    for start, end in ((0, 1), (1, 60), (60, 61), (61, 200)):
        batch = seq.append(ENTRIES[start:end])
        assert (batch.first_index, batch.size) == (start, end)
        assert batch.root == seq.store.root
        result = seq.collect(ws)
        assert result.quorum_met and result.failures == {}
        assert result.cosigners == tuple(w.name for w in ws)
        assert result.checkpoint.size == end
    for index in (0, 59, 60, 199):
        text = seq.receipt(index).format()
        checkpoint = Receipt.parse(text).verify(encode_entry(ENTRIES[index]), QUORUM)
        assert checkpoint.size == 200
    report = seq.store.verify(KEYRING, QUORUM)
    assert report.ok and report.cosigned_size == 200


def test_badly_signed_entries_are_refused_before_writing(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    decided = next(e for e in ENTRIES if isinstance(e, QueryDecided))
    forged = dataclasses.replace(decided, reason="changed", decision=decided.decision)
    with pytest.raises(SignatureError, match="QueryDecided: signature by"):
        seq.append([ENTRIES[0], forged])
    assert seq.store.size == 0 and seq.store.latest_checkpoint() is None


def test_a_restarted_sequencer_learns_witness_sizes(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    ws = witnesses(tmp_path)
    seq.append(ENTRIES[:50])
    seq.collect(ws)
    seq.store.close()
    again = sequencer(tmp_path / "log.db")  # knows nothing about the witnesses' sizes
    again.append(ENTRIES[50:80])
    result = again.collect(ws)  # each witness answers 409 with 50; the retry carries a proof
    assert result.quorum_met and result.failures == {}


def test_quorum_survives_one_refusing_witness(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    ws = witnesses(tmp_path)
    seq.append(ENTRIES[:10])

    class Down:
        name = ws[2].name

        def cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
            raise WitnessError("witness unavailable")

    result = seq.collect([ws[0], ws[1], Down()])
    assert result.quorum_met and set(result.failures) == {ws[2].name}
    result = seq.collect([ws[0], Down()])
    assert result.quorum_met  # cosignatures gathered earlier are kept
    with pytest.raises(QuorumError, match="no checkpoint meeting the quorum"):
        sequencer(tmp_path / "other.db").receipt(0)


def test_cosignature_lines_are_checked(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    ws = witnesses(tmp_path)
    batch = seq.append(ENTRIES[:10])
    line = ws[0].cosign(batch.note, 0, [])
    status = seq.add_cosignatures(10, line)
    assert status.cosigners == (ws[0].name,) and not status.quorum_met
    stranger = Witness("x.example/w", seed("x"), tmp_path / "x.db", log=LOG_SIGNER.verifier)
    assert seq.add_cosignatures(10, stranger.cosign(batch.note, 0, [])).cosigners == (ws[0].name,)
    bad = line[:-10] + ("A" if line[-10] != "A" else "B") + line[-9:]
    with pytest.raises(SignatureError, match="does not verify"):
        seq.add_cosignatures(10, bad)
    with pytest.raises(FormatError):
        seq.add_cosignatures(10, "not a signature line\n")


def test_a_forking_sequencer_is_caught_by_witnesses(tmp_path: Path) -> None:
    honest = sequencer(tmp_path / "honest.db")
    forked = sequencer(tmp_path / "forked.db")  # same log key, different history
    ws = witnesses(tmp_path)
    honest.append(ENTRIES[:30])
    honest.collect(ws)
    forked.append([*ENTRIES[:10], *ENTRIES[40:60]])
    result = forked.collect(ws)
    assert not result.quorum_met
    assert all(isinstance(e, ForkError) for e in result.failures.values())
    for w in ws:
        [evidence] = w.fork_evidence()
        assert "two different roots signed for one size" in evidence.reason


def test_mirrors_follow_the_sequencer(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    mirror = Mirror(LedgerStore(tmp_path / "mirror.db"), KEYRING, LOG_SIGNER.verifier)
    for start, end in ((0, 5), (5, 90), (90, 200)):
        batch = seq.append(ENTRIES[start:end])
        checkpoint = mirror.apply(seq.store.entries_bytes(start, end), batch.note)
        assert checkpoint.size == end
    assert mirror.store.root == seq.store.root
    assert mirror.store.latest_checkpoint() == seq.store.latest_checkpoint()
    assert mirror.apply([], seq.store.latest_checkpoint() or "").size == 200
    assert mirror.store.verify(KEYRING, make_quorum(k=1)).ok


def test_a_mirror_refuses_anything_inconsistent(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    mirror = Mirror(LedgerStore(tmp_path / "mirror.db"), KEYRING, LOG_SIGNER.verifier)
    batch = seq.append(ENTRIES[:20])
    data = seq.store.entries_bytes(0, 20)
    with pytest.raises(ProofError, match="want 0 held \\+ 19 received"):
        mirror.apply(data[:19], batch.note)
    swapped = [data[1], data[0], *data[2:]]
    with pytest.raises(ProofError, match="new root"):
        mirror.apply(swapped, batch.note)
    tampered = [*data[:7], data[7][:-1] + bytes([data[7][-1] ^ 1]), *data[8:]]
    with pytest.raises(SignatureError, match="mirror: entry 7:"):
        mirror.apply(tampered, batch.note)
    with pytest.raises(FormatError, match="mirror: entry 3:"):
        mirror.apply([*data[:3], data[3] + b"\x00", *data[4:]], batch.note)
    unsigned = parse_note(batch.note).text + "\n" + "\u2014 nobody AAAAAAA=\n"
    with pytest.raises(SignatureError):
        mirror.apply(data, unsigned)
    assert mirror.store.size == 0
    mirror.apply(data, batch.note)
    assert mirror.store.size == 20


def test_a_mirror_checks_everything_before_writing(tmp_path: Path) -> None:
    seq = sequencer(tmp_path / "log.db")
    mirror = Mirror(LedgerStore(tmp_path / "mirror.db"), KEYRING, LOG_SIGNER.verifier)
    first = seq.append(ENTRIES[:20])
    data = seq.store.entries_bytes(0, 20)
    swapped = [data[1], data[0], *data[2:]]
    with pytest.raises(ProofError, match="new root"):
        mirror.check(swapped, first.note)  # the same checks as apply
    checked = mirror.check(data, first.note)
    assert (checked.checkpoint.size, len(checked.entries), mirror.store.size) == (20, 20, 0)
    assert list(checked.entries) == ENTRIES[:20]
    cosigned = seq.collect(witnesses(tmp_path)).note
    assert mirror.store_batch(checked).size == 20
    second = seq.append(ENTRIES[20:30])
    later = mirror.check(seq.store.entries_bytes(20, 30), second.note)
    mirror.store_batch(later, checkpoints=[cosigned])  # a cosigned note rides along
    assert mirror.store.checkpoint_note(20) == cosigned
    with pytest.raises(StoreError, match="holds 30 entries now"):
        mirror.store_batch(later)
    assert mirror.store.root == seq.store.root
    assert mirror.check([], second.note).entries == ()
