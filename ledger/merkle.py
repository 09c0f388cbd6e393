"""RFC 9162 (RFC 6962) Merkle tree hashing, compact ranges and an in-memory tree.

RFC 9162 §2.1.1 defines the Merkle Tree Hash of a list of n entries:

    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)
    MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))

where k is the largest power of two smaller than n. Every subtree that this recursion
produces is either *perfect* (2**level leaves starting at a multiple of 2**level) or sits on
the right edge and splits into perfect subtrees along the binary digits of its size. So any
MTH needed for a root or a proof is a right fold of at most 64 perfect-subtree hashes, and a
tree only ever needs to store perfect subtrees. A perfect subtree is named by a NodeID
(level, index): it covers leaves [index * 2**level, (index + 1) * 2**level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from ledger.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeID = tuple[int, int]
"""(level, index) of a perfect subtree; level 0 is a leaf."""


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """Return the largest power of two smaller than n. Requires n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeID]:
    """Return the perfect subtrees covering [start, end), largest (leftmost) first.

    Requires 0 <= start < end and [start, end) to be a subtree of the RFC recursion (start a
    multiple of the smallest power of two >= end - start), which holds for every range a root,
    inclusion proof or consistency proof of a tree starting at leaf 0 needs. MTH(D[start:end])
    is then `fold_right` of these nodes' hashes.
    """
    nodes: list[NodeID] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Return the hash of a right-edge subtree from its perfect parts, largest first.

    Requires at least one hash. Implements MTH for ranges decomposed by `range_nodes`.
    """
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


class NodeSource(Protocol):
    """Anything that can return stored perfect-subtree hashes (MerkleTree, LedgerStore)."""

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Return the hash of each perfect subtree in ids, in order.

        Requires every node to be complete in the source. Raises ProofError otherwise.
        """
        ...


class CompactRange:
    """The O(log n) state needed to append to a tree of n leaves and compute its root.

    Holds the hashes of the perfect subtrees covering [0, size), one per set bit of size,
    largest first (RFC 9162 §2.1.1 splits exactly along these).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        """Build a range of `size` leaves from its perfect-subtree hashes, largest first.

        Requires len(hashes) == popcount(size) and 32-byte hashes. Raises ProofError.
        """
        self._hashes = list(hashes)
        self._size = size
        if size < 0 or len(self._hashes) != size.bit_count():
            raise ProofError(
                f"compact range of size {size}: got {len(self._hashes)} hashes, "
                f"want {max(size, 0).bit_count()}"
            )
        if any(len(h) != HASH_SIZE for h in self._hashes):
            raise ProofError(f"compact range: got a hash that is not {HASH_SIZE} bytes")

    @property
    def size(self) -> int:
        """Return the number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Return the perfect-subtree hashes, largest first."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        """Return an independent copy."""
        return CompactRange(self._size, self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash and return every perfect subtree it completes.

        Returns (level, index, hash) triples from the leaf itself upwards, so a store can
        persist exactly the new nodes. Requires a 32-byte leaf hash.
        """
        index = self._size
        level = 0
        acc = leaf
        done = [(0, index, acc)]
        while index & 1:
            acc = node_hash(self._hashes.pop(), acc)
            index >>= 1
            level += 1
            done.append((level, index, acc))
        self._hashes.append(acc)
        self._size += 1
        return done

    def root(self) -> bytes:
        """Return MTH of the covered leaves (SHA-256 of nothing for the empty tree)."""
        if not self._hashes:
            return EMPTY_ROOT
        return fold_right(self._hashes)


def compact_range_nodes(size: int) -> list[NodeID]:
    """Return the NodeIDs a CompactRange of `size` leaves holds, largest first."""
    return range_nodes(0, size) if size else []


class MerkleTree:
    """An in-memory append-only Merkle tree that keeps every perfect subtree.

    Memory is about 2n hashes; roots and proofs for any earlier size cost O(log n) hashing.
    For large logs use `ledger.store.LedgerStore`, which keeps the same nodes in SQLite.
    """

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        """Build a tree holding `entries` (raw entry bytes, hashed as leaves)."""
        self._levels: list[list[bytes]] = [[]]
        self._range = CompactRange()
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        """Return the number of leaves."""
        return self._range.size

    def append(self, entry: bytes) -> int:
        """Append an entry and return its index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a precomputed 32-byte leaf hash and return its index."""
        if len(leaf) != HASH_SIZE:
            raise ProofError(f"leaf hash: got {len(leaf)} bytes, want {HASH_SIZE}")
        index = self._range.size
        for level, _, h in self._range.append(leaf):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(h)
        return index

    def leaf_hash(self, index: int) -> bytes:
        """Return the leaf hash at index. Requires 0 <= index < size."""
        return self.nodes([(0, index)])[0]

    def root(self, size: int | None = None) -> bytes:
        """Return MTH of the first `size` leaves (default: all). Requires 0 <= size <= self.size."""
        if size is None:
            return self._range.root()
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size: got {size}, want 0..{self.size}")
        if size == 0:
            return EMPTY_ROOT
        return fold_right(self.nodes(range_nodes(0, size)))

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Return stored perfect-subtree hashes; see NodeSource. Raises ProofError."""
        out = []
        for level, index in ids:
            if level < 0 or index < 0 or level >= len(self._levels):
                raise ProofError(f"node ({level}, {index}): not in a tree of size {self.size}")
            row = self._levels[level]
            if index >= len(row):
                raise ProofError(f"node ({level}, {index}): not in a tree of size {self.size}")
            out.append(row[index])
        return out
