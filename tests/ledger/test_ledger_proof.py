"""Tests for ledger.proof: generation against the RFC oracle, verification, tampering."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_oracle import Oracle

from ledger.errors import ProofError
from ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash
from ledger.proof import (
    consistency_proof,
    inclusion_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 300
ENTRIES = [i.to_bytes(2, "big") for i in range(MAX_SIZE)]
TREE = MerkleTree(ENTRIES)
ORACLE = Oracle(ENTRIES)


def b64(text: str) -> bytes:
    return base64.b64decode(text)


# --- Upstream vectors -------------------------------------------------------------------


def test_ct_eight_leaf_inclusion_and_consistency_proofs(vectors: dict[str, Any]) -> None:
    section = vectors["ct_8_leaf_tree"]
    tree = MerkleTree(bytes.fromhex(x) for x in section["leaf_inputs_hex"])
    roots = [bytes.fromhex(x) for x in section["root_by_size_hex"]]
    for v in section["inclusion_proofs"]:
        index, size = v["leaf_index"], v["tree_size"]
        want = [bytes.fromhex(x) for x in v["proof_hex"]]
        assert inclusion_proof(tree, index, size) == want
        verify_inclusion(tree.leaf_hash(index), index, size, want, roots[size])
    for v in section["consistency_proofs"]:
        size1, size2 = v["size1"], v["size2"]
        want = [bytes.fromhex(x) for x in v["proof_hex"]]
        assert consistency_proof(tree, size1, size2) == want
        verify_consistency(size1, size2, want, roots[size1], roots[size2])


def test_rfc_seven_leaf_example_paths(vectors: dict[str, Any]) -> None:
    """RFC 9162 §2.1.5 audit paths and consistency proofs, with the derived concrete hashes."""
    section = vectors["rfc6962_section_2_1_3_example"]
    concrete = section["concrete_instance_derived"]
    labels = {k: bytes.fromhex(v) for k, v in concrete["labels_hex"].items()}
    tree = MerkleTree(x.encode() for x in concrete["leaf_data_ascii"])
    assert tree.root().hex() == concrete["root_hex"]
    for leaf, names in section["audit_paths"].items():
        index = int(leaf[1:])
        assert inclusion_proof(tree, index, 7) == [labels[n] for n in names], leaf
    for size1, names in section["consistency_proofs_to_size_7"].items():
        assert consistency_proof(tree, int(size1), 7) == [labels[n] for n in names], size1


def _probe_inclusion(v: dict[str, Any]) -> None:
    proof = [b64(p) for p in v["proof"] or []]
    verify_inclusion(b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, b64(v["root"]))


def _probe_consistency(v: dict[str, Any]) -> None:
    proof = [b64(p) for p in v["proof"] or []]
    verify_consistency(v["size1"], v["size2"], proof, b64(v["root1"]), b64(v["root2"]))


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_transparency_dev_probes(vectors: dict[str, Any], kind: str) -> None:
    """Every probe fails iff wantErr (transparency-dev/merkle testdata, with tamper cases)."""
    check = _probe_inclusion if kind == "inclusion" else _probe_consistency
    probes = vectors["transparency_dev_probes"][kind]
    assert len(probes) == 98
    for v in probes:
        if v["wantErr"]:
            with pytest.raises(ProofError):
                check(v)
        else:
            check(v)


# --- Generation matches the RFC oracle --------------------------------------------------


def test_every_inclusion_proof_up_to_128_matches_oracle_and_verifies() -> None:
    for size in range(1, 129):
        root = ORACLE.root(size)
        for index in range(size):
            proof = inclusion_proof(TREE, index, size)
            assert proof == ORACLE.path(index, 0, size), (index, size)
            verify_inclusion(leaf_hash(ENTRIES[index]), index, size, proof, root)


def test_every_consistency_proof_up_to_96_matches_oracle_and_verifies() -> None:
    for size2 in range(1, 97):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(TREE, size1, size2)
            assert proof == ORACLE.proof(size1, size2), (size1, size2)
            verify_consistency(size1, size2, proof, ORACLE.root(size1), ORACLE.root(size2))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_proofs_up_to_300(case: tuple[int, int]) -> None:
    index, size = case
    proof = inclusion_proof(TREE, index, size)
    assert proof == ORACLE.path(index, 0, size)
    verify_inclusion(leaf_hash(ENTRIES[index]), index, size, proof, ORACLE.root(size))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_up_to_300(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = consistency_proof(TREE, size1, size2)
    assert proof == ORACLE.proof(size1, size2)
    verify_consistency(size1, size2, proof, ORACLE.root(size1), ORACLE.root(size2))


# --- Every single-bit change is rejected ------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _int_flips(value: int) -> list[int]:
    return [value ^ (1 << b) for b in range(max(value.bit_length(), 1) + 2)]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_rejects_every_single_bit_change(case: tuple[int, int]) -> None:
    index, size = case
    leaf = leaf_hash(ENTRIES[index])
    root = ORACLE.root(size)
    proof = inclusion_proof(TREE, index, size)
    for i, element in enumerate(proof):
        for bit in range(256):
            bad = [*proof[:i], _flip(element, bit), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, bad, root)
    for bit in range(256):
        with pytest.raises(ProofError):
            verify_inclusion(_flip(leaf, bit), index, size, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    for bad_index in _int_flips(index):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, bad_index, size, proof, root)
    for bad_size in _int_flips(size):
        # Size and root come together from a checkpoint: a proof may share its shape with
        # another size against the *same* root (see ledger.proof), never against the root
        # of a real tree of that size.
        if 0 < bad_size <= MAX_SIZE:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, bad_size, proof, ORACLE.root(bad_size))
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, [*proof, proof[0] if proof else root], root)
    if proof:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof[:-1], root)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_consistency_rejects_every_single_bit_change(case: tuple[int, int]) -> None:
    size1, size2 = case
    root1, root2 = ORACLE.root(size1), ORACLE.root(size2)
    proof = consistency_proof(TREE, size1, size2)
    for i, element in enumerate(proof):
        for bit in range(256):
            bad = [*proof[:i], _flip(element, bit), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_consistency(size1, size2, bad, root1, root2)
    for bit in range(256):
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, _flip(root1, bit), root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, _flip(root2, bit))
    # Each size is checked with its own real root (see the note on sizes in ledger.proof).
    for bad1 in _int_flips(size1):
        if 0 <= bad1 <= MAX_SIZE:
            with pytest.raises(ProofError):
                verify_consistency(bad1, size2, proof, ORACLE.root(bad1), root2)
    for bad2 in _int_flips(size2):
        if 0 <= bad2 <= MAX_SIZE:
            with pytest.raises(ProofError):
                verify_consistency(size1, bad2, proof, root1, ORACLE.root(bad2))
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof[:-1], root1, root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, [*proof, proof[-1]], root1, root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root2, root1)


# --- Edge cases the RFC leaves open (documented in ledger.proof) ------------------------


def test_a_proof_shares_its_shape_with_another_size_only_for_the_same_root() -> None:
    """Documents the limit stated in ledger.proof: size is bound by the checkpoint."""
    proof = inclusion_proof(TREE, 0, 5)
    leaf = leaf_hash(ENTRIES[0])
    verify_inclusion(leaf, 0, 7, proof, ORACLE.root(5))  # same root: same computation
    with pytest.raises(ProofError):
        verify_inclusion(leaf, 0, 7, proof, ORACLE.root(7))


def test_nothing_is_included_in_the_empty_tree() -> None:
    with pytest.raises(ProofError, match="want 0 <= index < size 0"):
        verify_inclusion(leaf_hash(b""), 0, 0, [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="want 0 <= index < size 0"):
        inclusion_proof(TREE, 0, 0)


def test_index_at_or_beyond_size_is_rejected() -> None:
    proof = inclusion_proof(TREE, 4, 5)
    with pytest.raises(ProofError, match="index got 5, want 0 <= index < size 5"):
        verify_inclusion(leaf_hash(ENTRIES[4]), 5, 5, proof, ORACLE.root(5))
    with pytest.raises(ProofError, match="index got -1"):
        verify_inclusion(leaf_hash(ENTRIES[4]), -1, 5, proof, ORACLE.root(5))
    with pytest.raises(ProofError, match="index got 9"):
        inclusion_proof(TREE, 9, 9)


def test_wrong_hash_lengths_are_rejected() -> None:
    leaf = leaf_hash(ENTRIES[2])
    proof = inclusion_proof(TREE, 2, 5)
    root = ORACLE.root(5)
    with pytest.raises(ProofError, match="leaf hash: got 31 bytes, want 32"):
        verify_inclusion(leaf[:31], 2, 5, proof, root)
    with pytest.raises(ProofError, match="root: got 33 bytes, want 32"):
        verify_inclusion(leaf, 2, 5, proof, root + b"\x00")
    with pytest.raises(ProofError, match="element 1: got 0 bytes, want 32"):
        verify_inclusion(leaf, 2, 5, [proof[0], b"", *proof[2:]], root)
    cproof = consistency_proof(TREE, 3, 5)
    with pytest.raises(ProofError, match="root1: got 64 bytes"):
        verify_consistency(3, 5, cproof, ORACLE.root(3) * 2, root)
    with pytest.raises(ProofError, match="element 0: got 16 bytes"):
        verify_consistency(3, 5, [cproof[0][:16], *cproof[1:]], ORACLE.root(3), root)


def test_wrong_proof_length_names_both_lengths() -> None:
    proof = inclusion_proof(TREE, 2, 5)
    with pytest.raises(ProofError, match="inclusion proof length: got 2, want 3"):
        root_from_inclusion_proof(leaf_hash(ENTRIES[2]), 2, 5, proof[:2])


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    root = ORACLE.root(7)
    verify_consistency(7, 7, [], root, root)
    assert consistency_proof(TREE, 7, 7) == []
    with pytest.raises(ProofError, match="length: got 1, want 0"):
        verify_consistency(7, 7, [root], root, root)
    with pytest.raises(ProofError, match="at equal size 7"):
        verify_consistency(7, 7, [], root, ORACLE.root(6))


def test_consistency_from_size_zero_is_not_verifiable() -> None:
    assert consistency_proof(TREE, 0, 10) == []
    with pytest.raises(ProofError, match="size1 got 0, want > 0"):
        verify_consistency(0, 10, [], EMPTY_ROOT, ORACLE.root(10))
    with pytest.raises(ProofError, match="size1 got 0, want > 0"):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)


def test_size1_beyond_size2_is_rejected() -> None:
    with pytest.raises(ProofError, match="size1 got 6, want <= size2 5"):
        verify_consistency(6, 5, [], ORACLE.root(6), ORACLE.root(5))
    with pytest.raises(ProofError, match="size1 got 6, want 0 <= size1 <= 5"):
        consistency_proof(TREE, 6, 5)


def test_generation_beyond_the_tree_fails() -> None:
    small = MerkleTree(ENTRIES[:5])
    with pytest.raises(ProofError, match="not in a tree of size 5"):
        inclusion_proof(small, 0, 8)
    with pytest.raises(ProofError, match="not in a tree of size 5"):
        consistency_proof(small, 3, 8)
