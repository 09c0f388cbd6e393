"""Full verification of a stored ledger, recomputed from the entries alone.

`verify_store` reads every entry in index order and checks, stopping at the first problem:

1. indices are contiguous from 0;
2. each entry decodes canonically and every author signature verifies against the key ring;
3. each stored tree node (leaf hashes and every perfect subtree) equals the hash recomputed
   from the entries, and no extra nodes are stored;
4. every stored checkpoint's root equals the root recomputed at its size;
5. the latest checkpoint carries the log's signature and no known signature fails; the
   report gives the latest size that a quorum of witnesses cosigned.

The report names the first bad index and what was wrong with it; it never contains entry
contents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.checkpoint import Checkpoint
from ledger.entries import decode_entry, verify_entry
from ledger.errors import LedgerError, QuorumError, differing_hex
from ledger.keyring import KeyRing
from ledger.merkle import CompactRange, leaf_hash
from ledger.note import parse_note
from ledger.quorum import Quorum

if TYPE_CHECKING:
    from ledger.store import LedgerStore

_CHUNK = 4096


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a full verification.

    `ok` is False exactly when `problem` is set; `first_bad_index` is the first entry that
    is missing, malformed or badly signed, or the first entry covered by a bad stored node or
    checkpoint. `cosigned_size` is the largest checkpoint that meets the quorum (None if
    none does).
    """

    ok: bool
    size: int
    root: bytes
    checkpoint_size: int | None
    cosigned_size: int | None
    first_bad_index: int | None = None
    problem: str | None = None


class _Problem(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class _Audit:
    """One pass over the entries, recomputing leaves, nodes and checkpoint roots."""

    def __init__(self, store: LedgerStore, keyring: KeyRing) -> None:
        self.store = store
        self.keyring = keyring
        self.rng = CompactRange()
        self.sizes = store.checkpoint_sizes()
        self.pending = list(reversed(self.sizes))  # smallest last, popped as we grow
        self.signed_size = 0  # entries below this size matched a checkpoint's root

    def run(self) -> None:
        """Check everything but signatures on checkpoints. Raises _Problem."""
        self.check_checkpoints()
        rows: list[tuple[int, bytes]] = []
        for row in self.store.iter_entries(_CHUNK):
            rows.append(row)
            if len(rows) == _CHUNK:
                self.check_chunk(rows)
                rows = []
        if rows:
            self.check_chunk(rows)
        size = self.rng.size
        want = 2 * size - size.bit_count()
        if self.store.node_count() != want:
            raise _Problem(size, f"stored tree nodes: got {self.store.node_count()}, want {want}")
        if self.pending:
            extra = self.pending[-1]
            raise _Problem(size, f"checkpoint {extra}: beyond the log of {size} entries")

    def check_chunk(self, rows: list[tuple[int, bytes]]) -> None:
        lo, hi = rows[0][0], rows[-1][0] + 1
        stored: dict[tuple[int, int], bytes] = {}
        for level in range(hi.bit_length() + 1):
            for i, h in self.store.nodes_at_level(level, lo >> level, hi >> level).items():
                stored[(level, i)] = h
        for index, data in rows:
            if index != self.rng.size:
                raise _Problem(self.rng.size, f"entry {self.rng.size}: missing (next is {index})")
            try:
                verify_entry(decode_entry(data), self.keyring)
            except LedgerError as e:
                raise _Problem(index, f"entry {index}: {e}") from None
            for level, i, h in self.rng.append(leaf_hash(data)):
                got = stored.get((level, i))
                if got != h:
                    start, end = i << level, (i + 1) << level
                    what = "leaf hash" if level == 0 else f"tree node ({level}, {i})"
                    have, want = ("missing", h.hex()) if got is None else differing_hex(got, h)
                    raise _Problem(
                        start,
                        f"stored {what} for entries [{start}, {end}): got {have}, "
                        f"want {want} recomputed from the entries",
                    )
            self.check_checkpoints()

    def check_checkpoints(self) -> None:
        while self.pending and self.pending[-1] == self.rng.size:
            size = self.pending.pop()
            note = self.store.checkpoint_note(size) or ""
            since = self.signed_size
            try:
                checkpoint = Checkpoint.parse(parse_note(note).text)
            except LedgerError as e:
                raise _Problem(max(size - 1, 0), f"checkpoint {size}: {e}") from None
            root = self.rng.root()
            if checkpoint.size != size:
                raise _Problem(
                    max(size - 1, 0),
                    f"checkpoint stored at size {size}: its note says size {checkpoint.size}, "
                    f"want {size}",
                )
            if checkpoint.root != root:
                # Entries and nodes agree but not with what was signed: some entry in
                # [since, size) was replaced by another validly signed one.
                got, want = differing_hex(checkpoint.root, root)
                raise _Problem(
                    since,
                    f"checkpoint {size}: got root {got}, want {want} recomputed "
                    f"from the entries; an entry in [{since}, {size}) is not the one signed",
                )
            self.signed_size = size

    def cosigned_size(self, quorum: Quorum) -> int | None:
        """Check the latest checkpoint's signatures; return the largest quorum-met size.

        Opens checkpoints newest first until one meets the quorum. Raises _Problem when a
        known signature fails or the latest checkpoint lacks the log's signature.
        """
        for size, note in self.store.iter_checkpoints(newest_first=True):
            try:
                quorum.verify(note)
                return size
            except QuorumError:
                continue
            except LedgerError as e:
                raise _Problem(max(size - 1, 0), f"checkpoint {size}: {e}") from None
        return None


def verify_store(store: LedgerStore, keyring: KeyRing, quorum: Quorum) -> VerifyReport:
    """Verify a stored ledger from its entries (see the module docstring).

    Never raises LedgerError: every problem goes into the report.
    """
    audit = _Audit(store, keyring)
    latest = audit.sizes[-1] if audit.sizes else None
    cosigned = None
    problem: _Problem | None = None
    try:
        audit.run()
        cosigned = audit.cosigned_size(quorum)
    except _Problem as p:
        problem = p
    return VerifyReport(
        ok=problem is None,
        size=audit.rng.size,
        root=audit.rng.root(),
        checkpoint_size=latest,
        cosigned_size=cosigned,
        first_bad_index=None if problem is None else problem.index,
        problem=None if problem is None else str(problem),
    )
