"""Auditing ledger copies with ``jointstat ledger``: rollbacks, foreign files, exports,
private state files, and mirrors that keep only checkpoints a quorum cosigned.

Uses the shared three-party federation (real daemons, real SQLite ledgers); the CLI runs
as a separate process, as an auditor would run it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

from engine.anchor import keys
from engine.config import load_federation, load_party
from engine.federation_init import create_federation
from engine.state_dir import make_private
from ledger import LedgerStore, QuorumError

from .conftest import Federation

PARTIES = ("registry", "tax", "social")
SQL = "SELECT sector, COUNT(*), AVG(income) FROM tax.income GROUP BY sector"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )


def _queries(federation: Federation, count: int = 2) -> None:
    with federation.client() as client:
        for _ in range(count):
            client.query(SQL)


def _export(federation: Federation, party: str, target: Path) -> subprocess.CompletedProcess[str]:
    config = str(federation.directory / party / "party.toml")
    return _cli("ledger", "export", "--config", config, str(target))


def _truncate(path: Path, size: int) -> None:
    """Cut a ledger copy back to its first ``size`` entries, as an old backup would be."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE idx >= ?", (size,))
        db.execute("DELETE FROM nodes WHERE ((idx + 1) << level) > ?", (size,))
        db.execute("DELETE FROM checkpoints WHERE size > ?", (size,))


def test_a_copy_rolled_back_to_an_older_checkpoint_is_reported(
    federation: Federation, tmp_path: Path
) -> None:
    _queries(federation)
    fed = str(federation.directory / "federation.toml")
    copy = tmp_path / "copy.sqlite"
    assert _export(federation, "tax", copy).returncode == 0
    with LedgerStore(copy, read_only=True) as store:
        size = store.size
        older = [s for s in store.checkpoint_sizes() if s < size - 3]
    assert older, "want an older cosigned checkpoint to roll back to"
    _truncate(copy, older[-1])

    alone = _cli("ledger", "verify", "--file", str(copy), "--federation", fed, "--offline")
    assert alone.returncode == 0, alone.stdout + alone.stderr  # valid in itself
    witness = str(federation.directory / "tax" / "state" / "witness.sqlite")
    by_witness = _cli(
        "ledger", "verify", "--file", str(copy), "--federation", fed, "--witness", witness,
        "--offline",
    )  # fmt: skip
    assert by_witness.returncode == 1
    assert "rolled back from " in by_witness.stdout and f" to {older[-1]}:" in by_witness.stdout
    identity = str(federation.directory / "analysts" / "alice")
    by_parties = _cli(
        "ledger", "verify", "--file", str(copy), "--federation", fed, "--identity", identity
    )
    assert by_parties.returncode == 1, by_parties.stdout
    assert "ledger ROLLED BACK: rolled back from" in by_parties.stdout
    assert f"to {older[-1]} (or never caught up): party " in by_parties.stdout
    assert "Traceback" not in by_parties.stderr

    live = _cli("ledger", "verify", "--config", str(federation.directory / "tax" / "party.toml"))
    assert live.returncode == 0, live.stdout + live.stderr
    assert "compared with: tax's witness at" in live.stdout
    assert "party registry (cosigned by a quorum) at" in live.stdout


def test_verify_refuses_foreign_files_and_never_writes_to_them(
    federation: Federation, tmp_path: Path
) -> None:
    fed = str(federation.directory / "federation.toml")
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE budget (year INTEGER, amount INTEGER)")
        db.execute("INSERT INTO budget VALUES (2026, 100)")
    before = hashlib.sha256(foreign.read_bytes()).hexdigest()
    done = _cli("ledger", "verify", "--file", str(foreign), "--federation", fed, "--offline")
    assert done.returncode == 1
    assert "got no table checkpoints, entries, meta, nodes, want a jointstat ledger" in done.stderr
    assert "Traceback" not in done.stderr
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == before
    with sqlite3.connect(foreign) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"budget"}

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    for command in ("verify", "log", "checkpoint"):
        done = _cli("ledger", command, "--file", str(garbage), "--federation", fed)
        assert done.returncode == 1, command
        assert done.stderr.startswith("jointstat: ledger: ") and "Traceback" not in done.stderr


def test_an_export_made_while_the_daemons_run_holds_every_entry(
    federation: Federation, tmp_path: Path
) -> None:
    stop = threading.Event()

    def load() -> None:
        with federation.client("tax") as client:
            while not stop.is_set():
                client.query("SELECT region, COUNT(*) FROM tax.income GROUP BY region")

    thread = threading.Thread(target=load)
    thread.start()
    try:
        _queries(federation, 1)
        live = federation.directory / "social" / "state" / "ledger.sqlite"
        with LedgerStore(live, read_only=True) as store:
            held = store.size  # entries committed before the export starts
        export = tmp_path / "export.sqlite"
        done = _export(federation, "social", export)
    finally:
        stop.set()
        thread.join(60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert not Path(f"{export}-wal").exists()  # one self-contained file
    with LedgerStore(export, read_only=True) as copy, LedgerStore(live, read_only=True) as store:
        assert copy.size >= held
        assert copy.entries_bytes(0, copy.size) == store.entries_bytes(0, copy.size)
    fed = str(federation.directory / "federation.toml")
    checked = _cli("ledger", "verify", "--file", str(export), "--federation", fed, "--offline")
    assert checked.returncode == 0, checked.stdout
    assert f"ledger valid: {copy.size} entries" in checked.stdout
    assert _export(federation, "social", export).returncode == 1  # never overwrites


def test_mirrors_keep_only_checkpoints_a_quorum_cosigned(federation: Federation) -> None:
    _queries(federation, 3)
    fed = load_federation(federation.directory / "federation.toml")
    quorum = keys.quorum(fed)
    for party in ("tax", "social"):  # the mirrors (registry's store is the log itself)
        path = federation.directory / party / "state" / "ledger.sqlite"
        with LedgerStore(path, read_only=True) as store:
            notes = list(store.iter_checkpoints())
        assert notes, party
        below = []
        for size, note in notes:
            try:
                quorum.verify(note)
            except QuorumError:
                below.append(size)
        assert below == [], f"{party} stores {len(below)} of {len(notes)} below the quorum"


def test_state_directories_and_files_are_private(federation: Federation) -> None:
    for party in PARTIES:
        state = federation.directory / party / "state"
        assert stat.S_IMODE(state.stat().st_mode) == 0o700, party
        for path in state.rglob("*"):
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert not mode & 0o077, f"{path}: {mode:04o}"
        for key in ("tls.key", "signing.key"):
            assert not stat.S_IMODE((state.parent / key).stat().st_mode) & 0o077


def test_loose_modes_left_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    create_federation(tmp_path, ["a", "b", "c"], [], base_port=27300)
    config = load_party(tmp_path / "a" / "party.toml")
    (config.state_dir / "mpc").mkdir(parents=True)
    config.state_dir.chmod(0o755)
    (config.state_dir / "ledger.sqlite").write_bytes(b"")
    (config.state_dir / "ledger.sqlite").chmod(0o644)
    config.signing_key.chmod(0o644)
    changed = make_private(config)
    assert set(changed) == {
        config.state_dir,
        config.state_dir / "mpc",
        config.state_dir / "ledger.sqlite",
        config.signing_key,
    }
    assert stat.S_IMODE(config.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((config.state_dir / "ledger.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE(config.signing_key.stat().st_mode) == 0o600
    assert make_private(config) == []
