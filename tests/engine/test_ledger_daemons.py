"""The ledger in the daemons: every query anchored, mirrors identical, receipts, faults.

Uses the shared three-party federation (real daemons, real SQLite ledgers on disk). The
fault tests kill and restart daemons and leave the federation running.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from engine import pki
from engine.anchor import keys
from engine.anchor.bundle import verify_bundle
from engine.anchor.party_ledger import CosignOutcome, PartyLedger
from engine.anchor.queries import QueryAnchor, RequestToAnchor
from engine.anchor.writer import Anchored, LedgerWriter
from engine.config import PartyConfig, load_federation, load_party
from engine.errors import AuthError, EngineError
from engine.federation_init import create_federation
from engine.launch import free_port_block
from engine.rpc import jointstat_pb2 as pb
from engine.rpc import jointstat_pb2_grpc as pb_grpc
from engine.rpc.peers import client_credentials
from ledger import (
    Decision,
    Entry,
    LedgerError,
    LedgerStore,
    NoteSignature,
    NoteSigner,
    QueryDecided,
    QueryRequested,
    ResultCommitted,
    decode_entry,
    encode_entry,
    parse_note,
    sign_entry,
)
from ledger import Sequencer as LogSequencer
from ledger.note import parse_signature_line

from .conftest import Federation

PARTIES = ("registry", "tax", "social")
SQL = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"


def _store(federation: Federation, party: str) -> LedgerStore:
    return LedgerStore(federation.directory / party / "state" / "ledger.sqlite")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def _settle(federation: Federation) -> None:
    """Run one more query so that every mirror has received the latest entries."""
    with federation.client() as client:
        client.query("SELECT COUNT(*) FROM registry.people")


def _mirrors(federation: Federation) -> dict[str, tuple[int, bytes]]:
    out = {}
    for party in PARTIES:
        with _store(federation, party) as store:
            out[party] = (store.size, store.root)
    return out


def test_queries_are_anchored_and_mirrors_agree(federation: Federation) -> None:
    with federation.client() as client:
        result = client.query(SQL)
    assert result.anchored is not None and result.receipt is not None
    assert set(result.anchored.committed_by) == set(PARTIES)
    assert result.anchored.sql == SQL and result.anchored.analyst == "alice"
    _settle(federation)
    fed = load_federation(federation.directory / "federation.toml")
    ring, quorum = keys.keyring(fed), keys.quorum(fed)
    sizes = _mirrors(federation)
    # The sequencer appends ahead of the mirrors by at most the last round.
    assert len({root for _, root in sizes.values()}) <= 2
    for party in PARTIES:
        with _store(federation, party) as store:
            assert store.verify(ring, quorum).ok
            entries = [decode_entry(store.entry_bytes(i)) for i in range(store.size)]
        requests = [e for e in entries if isinstance(e, QueryRequested)]
        assert any(e.query_id == result.query_id for e in requests)
        decided = [
            e for e in entries if isinstance(e, QueryDecided) and e.query_id == result.query_id
        ]
        assert {e.party for e in decided} == set(PARTIES)
        assert all(e.decision is Decision.APPROVED for e in decided)
        committed = [
            e for e in entries if isinstance(e, ResultCommitted) and e.query_id == result.query_id
        ]
        assert {e.signatures[0].author for e in committed} == set(PARTIES)


def test_once_queries_stop_every_mirror_holds_a_cosigned_checkpoint_of_the_whole_log(
    federation: Federation,
) -> None:
    with federation.client() as client:
        for _ in range(3):
            client.query(SQL)
    fed = load_federation(federation.directory / "federation.toml")
    ring, quorum = keys.keyring(fed), keys.quorum(fed)

    def cosigned(store: LedgerStore) -> int:  # the largest checkpoint a quorum cosigned
        report = store.verify(ring, quorum)
        assert report.ok
        return report.cosigned_size or 0

    deadline = time.monotonic() + 15
    while True:
        latest = {}
        for party in PARTIES:
            with _store(federation, party) as store:
                latest[party] = (store.size, cosigned(store))
        sizes = {size for size, _ in latest.values()}
        if len(sizes) == 1 and all(size == top for size, top in latest.values()):
            break
        assert time.monotonic() < deadline, (
            f"(log size, latest cosigned checkpoint) per party: got {latest}, "
            "want the log's size at every party"
        )
        time.sleep(0.1)


def test_refusal_is_anchored_with_its_reason(federation: Federation) -> None:
    with federation.client() as client:
        signed, private = client.sign("SELECT COUNT(*) FROM tax.income")
        client.send(signed, private)
        with pytest.raises(AuthError, match="replayed"):
            client.send(signed, private)
    _settle(federation)
    done = _cli(
        "ledger",
        "log",
        "--config",
        str(federation.directory / "tax" / "party.toml"),
        "--format",
        "json",
        "--dataset",
        "tax.income",
    )
    assert done.returncode == 0, done.stderr
    records = [r for r in json.loads(done.stdout) if r["query_id"] == signed.query_id]
    assert len(records) == 2  # the query, then its replay
    assert records[0]["committed_by"] == sorted(PARTIES)
    assert "replayed" in records[1]["outcome"] and records[1]["committed_by"] == []


def test_receipt_bundle_verifies_offline_and_tampering_is_caught(
    federation: Federation, tmp_path: Path
) -> None:
    receipt = tmp_path / "receipt.json"
    fed_file = str(federation.directory / "federation.toml")
    done = _cli(
        "query",
        "--identity",
        str(federation.identity),
        "--receipt",
        str(receipt),
        "--format",
        "json",
        SQL,
    )
    assert done.returncode == 0, done.stderr
    checked = _cli("ledger", "verify-receipt", str(receipt), "--federation", fed_file)
    assert checked.returncode == 0, checked.stderr
    assert "receipt valid" in checked.stdout and "committed by" in checked.stdout
    bundle = json.loads(receipt.read_text())
    fed = load_federation(Path(fed_file))
    for path, flip in (
        (("results", 0, "opening"), 0),
        (("results", 1, "sealed", "ciphertext"), 5),
        (("request", "entry"), 40),
    ):
        changed = json.loads(receipt.read_text())
        node = changed
        for key in path[:-1]:
            node = node[key]
        raw = bytearray(base64.b64decode(node[path[-1]]))
        raw[flip] ^= 1
        node[path[-1]] = base64.b64encode(bytes(raw)).decode()
        with pytest.raises(AuthError):
            verify_bundle(changed, fed)
    verify_bundle(bundle, fed)
    tampered = tmp_path / "tampered.json"
    bundle["results"][0]["opening"] = base64.b64encode(b"\x00" * 32).decode()
    tampered.write_text(json.dumps(bundle))
    refused = _cli("ledger", "verify-receipt", str(tampered), "--federation", fed_file)
    assert refused.returncode == 1 and "commitment" in refused.stderr


def test_datasets_are_registered(federation: Federation) -> None:
    wanted = ("registry.people", "tax.income", "social.benefits", "social.survey")
    deadline = time.monotonic() + 20
    while True:  # parties register at start-up, retrying until the sequencer is up
        _settle(federation)
        config = str(federation.directory / "social" / "party.toml")
        done = _cli("ledger", "log", "--config", config)
        assert done.returncode == 0, done.stderr
        if all(f"registered {n} " in done.stdout for n in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name in wanted:
        assert f"registered {name} " in done.stdout
    assert "registered social.missing" not in done.stdout  # unavailable: nothing to register


def test_tampered_row_is_detected_by_verify(federation: Federation, tmp_path: Path) -> None:
    _settle(federation)
    copy = tmp_path / "ledger.sqlite"
    original = federation.directory / "tax" / "state" / "ledger.sqlite"
    with sqlite3.connect(original) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    fed_file = str(federation.directory / "federation.toml")
    assert _cli("ledger", "verify", "--file", str(copy), "--federation", fed_file).returncode == 0
    with sqlite3.connect(copy) as db:
        (data,) = db.execute("SELECT data FROM entries WHERE idx = 3").fetchone()
        changed = bytearray(data)
        changed[-1] ^= 1
        db.execute("UPDATE entries SET data = ? WHERE idx = 3", (bytes(changed),))
    done = _cli("ledger", "verify", "--file", str(copy), "--federation", fed_file)
    assert done.returncode == 1
    assert "INVALID at entry 3" in done.stdout


def _sequencer_stub(federation: Federation, target: str) -> pb_grpc.FederationStub:
    """A Federation stub authenticated as the sequencer (registry), for forged calls."""
    fed = load_federation(federation.directory / "federation.toml")
    credentials = client_credentials(
        pki.read_pem(fed.ca_certificate, "CA"),
        pki.read_pem(federation.directory / "registry" / "tls.key", "key"),
        pki.read_pem(federation.directory / "registry" / "tls.crt", "cert"),
    )
    channel = grpc.secure_channel(
        fed.party(target).federation_address,
        credentials,
        options=[("grpc.ssl_target_name_override", target)],
    )
    return pb_grpc.FederationStub(channel)


def test_forged_entries_and_rollbacks_are_refused_by_witnesses(federation: Federation) -> None:
    _settle(federation)
    stub = _sequencer_stub(federation, "social")
    with _store(federation, "social") as store:
        size = store.size
        last = store.entry_bytes(size - 1)
        old_note = store.checkpoint_note(store.checkpoint_sizes()[0]) or ""
    # A decision by tax, but signed with another key.
    forged = QueryDecided("f" * 32, "tax", b"\x00" * 32, Decision.APPROVED)
    forged = sign_entry(forged, "tax", pki.new_signing_key())
    log_key = pki.load_signing_key(federation.directory / "registry" / "log.key")
    fed = load_federation(federation.directory / "federation.toml")
    from ledger import Checkpoint, NoteSigner, sign_checkpoint

    note = sign_checkpoint(
        Checkpoint(fed.log_origin, size + 1, b"\x11" * 32), NoteSigner(fed.log_origin, log_key)
    )
    request = pb.CosignRequest(
        entries=[encode_entry(forged)], from_size=size, note=note, old_size=size, proof=[]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Cosign(request, timeout=10)
    assert "refused the checkpoint" in caught.value.details()
    # A reordered copy of an existing entry: right signatures, wrong place (root differs).
    replay = pb.CosignRequest(entries=[last], from_size=size, note=note, old_size=size, proof=[])
    with pytest.raises(grpc.RpcError):
        stub.Cosign(replay, timeout=10)
    # A rollback to an older checkpoint.
    rollback = pb.CosignRequest(entries=[], from_size=size, note=old_note, old_size=size, proof=[])
    with pytest.raises(grpc.RpcError):
        stub.Cosign(rollback, timeout=10)
    # A checkpoint signed by an unknown log key.
    stranger = sign_checkpoint(
        Checkpoint(fed.log_origin, size, b"\x22" * 32),
        NoteSigner(fed.log_origin, pki.new_signing_key()),
    )
    unknown = pb.CosignRequest(entries=[], from_size=size, note=stranger, old_size=size, proof=[])
    with pytest.raises(grpc.RpcError):
        stub.Cosign(unknown, timeout=10)
    # Nothing was added, the witness did not move; the federation goes on.
    with _store(federation, "social") as store:
        assert store.size == size
    assert _witness_size(federation, "social") == size
    _settle(federation)


def _witness_size(federation: Federation, party: str) -> int:
    path = federation.directory / party / "state" / "witness.sqlite"
    with sqlite3.connect(path) as db:
        (size,) = db.execute("SELECT size FROM witness_state").fetchone()
    return int(size)


def test_witness_killed_and_restarted_catches_up(federation: Federation) -> None:
    federation.launcher.kill_party("social")
    with federation.client() as client, pytest.raises(EngineError, match="social"):
        client.query(SQL)
    federation.launcher.start_party("social")
    _settle(federation)
    _settle(federation)
    sizes = _mirrors(federation)
    assert sizes["social"][0] >= sizes["registry"][0] - 8  # at most the last round behind
    fed_file = str(federation.directory / "federation.toml")
    for party in PARTIES:
        done = _cli(
            "ledger", "verify", "--config", str(federation.directory / party / "party.toml")
        )
        assert done.returncode == 0, done.stdout + done.stderr
    del fed_file


def test_sequencer_killed_mid_load_leaves_every_ledger_valid(federation: Federation) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        with federation.client("tax") as client:
            while not stop.is_set():
                try:
                    client.query("SELECT region, COUNT(*) FROM tax.income GROUP BY region")
                except EngineError as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    federation.launcher.kill_party("registry")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert errors, "queries in flight must fail when the sequencer dies"
    federation.launcher.start_party("registry")
    _settle(federation)
    _settle(federation)
    for party in PARTIES:
        done = _cli(
            "ledger", "verify", "--config", str(federation.directory / party / "party.toml")
        )
        assert done.returncode == 0, done.stdout + done.stderr
    sizes = _mirrors(federation)
    with _store(federation, "registry") as log:
        for party in ("tax", "social"):
            size, root = sizes[party]
            assert log.root_at(size) == root  # every mirror is a prefix of the log


def _ledgers(root: Path) -> tuple[dict[str, PartyConfig], dict[str, PartyLedger]]:
    """Every party's PartyLedger in a fresh federation (no daemons)."""
    create_federation(root, list(PARTIES), ["alice"], name="t", base_port=free_port_block(3))
    configs = {p: load_party(root / p / "party.toml") for p in PARTIES}
    ledgers = {p: PartyLedger(c, pki.load_signing_key(c.signing_key)) for p, c in configs.items()}
    return configs, ledgers


class _RecordingWriter(LedgerWriter):
    """A writer (never started) that records what it is asked to append."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.appended: list[list[Entry]] = []

    def append(self, entries: Sequence[Entry]) -> asyncio.Future[Anchored]:
        self.appended.append(list(entries))
        return super().append(entries)


def test_the_sequencer_appends_only_each_partys_own_decision(tmp_path: Path) -> None:
    configs, ledgers = _ledgers(tmp_path)
    seq, tax = ledgers["registry"], ledgers["tax"]
    assert configs["registry"].log_key is not None
    writer = _RecordingWriter(
        configs["registry"].federation,
        seq,
        pki.load_signing_key(configs["registry"].log_key),
        lambda name, call: asyncio.sleep(0, CosignOutcome("", 0, 0)),
    )
    anchor = QueryAnchor(seq, writer)
    body, other = b"a request", b"another request"
    decisions = {p: encode_entry(ledgers[p].decide("q1", body, None)) for p in PARTIES}
    item = RequestToAnchor("q1", "alice", body, bytes(64), list(decisions.items()))
    swapped = [("tax", decisions["social"]), ("social", decisions["tax"]), item.decisions[0]]
    on_other = encode_entry(tax.decide("q1", other, None))
    for wrong in (swapped, [*item.decisions[:1], ("tax", on_other), item.decisions[2]]):
        bad = RequestToAnchor("q1", "alice", body, bytes(64), wrong)
        with pytest.raises(AuthError, match="not its own on this request"):
            asyncio.run(asyncio.wait_for(anchor.requests([bad]), 10))
    assert writer.appended == []  # refused before anything was queued
    for ledger in ledgers.values():
        ledger.close()


def test_a_party_checks_a_batch_before_its_mirror_and_witness_write(tmp_path: Path) -> None:
    """PartyLedger alone (no daemons): what it cosigns, keeps, and refuses."""
    configs, ledgers = _ledgers(tmp_path)
    seq, tax = ledgers["registry"], ledgers["tax"]
    fed = configs["registry"].federation
    assert configs["registry"].log_key is not None
    log = LogSequencer(
        seq.store,
        NoteSigner(fed.log_origin, pki.load_signing_key(configs["registry"].log_key)),
        seq.keyring,
        seq.quorum,
        verify_entries=False,  # as a dishonest sequencer would
    )

    def round_of(count: int, cosigned: str = "") -> tuple[str, str]:
        """Append ``count`` entries and have every party cosign; return (note, tax's line)."""
        batch = log.append([seq.abort(f"q{i}", b"\x01" * 32, "test") for i in range(count)])
        data = seq.store.entries_bytes(batch.first_index, batch.size)
        old = batch.first_index
        proof = seq.store.consistency_proof(old, batch.size) if old else []
        lines = []
        for party, ledger in ledgers.items():
            if party == "registry":
                new = [(i, decode_entry(d)) for i, d in enumerate(data, old)]
                outcome = ledger.cosign_own(batch.note, old, proof, new)
            else:
                outcome = ledger.cosign(data, old, batch.note, old, proof, cosigned_note=cosigned)
            assert outcome.cosignature and outcome.witness_size == batch.size
            lines.append(outcome.cosignature.strip())
        note = parse_note(batch.note).format() + "\n".join(lines) + "\n"
        return note, lines[1]

    first, line = round_of(3)
    assert seq.quorum.verify(first).size == 3
    round_of(2, cosigned=first)  # the cosigned note is kept in the same transaction
    assert tax.store.checkpoint_note(3) == first and tax.store.size == 5
    assert tax.store.verify(tax.keyring, tax.quorum).cosigned_size == 3
    # A cosigned note with a bad cosignature is not kept, and does not stop the round.
    sig = parse_signature_line(line)
    forged_sig = NoteSignature(
        sig.name, sig.key_id, sig.signature[:-1] + bytes([sig.signature[-1] ^ 1])
    )
    bad = first.replace(line, forged_sig.line().strip())
    with pytest.raises(LedgerError, match="does not verify"):
        tax.quorum.verify(bad)
    batch = log.append([seq.abort("q9", b"\x01" * 32, "test")])
    data = seq.store.entries_bytes(5, 6)
    proof = seq.store.consistency_proof(5, 6)
    outcome = tax.cosign(data, 5, batch.note, 5, proof, cosigned_note=bad)
    assert outcome.cosignature and tax.store.size == 6
    assert tax.store.checkpoint_note(3) == first
    # A forged entry: refused before the mirror or the witness wrote anything.
    forged = QueryDecided("f" * 32, "tax", b"\x00" * 32, Decision.APPROVED)
    forged = sign_entry(forged, "tax", pki.new_signing_key())
    batch = log.append([forged])
    proof = seq.store.consistency_proof(6, 7)
    with pytest.raises(LedgerError, match="does not verify"):
        tax.cosign([encode_entry(forged)], 6, batch.note, 6, proof)
    latest = tax.witness.latest()
    assert tax.store.size == 6 and latest is not None and latest.size == 6
    for ledger in ledgers.values():
        ledger.close()
