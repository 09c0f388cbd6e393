"""The ledger on disk: entries, Merkle nodes and checkpoints in one SQLite database.

SQLite runs in WAL mode with synchronous=FULL, and every append batch (its entries, the
perfect-subtree nodes they complete, and optionally the checkpoint signed over the new head)
is one transaction. A crash at any point leaves either the old log or the new one, and both
verify. Proofs read at most about 2·log2(n) stored nodes in one query, so serving them from
a log of 10^6 entries costs well under a millisecond of SQL.

Schema (version "jointstat-ledger/1"):

    entries(idx INTEGER PRIMARY KEY, data BLOB)            canonical entry bytes
    nodes(level, idx, hash, PRIMARY KEY(level, idx))       every perfect subtree (level 0 =
                                                            leaf hashes), see ledger.merkle
    checkpoints(size INTEGER PRIMARY KEY, note TEXT)       signed notes with cosignatures
    meta(key TEXT PRIMARY KEY, value TEXT)                 schema version

One process writes; readers in other processes see committed batches only (`refresh`
picks up batches appended since the store was opened). Methods are
safe to call from several threads of the writing process. Values are read back with
CAST(... AS BLOB), so a row rewritten as TEXT by hand is reported by `verify`, not crashed on.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from ledger import proof as _proof
from ledger._sqlite import FILE_MODE, connect, connect_readonly, transaction
from ledger.checkpoint import Checkpoint
from ledger.entries import Entry, decode_entry, encode_entry
from ledger.errors import ProofError, StoreError, differing_hex
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeID,
    compact_range_nodes,
    fold_right,
    leaf_hash,
    range_nodes,
)
from ledger.note import parse_note

if TYPE_CHECKING:
    from ledger.audit import VerifyReport
    from ledger.keyring import KeyRing
    from ledger.quorum import Quorum

SCHEMA = "jointstat-ledger/1"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
"""


# Node lookups are an OR of primary-key equalities, which SQLite answers with one index
# search per node. (A row-value "IN (VALUES ...)" scans the whole table: 40 ms at 4e5 nodes.)
_NODES_PER_QUERY = 128


def nodes_query(count: int) -> str:
    """Return the SQL that fetches `count` nodes by (level, idx), one PK search each."""
    terms = " OR ".join(["(level = ? AND idx = ?)"] * count)
    return f"SELECT level, idx, CAST(hash AS BLOB) FROM nodes WHERE {terms}"


@dataclass(frozen=True)
class PendingAppend:
    """An append computed but not yet written (see `LedgerStore.prepare_append`)."""

    first_index: int
    encoded: tuple[bytes, ...]
    nodes: tuple[tuple[int, int, bytes], ...]
    tree: CompactRange  # the tree after the append
    root: bytes


class AppendResult(NamedTuple):
    """Where a batch landed: its first index, the new tree size and root."""

    first_index: int
    size: int
    root: bytes


class LedgerStore:
    """An append-only Merkle log of typed entries kept in SQLite."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        """Open or create the store at path (created with mode 0600).

        With ``read_only``, open an existing store without ever writing to it (SQLite
        ``mode=ro``; for auditors): every append then raises StoreError. Raises StoreError
        for a file that is not a jointstat ledger (another schema, or not SQLite).
        """
        self.path = os.fspath(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn = connect_readonly(path) if read_only else connect(path)
        try:
            if read_only:
                self._check_schema()
            else:
                self._conn.executescript(_DDL)
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None and not read_only:
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
            elif row is None or row[0] != SCHEMA:
                raise StoreError(f"store schema: got {row[0] if row else None!r}, want {SCHEMA!r}")
            self._range = self._load_range()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"store {self.path}: {exc}") from None
        except BaseException:
            self._conn.close()
            raise

    def _check_schema(self) -> None:
        """Raise StoreError unless the ledger's four tables are in the database."""
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {str(r[0]) for r in rows.fetchall()}
        missing = sorted({"meta", "entries", "nodes", "checkpoints"} - tables)
        if missing:
            raise StoreError(
                f"store {self.path}: got no table {', '.join(missing)}, want a jointstat "
                "ledger (state/ledger.sqlite of a party, or a copy made by ledger export)"
            )

    def export(self, target: str | os.PathLike[str]) -> int:
        """Write a consistent copy of the whole store to a new file ``target``; return its
        number of entries.

        Uses SQLite's online backup (one snapshot, even while another process appends) and
        leaves the copy in rollback-journal mode, a single self-contained file of mode
        0600. Raises StoreError if ``target`` exists or cannot be written.
        """
        name = os.fspath(target)
        try:
            descriptor = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"export to {name}: {exc.strerror}, want a new file") from None
        os.close(descriptor)
        try:
            copy = sqlite3.connect(name, isolation_level=None)
            try:
                with self._lock:
                    self._conn.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
                size = copy.execute("SELECT count(*) FROM entries").fetchone()[0]
            finally:
                copy.close()
        except sqlite3.Error as exc:
            os.unlink(name)
            raise StoreError(f"export to {name}: {exc}") from None
        return int(size)

    def _disk_size(self) -> int:
        row = self._conn.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _load_range(self) -> CompactRange:
        size = self._disk_size()
        ids = compact_range_nodes(size)
        try:
            hashes = self.nodes(ids, size=size)
        except ProofError as e:
            raise StoreError(f"store of size {size}: tree nodes missing ({e})") from None
        return CompactRange(size, hashes)

    def refresh(self) -> None:
        """Reload size and root from disk, after another process appended to the store."""
        with self._lock:
            self._range = self._load_range()

    # --- writing --------------------------------------------------------------------------

    def append_batch(
        self,
        entries: Sequence[Entry],
        *,
        note_for: Callable[[int, bytes], str] | None = None,
        expect_root: bytes | None = None,
        checkpoints: Sequence[str] = (),
    ) -> AppendResult:
        """Append entries in one transaction and return (first index, new size, new root).

        `note_for(size, root)`, if given, is called before commit and must return a signed
        checkpoint note for the new head; it is stored in the same transaction, and so are
        `checkpoints` (notes of this log, as for `store_checkpoint`: at most the size before
        the append, or the new head).
        With `expect_root`, nothing is written unless the new root equals it. Entries must
        be signed (see `ledger.entries.encode_entry`); this method does not check
        signatures. Raises FormatError, ProofError (unexpected root, or a checkpoint not of
        this log), StoreError; on any error, including one raised by note_for, the store is
        unchanged.
        """
        pending = self.prepare_append(entries)
        if expect_root is not None and pending.root != expect_root:
            got, want = differing_hex(pending.root, expect_root)
            raise ProofError(
                f"append of {len(entries)} entries at {pending.first_index}: new root "
                f"{got}, want {want}"
            )
        return self.commit_append(pending, note_for=note_for, checkpoints=checkpoints)

    def prepare_append(
        self, entries: Sequence[Entry], *, encoded: Sequence[bytes] | None = None
    ) -> PendingAppend:
        """Return the tree that appending entries would make, writing nothing.

        `encoded`, if given, must be the entries' canonical bytes (as `decode_entry`
        accepted them), which spares encoding them again. Raises FormatError (an unsigned
        entry) or StoreError (no entries, or not one encoding per entry).
        """
        if not entries:
            raise StoreError("append batch: got 0 entries, want at least 1")
        if encoded is None:
            encoded = [encode_entry(e) for e in entries]
        elif len(encoded) != len(entries):
            raise StoreError(f"append batch: got {len(encoded)} encodings, want {len(entries)}")
        encoded = tuple(encoded)
        with self._lock:
            rng = self._range.copy()
        first = rng.size
        nodes: list[tuple[int, int, bytes]] = []
        for data in encoded:
            nodes.extend(rng.append(leaf_hash(data)))
        return PendingAppend(first, encoded, tuple(nodes), rng, rng.root())

    def commit_append(
        self,
        pending: PendingAppend,
        *,
        note_for: Callable[[int, bytes], str] | None = None,
        checkpoints: Sequence[str] = (),
    ) -> AppendResult:
        """Write a prepared append in one transaction (see `append_batch`).

        Requires that nothing was appended since `prepare_append`; raises StoreError
        otherwise, and FormatError, ProofError or StoreError as `append_batch` does.
        """
        first, size = pending.first_index, pending.tree.size
        self._check_writable()
        with self._lock:
            if self._range.size != first:
                raise StoreError(
                    f"append at {first}: the store holds {self._range.size} entries now, "
                    "want no append between prepare and commit"
                )
            with transaction(self._conn):
                if self._disk_size() != first:
                    raise StoreError(
                        f"store size on disk: got {self._disk_size()}, want {first} "
                        "(another writer?)"
                    )
                self._conn.executemany(
                    "INSERT INTO entries (idx, data) VALUES (?, ?)",
                    ((first + i, data) for i, data in enumerate(pending.encoded)),
                )
                self._conn.executemany(
                    "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", pending.nodes
                )
                if note_for is not None:
                    note = note_for(size, pending.root)
                    self._put_checkpoint(note, size, pending.root)
                for note in checkpoints:
                    self._put_stored_checkpoint(note, size, pending.root)
            self._range = pending.tree.copy()
            return AppendResult(first, size, pending.root)

    def store_checkpoint(self, note: str) -> Checkpoint:
        """Store a signed checkpoint note, merging signatures into one already stored.

        The checkpoint must describe this log: size <= the store's size and the root at that
        size. Signatures are not verified here (see `ledger.quorum.Quorum`). Raises
        FormatError, ProofError (wrong root) or StoreError.
        """
        return self.store_checkpoints([note])[0]

    def store_checkpoints(self, notes: Sequence[str]) -> list[Checkpoint]:
        """Store several notes as `store_checkpoint` does, in one transaction."""
        self._check_writable()
        with self._lock, transaction(self._conn):
            return [self._put_stored_checkpoint(n, self.size, self.root) for n in notes]

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.path}: opened read-only, want a writable store")

    def _put_stored_checkpoint(self, note: str, size: int, root: bytes) -> Checkpoint:
        """Store a note of this log, whose head (being written) is `size` with `root`."""
        checkpoint = Checkpoint.parse(parse_note(note).text)
        if not 0 <= checkpoint.size <= size:
            raise ProofError(f"tree size: got {checkpoint.size}, want 0..{size}")
        at = root if checkpoint.size == size else self.root_at(checkpoint.size)
        return self._put_checkpoint(note, checkpoint.size, at)

    def _put_checkpoint(self, note: str, size: int, root: bytes) -> Checkpoint:
        parsed = parse_note(note)
        checkpoint = Checkpoint.parse(parsed.text)
        if checkpoint.size != size:
            raise ProofError(f"checkpoint: got size {checkpoint.size}, want size {size}")
        if checkpoint.root != root:
            got, want = differing_hex(checkpoint.root, root)
            raise ProofError(f"checkpoint {size}: got root {got}, want {want}")
        row = self._conn.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        if row is not None:
            stored = parse_note(row[0])
            if stored.text != parsed.text:
                raise StoreError(f"checkpoint {size}: got a different note text than stored")
            note = stored.with_signatures(*parsed.signatures).format()
        self._conn.execute(
            "INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?, ?)", (size, note)
        )
        return checkpoint

    # --- reading --------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Return the number of entries."""
        return self._range.size

    @property
    def root(self) -> bytes:
        """Return the current root hash."""
        return self._range.root()

    def root_at(self, size: int) -> bytes:
        """Return the root of the first `size` entries. Raises ProofError if size is too big."""
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size: got {size}, want 0..{self.size}")
        return fold_right(self.nodes(range_nodes(0, size))) if size else EMPTY_ROOT

    def entry_bytes(self, index: int) -> bytes:
        """Return the stored bytes of entry `index`. Raises StoreError if out of range."""
        with self._lock:
            row = self._conn.execute(
                "SELECT CAST(data AS BLOB) FROM entries WHERE idx = ?", (index,)
            ).fetchone()
        if row is None:
            raise StoreError(f"entry index: got {index}, want 0..{self.size - 1}")
        return bytes(row[0])

    def entry(self, index: int) -> Entry:
        """Return entry `index`, decoded. Raises StoreError or FormatError."""
        return decode_entry(self.entry_bytes(index))

    def entries_bytes(self, start: int, end: int) -> list[bytes]:
        """Return the bytes of entries [start, end) (e.g. to send to a mirror)."""
        if not 0 <= start <= end <= self.size:
            raise StoreError(f"entry range: got [{start}, {end}), want within [0, {self.size})")
        with self._lock:
            rows = self._conn.execute(
                "SELECT CAST(data AS BLOB) FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def iter_entries(self, chunk: int = 4096) -> Iterator[tuple[int, bytes]]:
        """Yield (index, bytes) for every stored row in index order, as stored."""
        last = -1
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT idx, CAST(data AS BLOB) FROM entries WHERE idx > ? "
                    "ORDER BY idx LIMIT ?",
                    (last, chunk),
                ).fetchall()
            if not rows:
                return
            for idx, data in rows:
                yield int(idx), bytes(data)
            last = int(rows[-1][0])

    def nodes(self, ids: Sequence[NodeID], size: int | None = None) -> list[bytes]:
        """Return stored perfect-subtree hashes (see ledger.merkle.NodeSource).

        Every node must be complete within `size` (default: the store's size). Raises
        ProofError otherwise.
        """
        limit = self.size if size is None else size
        for level, index in ids:
            if level < 0 or index < 0 or (index + 1) << level > limit:
                raise ProofError(f"node ({level}, {index}): not in a tree of size {limit}")
        if not ids:
            return []
        wanted = sorted(set(ids))
        rows = []
        with self._lock:
            for start in range(0, len(wanted), _NODES_PER_QUERY):
                chunk = wanted[start : start + _NODES_PER_QUERY]
                params = [x for node in chunk for x in node]
                rows += self._conn.execute(nodes_query(len(chunk)), params).fetchall()
        found = {(int(lvl), int(idx)): bytes(h) for lvl, idx, h in rows}
        missing = [node for node in wanted if node not in found]
        if missing:
            raise ProofError(f"node {missing[0]}: missing from the store")
        return [found[node] for node in ids]

    def nodes_at_level(self, level: int, lo: int, hi: int) -> dict[int, bytes]:
        """Return {index: hash} of stored nodes at `level` with lo <= index < hi."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT idx, CAST(hash AS BLOB) FROM nodes "
                "WHERE level = ? AND idx >= ? AND idx < ?",
                (level, lo, hi),
            ).fetchall()
        return {int(i): bytes(h) for i, h in rows}

    def node_count(self) -> int:
        """Return the number of stored nodes (2·size - popcount(size) when intact)."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM nodes").fetchone()[0])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of entry `index` in the tree of `size` entries.

        Size defaults to the current size. Raises ProofError for out-of-range arguments.
        """
        return _proof.inclusion_proof(self, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return the consistency proof from size1 to size2 (default: current size)."""
        return _proof.consistency_proof(self, size1, self.size if size2 is None else size2)

    def checkpoint_note(self, size: int) -> str | None:
        """Return the stored note for a checkpoint of this size, if any."""
        with self._lock:
            row = self._conn.execute(
                "SELECT note FROM checkpoints WHERE size = ?", (size,)
            ).fetchone()
        return None if row is None else str(row[0])

    def latest_checkpoint(self) -> str | None:
        """Return the stored note of the largest checkpoint, if any."""
        with self._lock:
            row = self._conn.execute(
                "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def checkpoint_sizes(self) -> list[int]:
        """Return the sizes of every stored checkpoint, ascending."""
        with self._lock:
            rows = self._conn.execute("SELECT size FROM checkpoints ORDER BY size").fetchall()
        return [int(r[0]) for r in rows]

    def iter_checkpoints(self, newest_first: bool = False) -> Iterator[tuple[int, str]]:
        """Yield every stored (size, note) by size, reading a few notes at a time."""
        last = None
        while True:
            if newest_first:
                where, order = ("" if last is None else "WHERE size < ?"), "DESC"
            else:
                where, order = ("" if last is None else "WHERE size > ?"), "ASC"
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT size, note FROM checkpoints {where} ORDER BY size {order} LIMIT 64",
                    () if last is None else (last,),
                ).fetchall()
            if not rows:
                return
            for size, note in rows:
                yield int(size), str(note)
            last = int(rows[-1][0])

    def verify(self, keyring: KeyRing, quorum: Quorum) -> VerifyReport:
        """Recompute everything from the stored entries; see `ledger.audit.verify_store`."""
        from ledger.audit import verify_store  # audit reads the store; import here avoids a cycle

        return verify_store(self, keyring, quorum)

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
