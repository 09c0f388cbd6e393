"""A deliberately naive reference for RFC 9162 Merkle trees, used as a test oracle.

Written straight from the recursive definitions in RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH)
and §2.1.4.1 (PROOF/SUBPROOF), and from the "Subtrees" section of
draft-ietf-plants-merkle-tree-certs (SUBTREE_PROOF/SUBTREE_SUBPROOF). A list D[lo:hi] is
named by its bounds so that MTH can be memoised; otherwise each function is the RFC's
equation written in Python. It shares no code with `ledger`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Oracle:
    """RFC 9162 definitions over a fixed list of entries D."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.d = list(entries)
        self.mth = functools.cache(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        n = hi - lo
        if n == 0:
            return _h(b"")
        if n == 1:
            return _h(b"\x00" + self.d[lo])
        k = _k(n)
        return _h(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]) for 0 <= m < hi - lo (m relative to lo)."""
        n = hi - lo
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b) for 0 < m <= hi - lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) for 0 < m <= n."""
        return self.subproof(m, 0, n, True)

    def subtree_subproof(self, start: int, end: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBTREE_SUBPROOF(start, end, D[lo:hi], b), start/end relative to lo."""
        n = hi - lo
        if start == 0 and end == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if end <= k:
            return [*self.subtree_subproof(start, end, lo, lo + k, b), self.mth(lo + k, hi)]
        if k <= start:
            return [*self.subtree_subproof(start - k, end - k, lo + k, hi, b), self.mth(lo, lo + k)]
        # start < k < end happens only for start == 0 in a valid subtree.
        return [*self.subtree_subproof(0, end - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def subtree_proof(self, start: int, end: int, n: int) -> list[bytes]:
        """SUBTREE_PROOF(start, end, D[0:n]) (empty for an empty subtree)."""
        if start == end:
            return []
        return self.subtree_subproof(start, end, 0, n, True)


def is_valid_subtree(start: int, end: int) -> bool:
    """Whether [start, end) is a subtree in the MTC draft's sense."""
    if start > end:
        return False
    if start == end:
        return True
    ceil = 1
    while ceil < end - start:
        ceil *= 2
    return start % ceil == 0
