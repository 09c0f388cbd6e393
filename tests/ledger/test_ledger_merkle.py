"""Tests for ledger.merkle: hashing, compact ranges and the in-memory tree."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_oracle import Oracle, is_valid_subtree

from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    NodeID,
    compact_range_nodes,
    fold_right,
    leaf_hash,
    node_hash,
    range_nodes,
)
from ledger.proof import consistency_proof, inclusion_proof


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- Known answers derived by hand from the RFC 9162 §2.1.1 text -------------------------


def test_empty_tree_is_hash_of_empty_string() -> None:
    assert MerkleTree().root() == sha(b"") == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


def test_single_leaf_root_is_its_leaf_hash() -> None:
    assert MerkleTree([b"d0"]).root() == sha(b"\x00d0")


def test_two_and_three_leaves_follow_the_split_rule() -> None:
    a, b, c = (sha(b"\x00" + d) for d in (b"d0", b"d1", b"d2"))
    assert MerkleTree([b"d0", b"d1"]).root() == sha(b"\x01" + a + b)
    # k = 2 for n = 3: the left subtree is the first two leaves.
    assert MerkleTree([b"d0", b"d1", b"d2"]).root() == sha(b"\x01" + sha(b"\x01" + a + b) + c)


def test_rfc_seven_leaf_figure() -> None:
    """RFC 9162 §2.1.5 figure: root = H(k, l), k = H(g, h), l = H(i, j), j = d6."""
    leaves = [f"d{i}".encode() for i in range(7)]
    a, b, c, d, e, f, j = (sha(b"\x00" + x) for x in leaves)
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, ell = node_hash(g, h), node_hash(i, j)
    tree = MerkleTree(leaves)
    assert tree.root() == node_hash(k, ell)
    assert tree.root(4) == k
    assert tree.root(6) == node_hash(k, i)


def test_rfc_eight_leaf_balanced_tree() -> None:
    leaves = [bytes([i]) for i in range(8)]
    hs = [sha(b"\x00" + x) for x in leaves]
    level1 = [node_hash(hs[i], hs[i + 1]) for i in range(0, 8, 2)]
    level2 = [node_hash(level1[0], level1[1]), node_hash(level1[2], level1[3])]
    assert MerkleTree(leaves).root() == node_hash(level2[0], level2[1])


# --- Upstream vectors -------------------------------------------------------------------


def test_rfc6962_hasher_vectors(vectors: dict[str, Any]) -> None:
    section = vectors["rfc6962_hasher"]
    for v in section["vectors"]:
        want = bytes.fromhex(v["want_hex"])
        if "leaf_hex" in v:
            assert leaf_hash(bytes.fromhex(v["leaf_hex"])) == want, v["desc"]
        elif "left_hex" in v:
            got = node_hash(bytes.fromhex(v["left_hex"]), bytes.fromhex(v["right_hex"]))
            assert got == want, v["desc"]
        else:
            assert want == EMPTY_ROOT == MerkleTree().root(), v["desc"]
    more = section["more_vectors_google_certificate_transparency_python"]
    assert leaf_hash(bytes.fromhex(more["leaf"]["leaf_hex"])).hex() == more["leaf"]["want_hex"]
    node = more["node"]
    got = node_hash(bytes.fromhex(node["left_hex"]), bytes.fromhex(node["right_hex"]))
    assert got.hex() == node["want_hex"]


def test_ct_eight_leaf_tree_nodes_and_roots(vectors: dict[str, Any]) -> None:
    section = vectors["ct_8_leaf_tree"]
    leaves = [bytes.fromhex(x) for x in section["leaf_inputs_hex"]]
    tree = MerkleTree(leaves)
    for level, row in enumerate(section["node_hashes_by_level_hex"]):
        ids = [(level, i) for i in range(len(row))]
        assert [h.hex() for h in tree.nodes(ids)] == row
    rng = CompactRange()
    for size, want in enumerate(section["root_by_size_hex"]):
        assert tree.root(size).hex() == want
        assert rng.root().hex() == want
        assert MerkleTree(leaves[:size]).root().hex() == want
        if size < len(leaves):
            rng.append(leaf_hash(leaves[size]))


def test_go_sumdb_record_hash(vectors: dict[str, Any]) -> None:
    want = base64.b64decode(vectors["go_sumdb_tlog_goldens"]["record_hash_of_hello_world_b64"])
    assert leaf_hash(b"hello world") == want


def test_tessera_roots_and_level0_tile(vectors: dict[str, Any]) -> None:
    section = vectors["tessera_tiled_log_testdata"]
    entries = [e.encode() for e in section["entries_ascii_in_order"]]
    tree = MerkleTree(entries)
    for size_text, note in section["checkpoints"].items():
        root_line = note.split("\n")[2]
        assert base64.b64decode(root_line) == tree.root(int(size_text))
    # Level-0 tile: concatenated leaf hashes; entry bundle: uint16-BE length-prefixed entries.
    tile = bytes.fromhex(section["tile_0_000.p_15_hex"])
    assert tile == b"".join(tree.nodes([(0, i) for i in range(15)]))
    bundle = bytes.fromhex(section["tile_entries_000.p_15_hex"])
    decoded = []
    while bundle:
        n = int.from_bytes(bundle[:2], "big")
        decoded.append(bundle[2 : 2 + n])
        bundle = bundle[2 + n :]
    assert decoded == entries


class _OffsetSource:
    """Exposes the subtree [start, end) of a tree as a tree of its own (start aligned)."""

    def __init__(self, tree: MerkleTree, start: int) -> None:
        self.tree = tree
        self.start = start

    def nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        return self.tree.nodes([(lvl, i + (self.start >> lvl)) for lvl, i in ids])


def test_merkle_tree_certs_accumulated_vectors(vectors: dict[str, Any]) -> None:
    """draft-ietf-plants-merkle-tree-certs subtree vectors, via transparency-dev/merkle.

    Subtree hashes and subtree inclusion proofs come from the library (a valid subtree is
    exactly what `range_nodes` decomposes); subtree consistency proofs with start > 0 are an
    MTC notion the ledger does not need, so those come from the oracle, and the library's
    consistency proofs are checked against the start == 0 lines.
    """
    section = vectors["merkle_tree_certs_accumulated_vectors"]
    want = {v["name"]: v["want_sha256_hex"] for v in section["vectors"]}
    d = [bytes([i]) for i in range(130)]
    tree = MerkleTree(d)
    oracle = Oracle(d)

    def subtree_hash(start: int, end: int) -> bytes:
        if start == end:
            return EMPTY_ROOT
        return fold_right(tree.nodes(range_nodes(start, end)))

    valid = [(s, e) for e in range(131) for s in range(e + 1) if is_valid_subtree(s, e)]

    lines = [f"[{s}, {e}) {subtree_hash(s, e).hex()}\n" for s, e in valid]
    assert sha("".join(lines).encode()).hex() == want["subtree_hash"]

    lines = []
    for s, e in valid:
        source = _OffsetSource(tree, s)
        for index in range(s, e):
            proof = inclusion_proof(source, index - s, e - s)
            lines.append(f"{index} [{s}, {e})" + "".join(" " + h.hex() for h in proof) + "\n")
    assert sha("".join(lines).encode()).hex() == want["subtree_inclusion"]

    lines = []
    for n in range(131):
        for s, e in valid:
            if e > n:
                continue
            proof = oracle.subtree_proof(s, e, n)
            if s == 0 and e > 0:
                assert consistency_proof(tree, e, n) == proof
            lines.append(f"[{s}, {e}) {n}" + "".join(" " + h.hex() for h in proof) + "\n")
    assert sha("".join(lines).encode()).hex() == want["subtree_consistency"]


# --- Compact range and tree against the oracle ------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=300))
def test_roots_match_oracle_at_every_size(entries: list[bytes]) -> None:
    oracle = Oracle(entries)
    tree = MerkleTree()
    rng = CompactRange()
    for i, entry in enumerate(entries):
        assert rng.root() == oracle.root(i) == tree.root()
        tree.append(entry)
        rng.append(leaf_hash(entry))
    assert rng.root() == oracle.root(len(entries)) == tree.root()
    for size in range(len(entries) + 1):
        assert tree.root(size) == oracle.root(size)


def test_compact_range_append_reports_completed_nodes() -> None:
    rng = CompactRange()
    tree = MerkleTree()
    for i in range(40):
        h = leaf_hash(bytes([i]))
        done = rng.append(h)
        tree.append_leaf_hash(h)
        assert next((lvl, idx) for lvl, idx, _ in done) == (0, i)
        for lvl, idx, digest in done:
            assert tree.nodes([(lvl, idx)]) == [digest]
        assert rng.hashes == tuple(tree.nodes(compact_range_nodes(rng.size)))
        # Rebuilding from the stored nodes gives the same state.
        assert CompactRange(rng.size, rng.hashes).root() == rng.root()


def test_compact_range_rejects_wrong_shape() -> None:
    with pytest.raises(ProofError, match="got 1 hashes, want 2"):
        CompactRange(3, [EMPTY_ROOT])
    with pytest.raises(ProofError, match="not 32 bytes"):
        CompactRange(1, [b"short"])


def test_tree_rejects_out_of_range_requests() -> None:
    tree = MerkleTree([b"a", b"b", b"c"])
    with pytest.raises(ProofError, match=r"tree size: got 4, want 0\.\.3"):
        tree.root(4)
    with pytest.raises(ProofError, match=r"node \(1, 1\): not in a tree of size 3"):
        tree.nodes([(1, 1)])
    with pytest.raises(ProofError, match="leaf hash: got 3 bytes, want 32"):
        tree.append_leaf_hash(b"abc")
