"""Crash safety: a writer killed with SIGKILL at any point leaves a log that verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ledger_fixtures import KEYRING, make_quorum

from ledger.checkpoint import Checkpoint
from ledger.note import parse_note
from ledger.store import LedgerStore

HERE = Path(__file__).parent
BATCH = 400

# The child appends batches of BATCH entries, each with its signed checkpoint, forever. In
# "pause" mode it stops inside the transaction of its third batch (after the entries and
# nodes are written, before COMMIT) and says so, so the kill lands mid-transaction for sure.
CHILD = """
import sys, time
sys.path[:0] = [{here!r}, {root!r}]
from ledger_fixtures import log_note, sample_entries
from ledger.store import LedgerStore

mode, path = sys.argv[1], sys.argv[2]
entries = sample_entries({batch})
store = LedgerStore(path)
batches = 0

def note_for(size, root):
    if mode == "pause" and batches == 2:
        print("in-transaction", flush=True)
        time.sleep(60)
    return log_note(size, root)

while True:
    store.append_batch(entries, note_for=note_for)
    batches += 1
    print("committed", store.size, flush=True)
"""


def run_and_kill(path: Path, mode: str, wait_for: str, extra_delay: float) -> int:
    """Start the child, wait for a line starting with wait_for, kill it; return commits seen."""
    script = CHILD.format(here=str(HERE), root=str(HERE.parent.parent), batch=BATCH)
    child = subprocess.Popen(
        [sys.executable, "-c", script, mode, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    commits = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            assert line, "child exited early"
            commits += line.startswith("committed")
            if line.startswith(wait_for):
                break
        time.sleep(extra_delay)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return commits


def check_intact(path: Path, at_least: int) -> None:
    store = LedgerStore(path)
    report = store.verify(KEYRING, make_quorum(k=1))
    assert report.ok, report.problem
    assert report.size % BATCH == 0 and report.size >= at_least * BATCH
    # Every batch committed with its checkpoint: the latest checkpoint covers the whole log.
    note = store.latest_checkpoint()
    assert note is not None
    assert Checkpoint.parse(parse_note(note).text).size == report.size == report.checkpoint_size
    store.close()


def test_kill_inside_a_transaction_leaves_the_last_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    commits = run_and_kill(path, "pause", "in-transaction", 0.0)
    assert commits == 2
    assert Path(str(path) + "-wal").exists()  # the uncommitted batch was in the WAL
    check_intact(path, at_least=2)
    assert LedgerStore(path).size == 2 * BATCH


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_at_a_random_moment(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "ledger.db"
    delay = random.Random(seed).uniform(0.0, 0.25)
    commits = run_and_kill(path, "run", "committed", delay)
    check_intact(path, at_least=commits)
    # The log is still appendable after recovery.
    store = LedgerStore(path)
    size = store.size
    store.append_batch([store.entry(0)])
    assert store.size == size + 1
