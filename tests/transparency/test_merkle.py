"""RFC 9162 section 2.1: the tree hash, PATH and PROOF against a direct recursive reading of the
definitions, and the two verification algorithms against honest and forged proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log.merkle import (
    EMPTY_ROOT,
    ConsistencyProofBuilder,
    ProofError,
    TreeBuilder,
    aligned_subtrees,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 70


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 2.1.1 defines it, over the entries themselves."""
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = _largest_power_of_two_below(n)
    return _sha256(b"\x01" + reference_mth(entries[:k]) + reference_mth(entries[k:]))


def reference_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(entries)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return reference_path(m, entries[:k]) + [reference_mth(entries[k:])]
    return reference_path(m - k, entries[k:]) + [reference_mth(entries[:k])]


def reference_subproof(m: int, entries: list[bytes], whole_old_tree: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if whole_old_tree else [reference_mth(entries)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return reference_subproof(m, entries[:k], whole_old_tree) + [reference_mth(entries[k:])]
    return reference_subproof(m - k, entries[k:], False) + [reference_mth(entries[:k])]


ENTRIES = [f"entry {i}".encode() for i in range(MAX_SIZE)]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]
ROOTS = [reference_mth(ENTRIES[:n]) for n in range(MAX_SIZE + 1)]


def _flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8 % len(value)] ^= 1 << (bit % 8)
    return bytes(flipped)


def test_hashes_are_domain_separated_sha256():
    assert leaf_hash(b"abc") == _sha256(b"\x00abc")
    assert node_hash(b"l" * 32, b"r" * 32) == _sha256(b"\x01" + b"l" * 32 + b"r" * 32)
    assert EMPTY_ROOT == _sha256(b"") == root([])


def test_root_and_tree_builder_match_the_rfc_definition_for_every_size_up_to_70():
    builder = TreeBuilder()
    assert builder.size == 0 and builder.root() == ROOTS[0]
    for n in range(1, MAX_SIZE + 1):
        builder.append(LEAVES[n - 1])
        assert builder.size == n
        assert builder.root() == ROOTS[n], n
        assert root(LEAVES[:n]) == ROOTS[n], n


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=MAX_SIZE), max_size=8))
def test_leaves_appended_as_aligned_subtrees_make_the_tree_of_the_leaves(chunk_sizes):
    builder, first = TreeBuilder(), 0
    for size in chunk_sizes:
        chunk = LEAVES[first : first + size]
        for subtree_root, leaves in aligned_subtrees(first, chunk):
            builder.append_subtree(subtree_root, leaves)
        first += len(chunk)
    assert builder.size == first and builder.root() == ROOTS[first]
    assert builder.subtrees == TreeBuilder.resume(first, builder.subtrees).subtrees


def test_a_subtree_that_is_not_aligned_or_not_full_is_refused():
    builder = TreeBuilder()
    builder.append(LEAVES[0])
    for size in (2, 3, 0):
        with pytest.raises(ValueError, match="cannot follow 1 leaves"):
            builder.append_subtree(ROOTS[2], size)
    builder.append_subtree(LEAVES[1], 1)
    assert builder.root() == ROOTS[2]


def test_tree_builder_refuses_a_leaf_that_is_not_a_hash():
    with pytest.raises(ValueError, match="32 bytes"):
        TreeBuilder().append(b"short")


def test_inclusion_proofs_are_the_rfc_path_and_verify_for_every_index_of_every_size():
    for n in range(1, MAX_SIZE + 1):
        for index in range(n):
            proof = inclusion_proof(LEAVES[:n], index)
            assert proof == reference_path(index, ENTRIES[:n]), (index, n)
            verify_inclusion(LEAVES[index], index, n, proof, ROOTS[n])


def test_consistency_proofs_are_the_rfc_proof_and_verify_for_every_pair_of_sizes():
    for n in range(1, MAX_SIZE + 1):
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES[:n], m)
            assert proof == (reference_subproof(m, ENTRIES[:n], True) if m < n else []), (m, n)
            verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)


def test_consistency_from_the_empty_tree_needs_no_hashes_and_the_empty_root():
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])
    with pytest.raises(ProofError, match="no hashes"):
        verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [LEAVES[0]])


def test_consistency_between_equal_sizes_needs_no_hashes_and_equal_roots():
    with pytest.raises(ProofError, match="no hashes"):
        verify_consistency(4, 4, ROOTS[4], ROOTS[4], [ROOTS[2]])
    with pytest.raises(ProofError, match="differ"):
        verify_consistency(4, 4, ROOTS[4], ROOTS[5], [])


def _inclusion_forgeries(index: int, n: int, proof: list[bytes]):
    """(what, leaf, index, size, proof, root) variations of an honest proof that must all fail."""
    leaf, good_root = LEAVES[index], ROOTS[n]
    for position in range(len(proof)):
        for bit in (0, 255):
            forged = list(proof)
            forged[position] = _flip_bit(forged[position], bit)
            yield f"hash {position} bit {bit} flipped", leaf, index, n, forged, good_root
        yield f"hash {position} dropped", leaf, index, n, proof[:position] + proof[position + 1 :], good_root
    yield "a hash added at the end", leaf, index, n, proof + [LEAVES[0]], good_root
    yield "a hash added at the start", leaf, index, n, [LEAVES[0]] + proof, good_root
    for other in (index - 1, index + 1):
        if 0 <= other < n:
            yield f"index {other} instead of {index}", leaf, other, n, proof, good_root
            yield f"the proof presented for leaf {other}", LEAVES[other], index, n, proof, good_root
    for size in (n - 1, n + 1, 2 * n):
        if index < size <= MAX_SIZE:
            # A proof binds the size only through the root (the checkpoint signs both): the
            # proof for another size must not pass for that size's root, nor, where that size
            # needs a proof of another length, for this root.
            if proof != inclusion_proof(LEAVES[:size], index):
                yield f"tree size {size} and its root", leaf, index, size, proof, ROOTS[size]
            if len(proof) != len(inclusion_proof(LEAVES[:size], index)):
                yield f"tree size {size} instead of {n}", leaf, index, size, proof, good_root
    yield "index equal to the size", leaf, n, n, proof, good_root
    yield "index beyond the size", leaf, n + 3, n, proof, good_root
    yield "another tree's root", leaf, index, n, proof, ROOTS[n - 1]
    yield "the leaf's data instead of its hash", _sha256(ENTRIES[index]), index, n, proof, good_root


def test_every_altered_inclusion_proof_fails():
    for n in range(1, MAX_SIZE + 1):
        for index in range(n):
            proof = inclusion_proof(LEAVES[:n], index)
            for what, leaf, claimed_index, size, forged, claimed_root in _inclusion_forgeries(index, n, proof):
                with pytest.raises(ProofError):
                    verify_inclusion(leaf, claimed_index, size, forged, claimed_root)
                    pytest.fail(f"size {n}, leaf {index}: {what} verified")


def _consistency_forgeries(m: int, n: int, proof: list[bytes]):
    """(what, old size, new size, old root, new root, proof) variations that must all fail."""
    for position in range(len(proof)):
        for bit in (0, 255):
            forged = list(proof)
            forged[position] = _flip_bit(forged[position], bit)
            yield f"hash {position} bit {bit} flipped", m, n, ROOTS[m], ROOTS[n], forged
        yield f"hash {position} dropped", m, n, ROOTS[m], ROOTS[n], proof[:position] + proof[position + 1 :]
    yield "a hash added at the end", m, n, ROOTS[m], ROOTS[n], proof + [LEAVES[0]]
    yield "a hash added at the start", m, n, ROOTS[m], ROOTS[n], [LEAVES[0]] + proof
    # As for inclusion, sizes are bound through the roots; see _inclusion_forgeries.
    for old_size in (m - 1, m + 1):
        if 0 < old_size < n and proof != consistency_proof(LEAVES[:n], old_size):
            yield f"old size {old_size} and its root", old_size, n, ROOTS[old_size], ROOTS[n], proof
    for new_size in (n - 1, n + 1, 2 * n):
        if m < new_size <= MAX_SIZE and proof != consistency_proof(LEAVES[:new_size], m):
            yield f"new size {new_size} and its root", m, new_size, ROOTS[m], ROOTS[new_size], proof
            if len(proof) != len(consistency_proof(LEAVES[:new_size], m)):
                yield f"new size {new_size} instead of {n}", m, new_size, ROOTS[m], ROOTS[n], proof
    yield "another old root", m, n, ROOTS[m - 1] if m > 1 else ROOTS[m + 1], ROOTS[n], proof
    yield "another new root", m, n, ROOTS[m], ROOTS[n - 1], proof
    yield "the roots swapped", m, n, ROOTS[n], ROOTS[m], proof
    yield "old size above the new size", n, m, ROOTS[n], ROOTS[m], proof
    yield "no hashes", m, n, ROOTS[m], ROOTS[n], []


def test_every_altered_consistency_proof_fails():
    for n in range(2, MAX_SIZE + 1):
        for m in range(1, n):
            proof = consistency_proof(LEAVES[:n], m)
            for what, old_size, new_size, old_root, new_root, forged in _consistency_forgeries(m, n, proof):
                with pytest.raises(ProofError):
                    verify_consistency(old_size, new_size, old_root, new_root, forged)
                    pytest.fail(f"{m} -> {n}: {what} verified")


def _checks_only_the_new_root(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """A partial verifier of the kind GHSA-672p-m5jq-mrh8 describes: it walks the consistency
    proof but compares only the recomputed NEW root, never the old one."""
    path = ([old_root] if old_size & (old_size - 1) == 0 else []) + list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    sr = path[0]
    for node in path[1:]:
        if fn & 1 or fn == sn:
            sr = node_hash(node, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sr == new_root


def test_a_proof_right_about_the_new_root_but_not_the_old_one_fails():
    """GHSA-672p-m5jq-mrh8: an honest proof presented with the root of a rewritten old tree
    passes a verifier that checks only half the proof; both roots must be checked."""
    rewritten = [leaf_hash(b"rewritten " + entry) for entry in ENTRIES]
    cases = 0
    for n in range(3, MAX_SIZE + 1):
        for m in range(3, n):
            if m & (m - 1) == 0:
                continue  # there the old root seeds the walk, so even a partial verifier sees it
            forged_old_root = root(rewritten[:m])
            proof = consistency_proof(LEAVES[:n], m)
            assert _checks_only_the_new_root(m, n, forged_old_root, ROOTS[n], proof), (m, n)
            with pytest.raises(ProofError, match="old root"):
                verify_consistency(m, n, forged_old_root, ROOTS[n], proof)
            cases += 1
    assert cases > 1000


def test_failures_say_what_failed():
    proof = inclusion_proof(LEAVES[:7], 3)
    with pytest.raises(ProofError, match="not below the tree size 7"):
        verify_inclusion(LEAVES[3], 7, 7, proof, ROOTS[7])
    with pytest.raises(ProofError, match="more than"):
        verify_inclusion(LEAVES[3], 3, 7, proof + [LEAVES[1]], ROOTS[7])
    with pytest.raises(ProofError, match="fewer than"):
        verify_inclusion(LEAVES[3], 3, 7, proof[:-1], ROOTS[7])
    with pytest.raises(ProofError, match="another root"):
        verify_inclusion(LEAVES[4], 3, 7, proof, ROOTS[7])
    with pytest.raises(ProofError, match="proof hash 2 is not a 32-byte hash"):
        verify_inclusion(LEAVES[3], 3, 7, [proof[0], b"short", proof[2]], ROOTS[7])
    with pytest.raises(ProofError, match="non-negative"):
        verify_inclusion(LEAVES[3], -1, 7, proof, ROOTS[7])
    consistency = consistency_proof(LEAVES[:7], 3)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(3, 7, ROOTS[3], ROOTS[6], consistency)
    with pytest.raises(ProofError, match="larger than"):
        verify_consistency(7, 3, ROOTS[7], ROOTS[3], consistency)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_proofs_verify_in_larger_random_trees(data):
    n = data.draw(st.integers(min_value=1, max_value=3000), label="size")
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree_root = root(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    verify_inclusion(leaves[index], index, n, inclusion_proof(leaves, index), tree_root)
    m = data.draw(st.integers(min_value=0, max_value=n), label="old size")
    verify_consistency(m, n, root(leaves[:m]), tree_root, consistency_proof(leaves, m))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_an_inclusion_proof_never_proves_another_index(data):
    n = data.draw(st.integers(min_value=2, max_value=500), label="size")
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    other = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != index), label="other")
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], other, n, inclusion_proof(leaves, index), root(leaves))


def test_the_streaming_consistency_proof_builder_gives_the_old_root_and_the_rfc_proof():
    for n in range(MAX_SIZE + 1):
        for m in range(n + 1):
            builder = ConsistencyProofBuilder(m, n)
            for leaf in LEAVES[:n]:
                builder.append(leaf)
            assert builder.root() == ROOTS[n]
            assert builder.old_root() == ROOTS[m], (m, n)
            assert builder.proof() == consistency_proof(LEAVES[:n], m), (m, n)


def test_the_streaming_consistency_proof_builder_needs_the_leaves_first():
    builder = ConsistencyProofBuilder(3, 5)
    builder.append(LEAVES[0])
    with pytest.raises(ValueError, match="fewer than the old size 3"):
        builder.old_root()
    with pytest.raises(ValueError, match="not the new size 5"):
        builder.proof()
    with pytest.raises(ValueError):
        ConsistencyProofBuilder(6, 5)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_streaming_consistency_proof_builder_matches_in_larger_trees(data):
    n = data.draw(st.integers(min_value=0, max_value=5000), label="new size")
    m = data.draw(st.integers(min_value=0, max_value=n), label="old size")
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    builder = ConsistencyProofBuilder(m, n)
    for leaf in leaves:
        builder.append(leaf)
    assert builder.old_root() == root(leaves[:m])
    assert builder.proof() == consistency_proof(leaves, m)
