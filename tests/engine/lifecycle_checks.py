"""What every lifecycle and fault test checks on the ledger copies of a federation."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from engine.anchor import keys
from engine.anchor.history import QueryRecord, read
from engine.config import load_federation
from engine.errors import EngineError
from ledger import LedgerStore

from .conftest import Federation

PARTIES = ("registry", "tax", "social")
SETTLE_SQL = "SELECT COUNT(*) FROM registry.people"


def store(federation: Federation, party: str) -> LedgerStore:
    return LedgerStore(federation.directory / party / "state" / "ledger.sqlite")


def records(federation: Federation, party: str = "registry") -> dict[str, list[QueryRecord]]:
    """Return every request record on one party's copy, by query id (a replay repeats)."""
    with store(federation, party) as copy:
        found, _ = read(copy)
    out: dict[str, list[QueryRecord]] = {}
    for record in found:
        out.setdefault(record.query_id, []).append(record)
    return out


def settle(federation: Federation, timeout: float = 60.0) -> None:
    """Run queries until one succeeds, so that every mirror has the latest entries."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with federation.client() as client:
                client.query(SETTLE_SQL)
            return
        except EngineError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def wait_until_ended(federation: Federation, query_id: str, timeout: float = 30.0) -> QueryRecord:
    """Wait until the query's latest request has ended on the sequencer's copy."""
    deadline = time.monotonic() + timeout
    while True:
        record = records(federation).get(query_id, [None])[-1]  # type: ignore[list-item]
        if record is not None and record.outcome != "pending":
            return record
        assert time.monotonic() < deadline, f"query {query_id}: still pending on the ledger"
        time.sleep(0.2)


def check_ledgers(federation: Federation) -> None:
    """Every copy verifies, every mirror is a prefix of the log (identical once settled),
    and every request ends in results or exactly one abort."""
    fed = load_federation(federation.directory / "federation.toml")
    ring, quorum = keys.keyring(fed), keys.quorum(fed)
    deadline = time.monotonic() + 60  # generous: CI machines are shared and slow at times
    while any(r.outcome == "pending" for rs in records(federation).values() for r in rs):
        assert time.monotonic() < deadline, "requests still pending on the log"
        time.sleep(0.3)
    deadline = time.monotonic() + 60
    while True:  # aborts flushed after the last query reach every mirror with the next round
        sizes = {}
        for party in PARTIES:
            with store(federation, party) as copy:
                sizes[party] = (copy.size, copy.root)
        if len(set(sizes.values())) == 1:
            break
        if time.monotonic() > deadline:
            with store(federation, "registry") as log:
                for party in PARTIES:
                    size, root = sizes[party]
                    assert log.root_at(size) == root, f"{party}'s copy is not a prefix of the log"
            raise AssertionError(f"ledger copies differ: {sizes}")
        settle(federation)
        time.sleep(0.3)
    for party in PARTIES:
        with store(federation, party) as copy:
            report = copy.verify(ring, quorum)
            assert report.ok, (party, report.first_bad_index, report.problem)
    for party in PARTIES:
        for query_id, found in records(federation, party).items():
            for record in found:  # the original and any replay of it
                ended = [bool(record.committed), bool(record.refusals), bool(record.aborts)]
                assert any(ended), f"query {query_id}: pending on {party}'s copy"
                assert len(record.aborts) <= 1, f"query {query_id}: {len(record.aborts)} aborts"
                assert not (record.aborts and record.committed), f"query {query_id}: both"


def verify_cli(federation: Federation, party: str) -> subprocess.CompletedProcess[str]:
    config = Path(federation.directory) / party / "party.toml"
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "ledger", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
