"""Tests for ledger.store: SQLite persistence, atomic batches, proofs from storage."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from ledger_fixtures import ORIGIN, cosigned_note, log_note, sample_entries

from ledger.checkpoint import Checkpoint
from ledger.entries import encode_entry
from ledger.errors import FormatError, ProofError, StoreError
from ledger.merkle import EMPTY_ROOT, MerkleTree, NodeID
from ledger.note import parse_note
from ledger.proof import inclusion_proof, verify_consistency, verify_inclusion
from ledger.store import LedgerStore, nodes_query

ENTRIES = sample_entries(300)
ENCODED = [encode_entry(e) for e in ENTRIES]
TREE = MerkleTree(ENCODED)


def filled(path: Path, batches: Sequence[int] = (1, 7, 64, 100, 128)) -> LedgerStore:
    store = LedgerStore(path)
    pos = 0
    for n in batches:
        store.append_batch(ENTRIES[pos : pos + n])
        pos += n
    return store


def test_empty_store(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    assert (store.size, store.root) == (0, EMPTY_ROOT)
    assert store.latest_checkpoint() is None
    with pytest.raises(StoreError, match="got 0 entries"):
        store.append_batch([])
    with pytest.raises(StoreError, match="entry index: got 0"):
        store.entry_bytes(0)


def test_append_read_and_reopen(tmp_path: Path) -> None:
    store = filled(tmp_path / "l.db")
    assert store.size == 300 and store.root == TREE.root()
    assert store.entry(5) == ENTRIES[5] and store.entry_bytes(299) == ENCODED[299]
    assert store.entries_bytes(10, 20) == ENCODED[10:20]
    for size in (0, 1, 8, 9, 200, 300):
        assert store.root_at(size) == TREE.root(size)
    result = store.append_batch(sample_entries(3, first_query=500))
    assert (result.first_index, result.size) == (300, 303)
    first, size, root = result  # unpacks like a tuple
    assert first == 300
    store.close()
    again = LedgerStore(tmp_path / "l.db")  # the compact range is rebuilt from stored nodes
    assert (again.size, again.root) == (size, root)
    assert list(again.iter_entries(chunk=7))[:2] == [(0, ENCODED[0]), (1, ENCODED[1])]


def test_proofs_from_storage_match_the_in_memory_tree(tmp_path: Path) -> None:
    store = filled(tmp_path / "l.db")
    for size in (1, 2, 3, 100, 257, 300):
        for index in range(0, size, max(1, size // 13)):
            proof = store.inclusion_proof(index, size)
            assert proof == inclusion_proof(TREE, index, size)
            verify_inclusion(TREE.leaf_hash(index), index, size, proof, TREE.root(size))
        for size1 in range(1, size + 1, max(1, size // 11)):
            proof = store.consistency_proof(size1, size)
            verify_consistency(size1, size, proof, TREE.root(size1), TREE.root(size))
    assert store.inclusion_proof(299) == inclusion_proof(TREE, 299, 300)
    with pytest.raises(ProofError, match="not in a tree of size 300"):
        store.inclusion_proof(0, 301)
    with pytest.raises(ProofError, match="index got 300"):
        store.inclusion_proof(300)


class CountingStore(LedgerStore):
    calls: list[int] = []  # noqa: RUF012  (reset per test)

    def nodes(self, ids: Sequence[NodeID], size: int | None = None) -> list[bytes]:
        self.calls.append(len(ids))
        return super().nodes(ids, size)


def test_a_proof_reads_few_nodes_in_one_query(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "l.db")
    store.append_batch(ENTRIES)
    store.calls = []
    store.inclusion_proof(137, 300)
    store.consistency_proof(137, 300)
    assert len(store.calls) == 2  # one node query per proof
    assert max(store.calls) <= 2 * (300).bit_length()


def test_batch_with_checkpoint_is_atomic(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    store.append_batch(ENTRIES[:10], note_for=log_note)
    assert Checkpoint.parse(parse_note(store.latest_checkpoint() or "").text).size == 10

    def failing(size: int, root: bytes) -> str:
        raise RuntimeError("signer unavailable")

    with pytest.raises(RuntimeError, match="signer unavailable"):
        store.append_batch(ENTRIES[10:20], note_for=failing)
    assert (store.size, store.root) == (10, TREE.root(10))
    with pytest.raises(ProofError, match="want size 20"):
        store.append_batch(ENTRIES[10:20], note_for=lambda s, r: log_note(s + 1, r))
    with pytest.raises(ProofError, match="new root"):
        store.append_batch(ENTRIES[10:20], expect_root=TREE.root(19))
    fresh = LedgerStore(tmp_path / "l.db")
    assert (fresh.size, fresh.root) == (10, TREE.root(10))
    assert store.node_count() == 2 * 10 - 2
    store.append_batch(ENTRIES[10:20], note_for=log_note)  # the store still works
    assert store.size == 20


def test_checkpoints_are_checked_and_merged(tmp_path: Path) -> None:
    store = filled(tmp_path / "l.db")
    store.store_checkpoint(log_note(100, TREE.root(100)))
    store.store_checkpoint(cosigned_note(100, TREE.root(100), witnesses=2))
    merged = parse_note(store.checkpoint_note(100) or "")
    assert len(merged.signatures) == 3  # the log's plus two cosignatures, no duplicates
    with pytest.raises(ProofError, match=r"checkpoint 100: got root [0-9a-f]{8}, want [0-9a-f]{8}"):
        store.store_checkpoint(log_note(100, TREE.root(99)))
    with pytest.raises(ProofError, match="tree size: got 301"):
        store.store_checkpoint(log_note(301, TREE.root(300)))
    other = cosigned_note(100, TREE.root(100)).replace(ORIGIN, "other.example/log")
    with pytest.raises(StoreError, match="different note text"):
        store.store_checkpoint(other)
    with pytest.raises(FormatError):
        store.store_checkpoint("not a note")
    assert store.checkpoint_sizes() == [100]
    store.store_checkpoint(log_note(7, TREE.root(7)))
    assert [s for s, _ in store.iter_checkpoints()] == [7, 100]
    assert [s for s, _ in store.iter_checkpoints(newest_first=True)] == [100, 7]


def test_sqlite_settings_and_foreign_databases(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    filled(path, (3,)).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE meta SET value = 'other/9' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema: got 'other/9'"):
        LedgerStore(path)


def test_a_second_writer_is_detected(tmp_path: Path) -> None:
    one = LedgerStore(tmp_path / "l.db")
    two = LedgerStore(tmp_path / "l.db")
    one.append_batch(ENTRIES[:5])
    with pytest.raises(StoreError, match="another writer"):
        two.append_batch(ENTRIES[5:6])
    assert LedgerStore(tmp_path / "l.db").size == 5


def test_node_lookups_use_the_primary_key(tmp_path: Path) -> None:
    """Regression: a row-value IN (VALUES ...) query scanned the whole nodes table."""
    store = filled(tmp_path / "l.db", (300,))
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN " + nodes_query(3), [0, 1, 1, 2, 3, 4]
    ).fetchall()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH nodes USING PRIMARY KEY" in details and "SCAN nodes" not in details
    many = [(0, i) for i in range(300)]  # more than one query's worth of nodes
    assert store.nodes(many) == TREE.nodes(many)


def test_a_reader_refreshes_after_another_process_appends(tmp_path: Path) -> None:
    writer = LedgerStore(tmp_path / "l.db")
    writer.append_batch(ENTRIES[:10])
    reader = LedgerStore(tmp_path / "l.db")
    writer.append_batch(ENTRIES[10:25])
    assert reader.size == 10  # its own view until refreshed
    reader.refresh()
    assert (reader.size, reader.root) == (25, TREE.root(25))


def test_many_checkpoints_are_read_in_chunks(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    for i in range(150):  # more than two reads' worth
        store.append_batch([ENTRIES[i]], note_for=log_note)
    assert [s for s, _ in store.iter_checkpoints()] == list(range(1, 151))
    assert [s for s, _ in store.iter_checkpoints(newest_first=True)] == list(range(150, 0, -1))
    assert store.checkpoint_sizes() == list(range(1, 151))


def test_checkpoints_are_stored_with_the_batch(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    store.append_batch(ENTRIES[:10], note_for=log_note)
    cosigned = cosigned_note(10, TREE.root(10), witnesses=2)
    store.append_batch(ENTRIES[10:20], note_for=log_note, checkpoints=[cosigned])
    assert len(parse_note(store.checkpoint_note(10) or "").signatures) == 3
    assert store.checkpoint_sizes() == [10, 20]
    wrong = cosigned_note(10, TREE.root(9))
    with pytest.raises(ProofError, match=r"checkpoint 10: got root [0-9a-f]{8}, want "):
        store.append_batch(ENTRIES[20:30], note_for=log_note, checkpoints=[wrong])
    with pytest.raises(ProofError, match="tree size: got 25"):  # between old size and new
        store.append_batch(ENTRIES[20:30], checkpoints=[log_note(25, TREE.root(25))])
    assert (store.size, store.checkpoint_sizes()) == (20, [10, 20])  # nothing written
    head = cosigned_note(30, TREE.root(30))
    store.append_batch(ENTRIES[20:30], note_for=log_note, checkpoints=[head])
    assert len(parse_note(store.checkpoint_note(30) or "").signatures) == 4
    store.store_checkpoints(
        [cosigned_note(20, TREE.root(20), witnesses=1), log_note(5, TREE.root(5))]
    )
    assert store.checkpoint_sizes() == [5, 10, 20, 30]


def test_prepare_writes_nothing_and_commit_needs_an_unchanged_store(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "l.db")
    pending = store.prepare_append(ENTRIES[:10])
    assert (pending.first_index, pending.tree.size, pending.root) == (0, 10, TREE.root(10))
    assert pending.encoded == tuple(ENCODED[:10])
    assert store.size == 0 and LedgerStore(tmp_path / "l.db").size == 0
    given = store.prepare_append(ENTRIES[:10], encoded=ENCODED[:10])
    assert (given.encoded, given.nodes, given.root) == (
        pending.encoded,
        pending.nodes,
        pending.root,
    )
    with pytest.raises(StoreError, match="got 9 encodings, want 10"):
        store.prepare_append(ENTRIES[:10], encoded=ENCODED[:9])
    late = store.prepare_append(ENTRIES[:5])
    assert store.commit_append(pending, note_for=log_note) == (0, 10, TREE.root(10))
    with pytest.raises(StoreError, match="holds 10 entries now"):
        store.commit_append(late)
    assert (store.size, store.root) == (10, TREE.root(10))
    assert LedgerStore(tmp_path / "l.db").root == TREE.root(10)


def test_a_new_store_is_private_to_its_owner(tmp_path: Path) -> None:
    store = filled(tmp_path / "l.db")
    for name in ("l.db", "l.db-wal", "l.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    store.close()


def test_a_read_only_store_reads_and_never_writes(tmp_path: Path) -> None:
    filled(tmp_path / "l.db").close()
    before = (tmp_path / "l.db").read_bytes()
    store = LedgerStore(tmp_path / "l.db", read_only=True)
    assert (store.size, store.root) == (300, TREE.root())
    with pytest.raises(StoreError, match="opened read-only"):
        store.append_batch(sample_entries(1, first_query=900))
    with pytest.raises(StoreError, match="opened read-only"):
        store.store_checkpoint(log_note(300, TREE.root()))
    store.close()
    assert (tmp_path / "l.db").read_bytes() == before


@pytest.mark.parametrize("kind", ["foreign", "garbage", "missing"])
def test_a_file_that_is_no_ledger_is_refused_read_only(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "other.db"
    if kind == "foreign":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (x)")
    elif kind == "garbage":
        path.write_bytes(b"\x00not sqlite" * 50)
    before = path.read_bytes() if path.exists() else None
    reason = {"foreign": "got no table", "garbage": "want a SQLite", "missing": "got none"}[kind]
    with pytest.raises(StoreError, match=reason):
        LedgerStore(path, read_only=True)
    assert (path.read_bytes() if path.exists() else None) == before


def test_export_writes_a_consistent_self_contained_copy(tmp_path: Path) -> None:
    store = filled(tmp_path / "l.db")  # WAL mode, the WAL not checkpointed
    assert store.export(tmp_path / "copy.db") == 300
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600
    store.close()
    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy = LedgerStore(tmp_path / "copy.db", read_only=True)
    assert (copy.size, copy.root) == (300, TREE.root())
    with pytest.raises(StoreError, match="want a new file"):
        copy.export(tmp_path / "copy.db")
