"""Transparency log checkpoints (c2sp.org/tlog-checkpoint): a signed Merkle tree head.

The checkpoint body is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed by optional
non-empty extension lines, and it travels as a signed note (:mod:`transparency_log.note`).
In this project the origin is the log's key name: :func:`sign_checkpoint` signs only a
checkpoint whose origin is the signer's name and :func:`read_checkpoint` accepts only one
whose origin is the verifier's name, so a checkpoint of one log never passes for another's.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .merkle import HASH_SIZE
from .note import Signer, Verifier, open_note

_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_MAX_TREE_SIZE_DIGITS = 20  # a uint64
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f]")


class CheckpointError(ValueError):
    """A checkpoint is malformed or does not belong to the expected log."""


@dataclass(frozen=True)
class Checkpoint:
    """The head of a log's Merkle tree: who (origin), how many leaves (size), and the root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or _CONTROL_CHARACTER.search(self.origin):
            raise CheckpointError(f"the origin must be a non-empty line: {self.origin!r}")
        if type(self.size) is not int or self.size < 0:
            raise CheckpointError(f"the tree size must be a non-negative integer: {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"the root hash must be {HASH_SIZE} bytes")
        for extension in self.extensions:
            if not extension or _CONTROL_CHARACTER.search(extension):
                raise CheckpointError(f"an extension must be a non-empty line: {extension!r}")

    def format(self) -> str:
        """The checkpoint body, which :meth:`parse` reads back to an equal Checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parses a checkpoint body strictly; raises CheckpointError unless it is an origin, a
        tree size in decimal without leading zeros, the base64 of a 32-byte root, and
        non-empty extension lines, each ending in a newline."""
        if not text.endswith("\n"):
            raise CheckpointError("the checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("the checkpoint has fewer than 3 lines (origin, tree size, root hash)")
        origin, size_text, root_text, *extensions = lines
        if not _TREE_SIZE.fullmatch(size_text):
            raise CheckpointError(f"the tree size is not a decimal number without leading zeros: {size_text!r}")
        if len(size_text) > _MAX_TREE_SIZE_DIGITS:
            raise CheckpointError(f"the tree size is too large: {size_text!r}")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointError(f"the root hash is not base64: {root_text!r}") from None
        if len(root) != HASH_SIZE or base64.b64encode(root).decode("ascii") != root_text:
            raise CheckpointError(f"the root hash is not the base64 of {HASH_SIZE} bytes: {root_text!r}")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note of ``checkpoint``; its origin must be the signer's key name."""
    if checkpoint.origin != signer.name:
        raise CheckpointError(f"the origin {checkpoint.origin!r} is not the key name {signer.name!r}")
    return signer.sign(checkpoint.format())


def read_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in ``note`` once its signature by ``verifier`` is checked.

    Raises NoteError if the note is malformed or not signed by that key, and CheckpointError
    if its text is not a checkpoint or its origin is not the verifier's key name.
    """
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise CheckpointError(f"the checkpoint's origin {checkpoint.origin!r} is not the key name {verifier.name!r}")
    return checkpoint
