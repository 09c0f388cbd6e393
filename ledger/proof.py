"""Merkle inclusion and consistency proofs: generation and verification (RFC 9162 §2.1.3-4).

Generation works on any `NodeSource` (an in-memory `MerkleTree` or a `LedgerStore`): it
first plans which perfect subtrees the proof needs, fetches them in one call, then folds the
right-edge ones. A proof for a tree of n leaves reads at most about 2·log2(n) stored hashes.

Verification follows the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms, after checking the proof
length exactly against the length the sizes imply. Edge cases the RFC leaves open, decided as
transparency-dev/merkle does (the conformance vectors in tests/ledger/data pin them down):

- every hash that is hashed (leaf hash, proof elements, roots compared with a computed
  root) must be exactly 32 bytes;
- inclusion: index >= size fails, so nothing is included in the empty tree;
- consistency with size1 == size2: the proof must be empty and the roots equal; nothing is
  hashed, so the roots are compared as given (upstream accepts equal 12-byte roots here);
- consistency with size1 == 0 fails verification. Every tree extends the empty tree, so
  there is nothing to prove; callers that accept an empty old tree (a witness's first
  checkpoint) must handle that case before calling. Generation returns an empty proof.

A proof does not bind the tree size on its own: the same hashes can verify for another size
against the *same* root (the verifier walks an identical left/right pattern), though never
against the root of a real tree of that other size. Take size and root together from one
verified checkpoint, as `ledger.receipt` and `ledger.witness` do.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import ProofError, differing_hex
from ledger.merkle import HASH_SIZE, NodeSource, fold_right, node_hash, range_nodes, split_point

Range = tuple[int, int]


def _inclusion_ranges(index: int, size: int) -> list[Range]:
    """Return the subtree ranges of PATH(index, D[size]), leaf's sibling first."""
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + split_point(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[Range]:
    """Return the subtree ranges of PROOF(size1, D[size2]). Requires 0 < size1 < size2."""
    ranges: list[Range] = []
    start, end = 0, size2
    known = True  # the verifier already holds MTH(D[start:end]) when the window is the old tree
    while size1 != end:
        mid = start + split_point(end - start)
        if size1 <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
            known = False
    if not known:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _hash_ranges(source: NodeSource, ranges: Sequence[Range]) -> list[bytes]:
    """Return MTH of each range, fetching every stored node in one call."""
    plans = [range_nodes(start, end) for start, end in ranges]
    hashes = source.nodes([node for plan in plans for node in plan])
    out = []
    pos = 0
    for plan in plans:
        out.append(fold_right(hashes[pos : pos + len(plan)]))
        pos += len(plan)
    return out


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """Return the inclusion proof of leaf `index` in the tree of the first `size` leaves.

    Requires 0 <= index < size and size <= the source's size. Raises ProofError.
    """
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: index got {index}, want 0 <= index < size {size}")
    return _hash_ranges(source, _inclusion_ranges(index, size))


def consistency_proof(source: NodeSource, size1: int, size2: int) -> list[bytes]:
    """Return the proof that the tree of size2 leaves extends the tree of size1 leaves.

    Requires 0 <= size1 <= size2 <= the source's size. The proof is empty when size1 is 0 or
    size1 == size2. Raises ProofError.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"consistency proof: size1 got {size1}, want 0 <= size1 <= {size2}")
    if size1 == 0 or size1 == size2:
        return []
    return _hash_ranges(source, _consistency_ranges(size1, size2))


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """Return (inner, border): proof hashes below and on the tree's right border."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what}: got {len(value)} bytes, want {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(proof):
        _check_hash(h, f"{what} element {i}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2).

    Requires 0 <= index < size, 32-byte hashes and the exact proof length for (index, size).
    Raises ProofError otherwise.
    """
    _check_hash(leaf_hash, "inclusion proof: leaf hash")
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: index got {index}, want 0 <= index < size {size}")
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"inclusion proof length: got {len(proof)}, want {inner + border}")
    _check_proof_hashes(proof, "inclusion proof")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's final test
        raise ProofError(f"inclusion proof: got {len(proof)} hashes, too few for size {size}")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`.

    Raises ProofError when it is not, or when an input is malformed.
    """
    _check_hash(root, "inclusion proof: root")
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if got != root:
        raise ProofError(
            f"inclusion proof of index {index} in size {size}: computed root "
            "{}, want {}".format(*differing_hex(got, root))
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Verify that the tree (size2, root2) extends the tree (size1, root1) (RFC 9162 §2.1.4.2).

    Requires 0 < size1 <= size2 (size1 == 0 always fails, see the module docstring), 32-byte
    hashes and the exact proof length for the sizes. Raises ProofError.
    """
    if size1 > size2:
        raise ProofError(f"consistency proof: size1 got {size1}, want <= size2 {size2}")
    if size1 <= 0:
        raise ProofError(
            f"consistency proof: size1 got {size1}, want > 0 (the empty tree needs no proof)"
        )
    if size1 == size2:
        if proof:
            raise ProofError(f"consistency proof length: got {len(proof)}, want 0")
        if root1 != root2:
            raise ProofError(
                f"consistency proof at equal size {size1}: root2 got {{}}, want root1 {{}}".format(
                    *differing_hex(root2, root1)
                )
            )
        return
    _check_hash(root1, "consistency proof: root1")
    _check_hash(root2, "consistency proof: root2")
    level = (size1 & -size1).bit_length() - 1  # the old tree's largest right-edge perfect subtree
    index = (size1 - 1) >> level
    inner, border = _inclusion_shape(index, ((size2 - 1) >> level) + 1)
    want = inner + border + (1 if index else 0)
    if len(proof) != want:
        raise ProofError(f"consistency proof length: got {len(proof)}, want {want}")
    _check_proof_hashes(proof, "consistency proof")

    path = list(proof)
    if index == 0:  # size1 is a power of two: the old root is itself a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's final test
        raise ProofError(f"consistency proof: got {len(proof)} hashes, too few")
    if fr != root1:
        raise ProofError(
            f"consistency proof {size1}->{size2}: computed root1 {{}}, want {{}}".format(
                *differing_hex(fr, root1)
            )
        )
    if sr != root2:
        raise ProofError(
            f"consistency proof {size1}->{size2}: computed root2 {{}}, want {{}}".format(
                *differing_hex(sr, root2)
            )
        )
