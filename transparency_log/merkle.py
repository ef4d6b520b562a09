"""The Merkle tree of RFC 9162 section 2.1: tree hash, inclusion and consistency proofs.

Every hash is SHA-256. A leaf's hash is ``SHA-256(0x00 || data)``, an interior node's is
``SHA-256(0x01 || left || right)``, and the hash of the empty tree is ``SHA-256("")``.
Trees are never built whole: :class:`TreeBuilder` keeps only the roots of the full subtrees it
has seen, and the proof functions name the leaf ranges whose subtree hashes make up a proof
(:func:`inclusion_proof_ranges`, :func:`consistency_proof_ranges`), so a caller streaming a
log can compute a proof without holding it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof did not verify; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf holding ``data``: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node whose children hash to ``left`` and ``right``."""
    return _sha256(b"\x01" + left + right).digest()


class TreeBuilder:
    """The Merkle tree hash of a growing list of leaves, in O(log n) memory.

    The builder keeps one hash per set bit of its size: the roots of the full (power-of-two)
    subtrees that the leaves appended so far form, largest first. Appending a leaf merges
    equal-sized subtrees, so n appends compute n - 1 node hashes in all.
    """

    __slots__ = ("_size", "_subtrees")

    def __init__(self) -> None:
        self._size = 0
        self._subtrees: list[bytes] = []

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Appends the leaf whose hash is ``leaf`` (32 bytes, see :func:`leaf_hash`)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, not {len(leaf)}")
        subtrees = self._subtrees
        merged = leaf
        remaining = self._size
        while remaining & 1:
            merged = _sha256(b"\x01" + subtrees.pop() + merged).digest()
            remaining >>= 1
        subtrees.append(merged)
        self._size += 1

    def append_subtree(self, subtree_root: bytes, size: int) -> None:
        """Appends ``size`` leaves at once, given the root of the full subtree they make:
        ``size`` is a power of two and the builder's size a multiple of it (the subtree is
        aligned), as :func:`aligned_subtrees` makes them."""
        if size < 1 or size & (size - 1) or self._size % size or len(subtree_root) != HASH_SIZE:
            raise ValueError(f"a subtree of {size} leaves cannot follow {self._size} leaves")
        subtrees = self._subtrees
        merged = subtree_root
        remaining = self._size // size
        while remaining & 1:
            merged = _sha256(b"\x01" + subtrees.pop() + merged).digest()
            remaining >>= 1
        subtrees.append(merged)
        self._size += size

    @property
    def subtrees(self) -> list[bytes]:
        """The roots of the full subtrees, largest first: with :attr:`size`, the whole state."""
        return list(self._subtrees)

    @classmethod
    def resume(cls, size: int, subtrees: Sequence[bytes]) -> "TreeBuilder":
        """A builder in the state that :attr:`size` and :attr:`subtrees` described."""
        if size < 0 or len(subtrees) != bin(size).count("1") or any(len(s) != HASH_SIZE for s in subtrees):
            raise ValueError(f"{len(subtrees)} subtree hashes cannot describe a tree of {size} leaves")
        builder = cls()
        builder._size = size
        builder._subtrees = list(subtrees)
        return builder

    def root(self) -> bytes:
        """MTH of the leaves appended so far (SHA-256("") when there are none)."""
        subtrees = self._subtrees
        if not subtrees:
            return EMPTY_ROOT
        result = subtrees[-1]
        for subtree in reversed(subtrees[:-1]):
            result = _sha256(b"\x01" + subtree + result).digest()
        return result


def aligned_subtrees(first_index: int, leaves: Sequence[bytes]) -> list[tuple[bytes, int]]:
    """The leaves at ``first_index``, ``first_index + 1``... as aligned full subtrees, in order:
    (root, size) pairs for :meth:`TreeBuilder.append_subtree` on a builder of ``first_index``
    leaves, each as large as the alignment and the leaves left allow."""
    pieces = []
    index, end = first_index, first_index + len(leaves)
    while index < end:
        size = index & -index if index else 1 << (end - 1).bit_length()
        while index + size > end:
            size >>= 1
        pieces.append((root(leaves[index - first_index : index - first_index + size]), size))
        index += size
    return pieces


class ConsistencyProofBuilder(TreeBuilder):
    """A TreeBuilder that also computes, as the leaves of a tree of ``new_size`` leaves stream
    by, the root of the first ``old_size`` leaves and PROOF(old_size, D[new_size]), in
    O(log n) memory.

    The proof's hashes left of ``old_size`` are subtrees the tree holds once it has
    ``old_size`` leaves; the others are hashed from the later leaves, each of which falls in
    at most one of them.
    """

    __slots__ = ("_old_size", "_new_size", "_ranges", "_proof", "_old_root", "_later_ranges", "_open_range")

    def __init__(self, old_size: int, new_size: int) -> None:
        super().__init__()
        self._ranges = consistency_proof_ranges(old_size, new_size)
        self._old_size, self._new_size = old_size, new_size
        self._proof: list[bytes | None] = [None] * len(self._ranges)
        self._old_root = EMPTY_ROOT if old_size == 0 else None
        self._later_ranges = sorted(
            ((start, end, number) for number, (start, end) in enumerate(self._ranges) if start >= old_size),
            reverse=True,
        )
        self._open_range: tuple[int, int, TreeBuilder] | None = None

    def append_subtree(self, subtree_root: bytes, size: int) -> None:
        """Refused: the proof needs every leaf (append them one by one)."""
        raise TypeError("a ConsistencyProofBuilder takes leaves one by one")

    def append(self, leaf: bytes) -> None:
        """Appends the leaf whose hash is ``leaf``, as :meth:`TreeBuilder.append` does."""
        index = self._size
        super().append(leaf)
        if index < self._old_size:
            if index + 1 == self._old_size:
                self._take_old_tree()
            return
        if self._open_range is None and self._later_ranges and self._later_ranges[-1][0] == index:
            _, end, number = self._later_ranges.pop()
            self._open_range = (end, number, TreeBuilder())
        if self._open_range is not None:
            end, number, subtree = self._open_range
            subtree.append(leaf)
            if index + 1 == end:
                self._proof[number] = subtree.root()
                self._open_range = None

    def _take_old_tree(self) -> None:
        """Keeps the old root and the proof hashes left of old_size: the full subtrees that the
        tree of old_size leaves is made of, one per set bit of old_size, largest first."""
        self._old_root = self.root()
        subtrees, chunks, start = iter(self._subtrees), {}, 0
        for bit in reversed(range(self._old_size.bit_length())):
            if self._old_size >> bit & 1:
                chunks[(start, start + (1 << bit))] = next(subtrees)
                start += 1 << bit
        for number, (start, end) in enumerate(self._ranges):
            if end <= self._old_size:
                self._proof[number] = chunks[(start, end)]

    def old_root(self) -> bytes:
        """MTH of the first ``old_size`` leaves, once they have been appended."""
        if self._old_root is None:
            raise ValueError(f"the tree holds {self._size} leaves, fewer than the old size {self._old_size}")
        return self._old_root

    def proof(self) -> list[bytes]:
        """PROOF(old_size, D[new_size]), once exactly ``new_size`` leaves have been appended."""
        if self._size != self._new_size:
            raise ValueError(f"the tree holds {self._size} leaves, not the new size {self._new_size}")
        proof = [node for node in self._proof if node is not None]
        assert len(proof) == len(self._ranges), "every range of the proof is filled once the tree is complete"
        return proof


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1 for the leaves whose hashes are ``leaf_hashes``, a level at a
    time: pairs hashed left to right, a last node without a pair carried up as it is (the tree
    that splitting at the largest power of two makes)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size >= 2): where MTH splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_proof_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The leaf ranges [start, end), in proof order, whose subtree hashes form PATH(index, D[tree_size])
    of RFC 9162 2.1.3.1."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is not in a tree of size {tree_size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges [start, end), in proof order, whose subtree hashes form PROOF(old_size,
    D[new_size]) of RFC 9162 2.1.4.1; empty when old_size is 0 or equals new_size."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1: the audit path of leaf ``index`` in the tree of
    ``leaf_hashes``, from the leaf's sibling up to the root's child."""
    return [root(leaf_hashes[start:end]) for start, end in inclusion_proof_ranges(index, len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 9162 2.1.4.1: the hashes that link the tree of the first
    ``old_size`` leaves to the tree of all of ``leaf_hashes``."""
    return [root(leaf_hashes[start:end]) for start, end in consistency_proof_ranges(old_size, len(leaf_hashes))]


def _check_hash(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def _check_size(value: object, what: str) -> None:
    if type(value) is not int or value < 0:
        raise ProofError(f"{what} is not a non-negative integer: {value!r}")


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Checks, as RFC 9162 2.1.3.2 says, that ``proof`` proves the leaf hashing to ``leaf`` is
    leaf number ``index`` of the tree of ``tree_size`` leaves whose root is ``root_hash``.

    Returns None when it does, else raises :class:`ProofError` naming the failed check: the
    index must be below the size, every proof hash must be used (a proof neither short nor
    long), the walk must end at the top of the tree, and the computed root must equal
    ``root_hash``.
    """
    _check_hash(leaf, "the leaf hash")
    _check_hash(root_hash, "the root hash")
    _check_size(index, "the leaf index")
    _check_size(tree_size, "the tree size")
    for number, node in enumerate(proof, 1):
        _check_hash(node, f"proof hash {number}")
    if index >= tree_size:
        raise ProofError(f"leaf index {index} is not below the tree size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf
    for node in proof:
        if sn == 0:
            raise ProofError(
                f"the proof has {len(proof)} hashes, "
                f"more than leaf {index} of a tree of size {tree_size} needs"
            )
        if fn & 1 or fn == sn:
            r = node_hash(node, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"the proof has {len(proof)} hashes, "
            f"fewer than leaf {index} of a tree of size {tree_size} needs"
        )
    if r != root_hash:
        raise ProofError(f"the proof for leaf {index} leads to another root than the tree of size {tree_size} has")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Checks, as RFC 9162 2.1.4.2 says, that the tree of ``new_size`` leaves with root
    ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root``.

    Returns None when it does, else raises :class:`ProofError` naming the failed check. Both
    roots are recomputed from the proof and both must match; the proof must be used whole and
    end at the top of the new tree. Equal sizes need an empty proof and equal roots; an old
    size of 0 needs an empty proof and the empty tree's root.
    """
    _check_size(old_size, "the old tree size")
    _check_size(new_size, "the new tree size")
    _check_hash(old_root, "the old root")
    _check_hash(new_root, "the new root")
    for number, node in enumerate(proof, 1):
        _check_hash(node, f"proof hash {number}")
    if old_size > new_size:
        raise ProofError(f"the old tree size {old_size} is larger than the new tree size {new_size}")
    if old_size == 0:
        if proof:
            raise ProofError(f"a proof from the empty tree has no hashes, this one has {len(proof)}")
        if old_root != EMPTY_ROOT:
            raise ProofError("the old root is not the root of the empty tree")
        return
    if old_size == new_size:
        if proof:
            raise ProofError(f"a proof between trees of the same size has no hashes, this one has {len(proof)}")
        if old_root != new_root:
            raise ProofError(f"the two roots of the tree of size {old_size} differ")
        return
    if not proof:
        raise ProofError(f"the proof from size {old_size} to size {new_size} is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError(
                f"the proof has {len(proof)} hashes, "
                f"more than one from size {old_size} to {new_size} needs"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof has {len(proof)} hashes, fewer than one from size {old_size} to {new_size} needs")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root of the tree of size {old_size}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root of the tree of size {new_size}")
