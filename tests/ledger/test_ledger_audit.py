"""Tests for LedgerStore.verify (ledger.audit): every tamper in the SQLite file is located."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ledger_fixtures import KEYRING, ORIGIN, cosigned_note, log_note, make_quorum, sample_entries

from ledger.entries import encode_entry
from ledger.errors import differing_hex
from ledger.merkle import MerkleTree
from ledger.store import LedgerStore

ENTRIES = sample_entries(120)
TREE = MerkleTree(encode_entry(e) for e in ENTRIES)
BATCHES = (10, 30, 50, 30)  # checkpoints at 10, 40, 90, 120
QUORUM = make_quorum(k=2)


def build(path: Path) -> None:
    store = LedgerStore(path)
    pos = 0
    for n in BATCHES:
        store.append_batch(ENTRIES[pos : pos + n], note_for=lambda s, r: cosigned_note(s, r))
        pos += n
    store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    build(path)
    return path


@contextmanager
def sql(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def verify(path: Path) -> tuple[bool, int | None, str]:
    report = LedgerStore(path).verify(KEYRING, QUORUM)
    return report.ok, report.first_bad_index, report.problem or ""


def test_an_intact_log_verifies(db: Path) -> None:
    report = LedgerStore(db).verify(KEYRING, QUORUM)
    assert report.ok and report.problem is None and report.first_bad_index is None
    assert (report.size, report.root) == (120, TREE.root())
    assert (report.checkpoint_size, report.cosigned_size) == (120, 120)


def test_a_flipped_byte_in_an_entry_is_located(db: Path) -> None:
    with sql(db) as conn:
        data = bytearray(conn.execute("SELECT data FROM entries WHERE idx = 57").fetchone()[0])
        data[-5] ^= 0x01  # inside the last signature
        conn.execute("UPDATE entries SET data = ? WHERE idx = 57", (bytes(data),))
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 57)
    assert problem.startswith("entry 57:") and "does not verify" in problem


def test_a_non_canonical_entry_is_located(db: Path) -> None:
    with sql(db) as conn:
        conn.execute("UPDATE entries SET data = data || x'00' WHERE idx = 3")
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 3)
    assert "entry 3: entry: got 1 trailing bytes" in problem


def test_a_swapped_validly_signed_entry_is_located(db: Path) -> None:
    # Another validly signed entry in place of entry 20: signatures pass, the leaf does not.
    with sql(db) as conn:
        conn.execute("UPDATE entries SET data = ? WHERE idx = 20", (encode_entry(ENTRIES[21]),))
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 20)
    assert problem.startswith("stored leaf hash for entries [20, 21): got")


def test_a_rebuilt_tree_still_disagrees_with_the_signed_checkpoint(db: Path) -> None:
    # An attacker who also recomputes every node is caught by the checkpoint covering 20.
    swapped = [*ENTRIES[:20], ENTRIES[21], *ENTRIES[21:]]
    forged = LedgerStore(db.parent / "forged.db")
    forged.append_batch(swapped)
    forged.close()
    with sql(db) as conn:
        conn.execute("ATTACH DATABASE ? AS forged", (str(db.parent / "forged.db"),))
        conn.execute("DELETE FROM nodes")
        conn.execute("INSERT INTO nodes SELECT * FROM forged.nodes")
        conn.execute("UPDATE entries SET data = ? WHERE idx = 20", (encode_entry(ENTRIES[21]),))
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 10)
    assert problem.startswith("checkpoint 40: got root ")
    assert "an entry in [10, 40) is not the one signed" in problem


def test_a_tampered_tree_node_is_located(db: Path) -> None:
    with sql(db) as conn:
        conn.execute("UPDATE nodes SET hash = zeroblob(32) WHERE level = 3 AND idx = 5")
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 40)
    assert problem.startswith("stored tree node (3, 5) for entries [40, 48): got 00000000")


def test_a_missing_entry_is_located(db: Path) -> None:
    with sql(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx = 99")
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 99)
    assert problem == "entry 99: missing (next is 100)"


def test_a_truncated_log_is_detected(db: Path) -> None:
    with sql(db) as conn:
        conn.execute("DELETE FROM entries WHERE idx >= 100")
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 100)
    assert "stored tree nodes: got" in problem or "beyond the log" in problem


def test_a_tampered_checkpoint_is_located(db: Path) -> None:
    with sql(db) as conn:
        note = conn.execute("SELECT note FROM checkpoints WHERE size = 90").fetchone()[0]
        other = cosigned_note(90, TREE.root(89))
        conn.execute("UPDATE checkpoints SET note = ? WHERE size = 90", (other,))
    assert note != other
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 40)
    assert problem.startswith("checkpoint 90:")


def test_a_tampered_cosignature_on_the_latest_checkpoint_is_detected(db: Path) -> None:
    with sql(db) as conn:
        note = conn.execute("SELECT note FROM checkpoints WHERE size = 120").fetchone()[0]
        lines = note.split("\n")
        sig_line = lines[-2]
        flipped = sig_line[:-6] + ("A" if sig_line[-6] != "A" else "B") + sig_line[-5:]
        conn.execute(
            "UPDATE checkpoints SET note = ? WHERE size = 120", (note.replace(sig_line, flipped),)
        )
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 119)
    assert problem.startswith("checkpoint 120: note signature by") and "does not verify" in problem


def test_quorum_status_is_reported(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    store.append_batch(ENTRIES[:10], note_for=lambda s, r: cosigned_note(s, r))
    store.append_batch(ENTRIES[10:20], note_for=lambda s, r: cosigned_note(s, r, witnesses=1))
    store.append_batch(ENTRIES[20:25])  # an unsigned tail is allowed
    report = store.verify(KEYRING, QUORUM)
    assert report.ok
    assert (report.size, report.checkpoint_size, report.cosigned_size) == (25, 20, 10)
    store.append_batch(ENTRIES[25:30], note_for=lambda s, r: log_note(s, r).replace(ORIGIN, "x/y"))
    report = store.verify(KEYRING, QUORUM)
    assert not report.ok and report.problem is not None
    assert "checkpoint 30" in report.problem


def test_an_empty_store_verifies(tmp_path: Path) -> None:
    report = LedgerStore(tmp_path / "l.db").verify(KEYRING, QUORUM)
    assert report.ok and report.size == 0 and report.cosigned_size is None


def test_a_hash_changed_past_its_first_bytes_is_reported_with_prefixes_that_differ(
    db: Path,
) -> None:
    with sql(db) as conn:
        (stored,) = conn.execute("SELECT hash FROM nodes WHERE level = 0 AND idx = 7").fetchone()
        changed = bytearray(stored)
        changed[20] ^= 0x40  # the first 4 bytes (what used to be printed) are unchanged
        conn.execute("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = 7", (bytes(changed),))
    ok, index, problem = verify(db)
    assert (ok, index) == (False, 7)
    got = problem.split("got ")[1].split(",")[0]
    want = problem.split("want ")[1].split(" ")[0]
    assert got != want and len(got) == len(want) >= 8
    assert bytes(changed).hex().startswith(got) and bytes(stored).hex().startswith(want)


def test_differing_hex_shows_where_two_hashes_differ() -> None:
    a = bytes(range(32))
    b = a[:12] + b"\xff" + a[13:]
    assert differing_hex(a, b) == (a.hex()[:29], b.hex()[:29])  # 4 digits past digit 24
    assert differing_hex(b"\x01" + a[1:], a) == (("01" + a.hex()[2:])[:8], a.hex()[:8])
    assert differing_hex(a, a) == (a.hex(), a.hex())
