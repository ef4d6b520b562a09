"""The audit export: a log's events as canonical JSON lines, covered by a signed checkpoint.

Files of a FULL export (the whole log) at ``PATH``:

* ``PATH``: one event line per log event, in log order. A line is ``canonical_bytes(event)``
  (RFC 8785) and a newline; ``event`` has exactly the fields ``position`` (int >= 0, strictly
  increasing), ``originator_id`` (non-empty str), ``type`` (non-empty str, such as
  ``AccessRequest.Submitted``), ``version`` (int; per originator 1, 2, 3...), ``timestamp``
  (str), ``actor`` (str or null) and ``data`` (object). Line i (from 0) is leaf i of the log's
  Merkle tree, whose leaf hash is ``leaf_hash(line without its newline)``.
* ``PATH.checkpoint``: the signed note of the checkpoint of the tree of all the lines.
* ``PATH.hashes``: the base64 leaf hash of each line, one a line. It is never trusted for the
  verdict (the signed root is); when the root does not match and this list does hash to the
  signed root, it names the first line that was changed, deleted, inserted or moved.

Files of a REQUEST export (one request's trail) at ``PATH``:

* ``PATH``: one line per event of the trail, in log order: the event line object plus the field
  ``inclusion_proof``: ``{"leaf_index": int, "tree_size": int, "hashes": [base64...]}``,
  canonical JSON as above. The leaf is the event WITHOUT ``inclusion_proof``, i.e. exactly the
  line the full export holds at ``leaf_index``.
* ``PATH.checkpoint``: the signed checkpoint of the WHOLE log, of size ``tree_size``.
* ``PATH.consistency`` (optional): ``{"old_size": int, "old_root": base64, "new_size": int,
  "hashes": [base64...]}``, the consistency proof from an older checkpoint to this one.

Writers stage every file under a temporary name and rename them into place at the end, the
checkpoint last (after removing any older one), so a crash never leaves an export that looks
complete, and they refuse events that the verifier would reject.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import orjson

from .canonical import canonical_bytes, canonical_bytes_of_parsed
from .checkpoint import Checkpoint, CheckpointError, read_checkpoint, sign_checkpoint
from .merkle import (
    HASH_SIZE,
    ConsistencyProofBuilder,
    ProofError,
    TreeBuilder,
    aligned_subtrees,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from .note import KeyTextError, NoteError, Signer, Verifier, parse_note
from .parallel import default_workers, ordered_map

EVENT_FIELDS = ("position", "originator_id", "type", "version", "timestamp", "actor", "data")
PROOF_FIELD = "inclusion_proof"
CHECKPOINT_SUFFIX = ".checkpoint"
HASHES_SUFFIX = ".hashes"
CONSISTENCY_SUFFIX = ".consistency"

_FULL_LINE_FIELDS = frozenset(EVENT_FIELDS)
_REQUEST_LINE_FIELDS = frozenset((*EVENT_FIELDS, PROOF_FIELD))
_PROOF_FIELDS = ("leaf_index", "tree_size", "hashes")
_CONSISTENCY_FIELDS = ("old_size", "old_root", "new_size", "hashes")
_POSITION_IN_LINE = re.compile(rb'"position":(\d{1,20})[,}]')
_sha256 = hashlib.sha256


class UsageError(Exception):
    """The verifier cannot run: a file is missing or the verifier key text is malformed."""


@dataclass(frozen=True)
class InclusionProof:
    """That the event is leaf ``leaf_index`` of the tree of ``tree_size`` leaves (RFC 9162 PATH)."""

    leaf_index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``inclusion_proof`` field of a request export line."""
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size, "hashes": _encode_hashes(self.hashes)}


@dataclass(frozen=True)
class ConsistencyProof:
    """That the tree of ``new_size`` leaves extends the one of ``old_size`` with root ``old_root``."""

    old_size: int
    old_root: bytes
    new_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """The content of a ``.consistency`` file."""
        return {
            "old_size": self.old_size,
            "old_root": base64.b64encode(self.old_root).decode("ascii"),
            "new_size": self.new_size,
            "hashes": _encode_hashes(self.hashes),
        }


@dataclass(frozen=True)
class Report:
    """The verdict on an export: ``intact``, with what was checked, or broken, with why.

    ``str(report)`` is the line to show: ``intact: N events, tree size N, root ROOT`` (and, after
    --since, a second line ``the log grew from M to N events``), or ``broken: REASON``.
    """

    intact: bool
    reason: str = ""
    events: int = 0
    checkpoint: Checkpoint | None = None
    grew_from: int | None = None

    @property
    def exit_code(self) -> int:
        """0 for an intact export, 1 for a broken one."""
        return 0 if self.intact else 1

    def __str__(self) -> str:
        if not self.intact:
            return f"broken: {self.reason}"
        assert self.checkpoint is not None
        root_text = base64.b64encode(self.checkpoint.root).decode("ascii")
        summary = f"intact: {self.events} events, tree size {self.checkpoint.size}, root {root_text}"
        if self.grew_from is not None:
            summary += f"\nthe log grew from {self.grew_from} to {self.checkpoint.size} events"
        return summary


class _Broken(Exception):
    """The export is broken; the message is the reason the report gives."""


class _LineProblem(Exception):
    """What is wrong with one line, and the line's position when it could be read."""

    def __init__(self, reason: str, position: int | None) -> None:
        super().__init__(reason, position)  # both: it is pickled back from worker processes
        self.reason = reason
        self.position = position


def _encode_hashes(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(value).decode("ascii") for value in hashes]


def _decode_hash(value: object) -> bytes | None:
    """The 32-byte hash that ``value`` is the standard base64 of, else None."""
    if type(value) is not str:
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    if len(decoded) != HASH_SIZE or base64.b64encode(decoded).decode("ascii") != value:
        return None
    return decoded


def _where(line_number: int, position: int | None) -> str:
    return f"line {line_number}" if position is None else f"line {line_number} (position {position})"


def _position_in(raw: bytes) -> int | None:
    """The position a line that could not be read seems to hold, to name it in a report: the
    last "position" key, as the event's own one comes after "data" in canonical key order."""
    found = _POSITION_IN_LINE.findall(raw)
    return int(found[-1]) if found else None


def _position_of(line: Mapping[str, Any]) -> int | None:
    """The position of a parsed line, if it has a usable one."""
    position = line.get("position")
    return position if type(position) is int else None


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is int:
        return str(value)
    return {str: "a string", dict: "an object", list: "a list", float: "a non-integer number"}.get(
        type(value), type(value).__name__
    )


def _event_problem(line: Mapping[str, Any], allowed_fields: frozenset[str]) -> str | None:
    """Why ``line`` is not an event line with exactly ``allowed_fields``, or None if it is.
    The caller has checked that ``line`` holds the allowed fields that are not event fields."""
    if not _FULL_LINE_FIELDS <= line.keys():
        return f'missing field "{next(field for field in EVENT_FIELDS if field not in line)}"'
    if len(line) != len(allowed_fields):
        return f'unexpected field "{min(set(line) - allowed_fields)}"'
    position, version = line["position"], line["version"]
    if type(position) is not int or position < 0:
        return f'field "position" must be a non-negative integer, not {_describe(position)}'
    if type(version) is not int or version < 1:
        return f'field "version" must be an integer of at least 1, not {_describe(version)}'
    for field in ("originator_id", "type"):
        if type(line[field]) is not str or not line[field]:
            return f'field "{field}" must be a non-empty string, not {_describe(line[field])}'
    if type(line["timestamp"]) is not str:
        return f'field "timestamp" must be a string, not {_describe(line["timestamp"])}'
    if line["actor"] is not None and type(line["actor"]) is not str:
        return f'field "actor" must be a string or null, not {_describe(line["actor"])}'
    if type(line["data"]) is not dict:
        return f'field "data" must be an object, not {_describe(line["data"])}'
    return None


class _EventOrder:
    """Checks that positions strictly increase and that each originator's versions go up:
    by exactly one from 1 in a full export, strictly in a request export (a trail's subset)."""

    __slots__ = ("_versions_are_complete", "_last_position", "_last_line", "_versions")

    def __init__(self, versions_are_complete: bool) -> None:
        self._versions_are_complete = versions_are_complete
        self._last_position = -1
        self._last_line = 0
        self._versions: dict[str, tuple[int, int]] = {}

    def problem(self, line_number: int, event: Mapping[str, Any]) -> str | None:
        """Why ``event``, read on ``line_number``, is out of order, or None (and remembers it)."""
        return self.check(line_number, event["position"], event["originator_id"], event["version"], event["type"])

    def check(self, line_number: int, position: int, originator: str, version: int, kind: str) -> str | None:
        """:meth:`problem` of an event given by its fields."""
        if position <= self._last_position:
            if position == self._last_position:
                return f"position {position} appears twice (line {self._last_line} too): an event is duplicated"
            return f"positions go back (line {self._last_line} had position {self._last_position}): events reordered"
        seen = self._versions.get(originator)
        if seen is None:
            if self._versions_are_complete and version != 1:
                return f"{_aggregate(kind, originator)}: its first event has version {version}, not 1: an event is missing"
        else:
            last_version, last_line = seen
            if version == last_version:
                return f"{_aggregate(kind, originator)}: version {version} appears twice (line {last_line} too)"
            if version < last_version:
                return f"{_aggregate(kind, originator)}: version {version} follows version {last_version}: events reordered"
            if self._versions_are_complete and version != last_version + 1:
                return f"{_aggregate(kind, originator)}: version {version} follows version {last_version}: an event is missing"
        self._versions[originator] = (version, line_number)
        self._last_position = position
        self._last_line = line_number
        return None


def _aggregate(kind: str, originator: str) -> str:
    """``AccessRequest 6f1c...``: the aggregate of an event, to name it in a report."""
    return f"{kind.split('.', 1)[0]} {originator}"


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_json_decoder = json.JSONDecoder(
    parse_constant=_reject_constant
)  # built once: json.loads(s, **options) builds one a call


def _read_line(raw_line: bytes) -> tuple[dict[str, Any], bytes]:
    """The object on one line of an export and the line's bytes without the newline.

    Raises _LineProblem unless the line ends in a newline and is UTF-8, JSON, an object, and in
    RFC 8785 canonical form.
    """
    if not raw_line.endswith(b"\n"):
        raise _LineProblem("the line does not end with a newline: the file was cut off", _position_in(raw_line))
    raw = raw_line[:-1]
    try:  # the fast path: a line orjson parses and writes back as RFC 8785, byte for byte
        line = orjson.loads(raw)
        if type(line) is dict and canonical_bytes_of_parsed(line) == raw:
            return line, raw
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        pass  # named below
    try:
        line = _json_decoder.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _LineProblem("not valid UTF-8", _position_in(raw)) from None
    except (ValueError, RecursionError):
        raise _LineProblem("not valid JSON", _position_in(raw)) from None
    if type(line) is not dict:
        raise _LineProblem("not a JSON object", None)
    try:
        canonical = canonical_bytes(line)
    except (ValueError, RecursionError):
        canonical = None
    if canonical != raw:
        raise _LineProblem("not in canonical form (RFC 8785)", _position_of(line))
    return line, raw


def _decode_hash_list(value: Any) -> tuple[bytes, ...] | None:
    """The hashes that ``value``, a list of base64 strings, holds, else None."""
    if type(value) is not list:
        return None
    hashes = []
    for item in value:
        decoded = _decode_hash(item)
        if decoded is None:
            return None
        hashes.append(decoded)
    return tuple(hashes)


def _parse_inclusion_proof(value: Any) -> InclusionProof:
    """The proof in an ``inclusion_proof`` field; raises ValueError saying what is malformed."""
    if type(value) is not dict or sorted(value) != sorted(_PROOF_FIELDS):
        raise ValueError(f'field "{PROOF_FIELD}" must be an object with exactly {", ".join(_PROOF_FIELDS)}')
    index, size, hashes = value["leaf_index"], value["tree_size"], _decode_hash_list(value["hashes"])
    if type(index) is not int or type(size) is not int or index < 0 or size < 0:
        raise ValueError("the inclusion proof's leaf_index and tree_size must be non-negative integers")
    if hashes is None:
        raise ValueError(f"the inclusion proof's hashes must be a list of base64 {HASH_SIZE}-byte hashes")
    return InclusionProof(index, size, hashes)


def _parse_consistency_proof(text: str) -> ConsistencyProof:
    """The proof in a ``.consistency`` file; raises ValueError saying what is malformed."""
    try:
        value = _json_decoder.decode(text)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if type(value) is not dict or sorted(value) != sorted(_CONSISTENCY_FIELDS):
        raise ValueError(f"not an object with exactly {', '.join(_CONSISTENCY_FIELDS)}")
    old_size, new_size = value["old_size"], value["new_size"]
    old_root, hashes = _decode_hash(value["old_root"]), _decode_hash_list(value["hashes"])
    if type(old_size) is not int or type(new_size) is not int or old_size < 0 or new_size < 0:
        raise ValueError("old_size and new_size must be non-negative integers")
    if old_root is None or hashes is None:
        raise ValueError(f"old_root and hashes must be base64 {HASH_SIZE}-byte hashes")
    return ConsistencyProof(old_size, old_root, new_size, hashes)


# -- writing ---------------------------------------------------------------------------------


class _StagedFiles:
    """Files of one export written under temporary names beside ``path`` and renamed into
    place together by :meth:`commit`: the old checkpoint and the old companion files are
    removed first, and the new checkpoint is renamed last."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._staged: dict[str, str] = {}

    def create(self, suffix: str) -> BinaryIO:
        """A new temporary file that :meth:`commit` will rename to ``path + suffix``."""
        directory, name = os.path.split(os.path.abspath(self._path))
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}{suffix}.", suffix=".partial")
        self._staged[suffix] = temporary
        return os.fdopen(descriptor, "wb", buffering=1 << 20)

    def commit(self) -> None:
        """Moves the staged files into place; the caller has closed them durably."""
        for suffix in (CHECKPOINT_SUFFIX, HASHES_SUFFIX, CONSISTENCY_SUFFIX):
            if os.path.exists(self._path + suffix):
                os.remove(self._path + suffix)
        for suffix, temporary in self._staged.items():
            if suffix != CHECKPOINT_SUFFIX:
                os.replace(temporary, self._path + suffix)
        os.replace(self._staged.pop(CHECKPOINT_SUFFIX), self._path + CHECKPOINT_SUFFIX)
        self._staged.clear()

    def discard(self) -> None:
        """Removes the staged files that were not committed."""
        for temporary in self._staged.values():
            if os.path.exists(temporary):
                os.remove(temporary)
        self._staged.clear()


def _line_end(lines: bytes, count: int) -> int:
    """Where the first ``count`` lines of ``lines`` end (after their newlines)."""
    end = 0
    for _ in range(count):
        end = lines.index(b"\n", end) + 1
    return end


def _close_durably(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


@dataclass(frozen=True)
class PreparedLines:
    """Events made into export lines, ready for :meth:`ExportWriter.write_prepared`: made by
    :func:`prepare_lines`, which may run in another process (the value pickles cheaply)."""

    lines: bytes  # the lines, each with its newline
    leaves: tuple[bytes, ...]  # their leaf hashes
    hashes_text: bytes  # the lines of the .hashes file for them (base64 made by the worker too)
    keys: tuple[tuple[int, str, int, str], ...]  # (position, originator_id, version, type) of each
    problem: str | None = None  # why the event after these has no line, if one has none
    first_index: int | None = None  # the leaf index of the first line, if known when prepared
    subtrees: tuple[tuple[bytes, int], ...] = ()  # with it, the leaves as aligned full subtrees


def prepare_lines(
    events: Iterable[Mapping[str, Any]], *, parsed: bool = False, first_index: int | None = None
) -> PreparedLines:
    """The export lines of ``events`` up to the first that has none: one that lacks a field, has
    a field of the wrong type or has no RFC 8785 form (see :meth:`ExportWriter.write` for
    ``parsed``). Whether they come in order is checked by the writer. Given the leaf index of
    the first (``first_index``), their leaves are also hashed into the aligned subtrees of the
    log's tree they make, so that the writer appends a few subtrees instead of every leaf."""
    lines: list[bytes] = []
    leaves: list[bytes] = []
    keys: list[tuple[int, str, int, str]] = []
    canonical = canonical_bytes_of_parsed if parsed else canonical_bytes
    problem = None
    for event in events:
        problem = _event_problem(event, _FULL_LINE_FIELDS)
        if problem is None:
            try:
                data = canonical(event)
            except ValueError as error:
                problem = f"it has no RFC 8785 form: {error}"
        if problem is not None:
            break
        lines.append(data)
        leaves.append(_sha256(b"\x00" + data).digest())
        keys.append((event["position"], event["originator_id"], event["version"], event["type"]))
    return PreparedLines(
        lines=b"\n".join(lines) + b"\n" if lines else b"",
        leaves=tuple(leaves),
        hashes_text=b"".join(map(binascii.b2a_base64, leaves)),  # each with its newline
        keys=tuple(keys),
        problem=problem,
        first_index=first_index,
        subtrees=() if first_index is None else tuple(aligned_subtrees(first_index, leaves)),
    )


class ExportWriter:
    """Writes a full export of a log to ``path`` (see the module docstring for the files).

    Call :meth:`write` for every event in log order, then :meth:`finish`. Used as a context
    manager, the export is discarded unless :meth:`finish` was called. The checkpoint's origin
    is the signer's key name; ``origin``, if given, must be that name.
    """

    def __init__(self, path: str | os.PathLike[str], signer: Signer, origin: str | None = None) -> None:
        if origin is not None and origin != signer.name:
            raise ValueError(f"the origin {origin!r} must be the signer's key name {signer.name!r}")
        self._signer = signer
        self._builder = TreeBuilder()
        self._order = _EventOrder(versions_are_complete=True)
        self._files = _StagedFiles(os.fspath(path))
        self._lines = self._files.create("")
        self._hashes = self._files.create(HASHES_SUFFIX)
        self._finished = False

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(self, *exception: object) -> None:
        if not self._finished:
            self.abort()

    def write(self, event: Mapping[str, Any], *, parsed: bool = False) -> None:
        """Appends ``event`` (a JSON object with exactly the event fields) as the next line.

        Raises ValueError, writing nothing, if the event lacks a field, has a wrong type, comes
        out of order (position not above the last, version not its originator's next) or has
        no RFC 8785 form. With ``parsed``, the caller vouches that ``event`` holds only values
        as a strict JSON parser makes them (see
        :func:`~transparency_log.canonical.canonical_bytes_of_parsed`: no NaN, no infinity, no
        UUID or Enum), and the writer does not walk it to prove it.
        """
        self.write_prepared(prepare_lines((event,), parsed=parsed))

    def write_prepared(self, prepared: PreparedLines) -> None:
        """Appends the lines of :func:`prepare_lines` after checking that they come in order.

        Raises ValueError naming the first event out of order, or the event that
        :func:`prepare_lines` stopped at; the lines before it are written.
        """
        if self._finished:
            raise ValueError("the export is finished")
        first = self._builder.size + 1
        check = self._order.check
        for index, (position, originator, version, kind) in enumerate(prepared.keys):
            problem = check(first + index, position, originator, version, kind)
            if problem:
                self._append(prepared, index)
                raise ValueError(f"event {first + index}: {problem}")
        self._append(prepared, len(prepared.keys))
        if prepared.problem:
            raise ValueError(f"event {first + len(prepared.keys)}: {prepared.problem}")

    def _append(self, prepared: PreparedLines, count: int) -> None:
        """Writes the first ``count`` prepared lines and appends their leaves to the tree."""
        if count == len(prepared.keys):
            self._lines.write(prepared.lines)
            self._hashes.write(prepared.hashes_text)
            if prepared.first_index == self._builder.size:
                for subtree_root, size in prepared.subtrees:
                    self._builder.append_subtree(subtree_root, size)
                return
        else:
            self._lines.write(prepared.lines[: _line_end(prepared.lines, count)])
            self._hashes.write(prepared.hashes_text[: _line_end(prepared.hashes_text, count)])
        for leaf in prepared.leaves[:count]:
            self._builder.append(leaf)

    def finish(self) -> Checkpoint:
        """Signs the checkpoint of all the events written, puts the files in place and returns it."""
        if self._finished:
            raise ValueError("the export is finished")
        try:
            _close_durably(self._lines)
            _close_durably(self._hashes)
            checkpoint = Checkpoint(self._signer.name, self._builder.size, self._builder.root())
            with self._files.create(CHECKPOINT_SUFFIX) as note_file:
                note_file.write(sign_checkpoint(checkpoint, self._signer).encode("utf-8"))
                note_file.flush()
                os.fsync(note_file.fileno())
            self._files.commit()
        except BaseException:
            self.abort()
            raise
        self._finished = True
        return checkpoint

    def abort(self) -> None:
        """Discards the files staged so far; called before :meth:`finish`, it leaves an earlier
        export at ``path`` as it was."""
        self._lines.close()
        self._hashes.close()
        self._files.discard()
        self._finished = True


def write_request_export(
    path: str | os.PathLike[str],
    lines_with_proofs: Iterable[tuple[Mapping[str, Any], InclusionProof]],
    checkpoint_note: str,
    consistency: ConsistencyProof | None = None,
) -> int:
    """Writes a request export to ``path`` and returns the number of lines.

    ``lines_with_proofs`` are (event, inclusion proof) pairs in log order, each event being the
    full export's line at the proof's leaf index; ``checkpoint_note`` is the signed checkpoint
    of the whole log the proofs lead to; ``consistency``, if given, is written as
    ``path.consistency``. Raises ValueError, leaving no file, if an event is malformed or out of
    order (by position, version or leaf index), or a proof does not lead to the checkpoint's root.
    """
    checkpoint = Checkpoint.parse(parse_note(checkpoint_note).text)
    if consistency is not None:
        if consistency.new_size != checkpoint.size:
            raise ValueError(
                f"the consistency proof is to size {consistency.new_size}, the checkpoint's is {checkpoint.size}"
            )
        verify_consistency(
            consistency.old_size, consistency.new_size, consistency.old_root, checkpoint.root, consistency.hashes
        )
    order = _EventOrder(versions_are_complete=False)
    files = _StagedFiles(os.fspath(path))
    count, last_leaf_index = 0, -1
    try:
        with files.create("") as lines:
            for count, (event, proof) in enumerate(lines_with_proofs, 1):
                line = dict(event)
                problem = _event_problem(line, _FULL_LINE_FIELDS) or order.problem(count, line)
                if problem:
                    raise ValueError(f"event {count}: {problem}")
                if proof.tree_size != checkpoint.size:
                    raise ValueError(
                        f"event {count}: its proof is for size {proof.tree_size}, the checkpoint's is {checkpoint.size}"
                    )
                if proof.leaf_index <= last_leaf_index:
                    raise ValueError(f"event {count}: leaf {proof.leaf_index} comes after leaf {last_leaf_index}")
                last_leaf_index = proof.leaf_index
                verify_inclusion(
                    leaf_hash(canonical_bytes(line)), proof.leaf_index, proof.tree_size, proof.hashes, checkpoint.root
                )
                line[PROOF_FIELD] = proof.to_json()
                lines.write(canonical_bytes(line) + b"\n")
            lines.flush()
            os.fsync(lines.fileno())
        with files.create(CHECKPOINT_SUFFIX) as note_file:
            note_file.write(checkpoint_note.encode("utf-8"))
            note_file.flush()
            os.fsync(note_file.fileno())
        if consistency is not None:
            with files.create(CONSISTENCY_SUFFIX) as consistency_file:
                consistency_file.write(canonical_bytes(consistency.to_json()) + b"\n")
                consistency_file.flush()
                os.fsync(consistency_file.fileno())
        files.commit()
    except BaseException:
        files.discard()
        raise
    return count


# -- verifying -------------------------------------------------------------------------------


def verify_export(
    path: str | os.PathLike[str], verifier_key_text: str, since_note_text: str | None = None, *, workers: int | None = None
) -> Report:
    """Verifies the full or request export at ``path`` against the log key ``verifier_key_text``.

    The report is intact only if the checkpoint beside the export is signed by that key, every
    line is a canonical event line in log order, and the lines are exactly the checkpoint's
    leaves (full export) or each proven to be one of them (request export). With
    ``since_note_text``, an older checkpoint of the same log, it is intact only if the log grew
    from that checkpoint without rewriting it. A broken report names the first broken line, or
    the check that failed. Raises UsageError if the export file is missing or the key text is
    malformed; reads the export as a stream. A full export of PARALLEL_VERIFY_FROM bytes or more
    is read by ``workers`` processes (default: one a core, on a machine of several cores).
    """
    try:
        verifier = Verifier.from_text(verifier_key_text.strip())
    except KeyTextError as error:
        raise UsageError(f"bad verifier key: {error}") from None
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        checkpoint = _read_checkpoint_file(path + CHECKPOINT_SUFFIX, verifier)
        older = None if since_note_text is None else _read_older_checkpoint(since_note_text, verifier)
        if older is not None and older.size > checkpoint.size:
            raise _Broken(
                f"--since: the older checkpoint covers {older.size} events, "
                f"this export {checkpoint.size}: the log shrank"
            )
        if _holds_request_lines(path):
            return _verify_request_export(path, checkpoint, older)
        if workers is None:
            workers = default_workers(os.path.getsize(path), PARALLEL_VERIFY_FROM)
        return _verify_full_export(path, checkpoint, older, workers)
    except _Broken as broken:
        return Report(intact=False, reason=str(broken))


def _read_checkpoint_file(path: str, verifier: Verifier) -> Checkpoint:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            note = file.read()
    except FileNotFoundError:
        raise _Broken(f"checkpoint: {path} is missing, so nothing vouches for the export") from None
    except UnicodeDecodeError:
        raise _Broken(f"checkpoint: {path} is not UTF-8 text") from None
    try:
        return read_checkpoint(note, verifier)
    except (NoteError, CheckpointError) as error:
        raise _Broken(f"checkpoint: {error}") from None


def _read_older_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    try:
        return read_checkpoint(note, verifier)
    except (NoteError, CheckpointError) as error:
        raise _Broken(f"--since: the older checkpoint: {error}") from None


def _holds_request_lines(path: str) -> bool:
    """Whether the export's first line is a request export line (has an inclusion proof)."""
    with open(path, "rb") as lines:
        first = lines.readline()
    try:
        line = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return type(line) is dict and PROOF_FIELD in line


# A full export this large (bytes) is checked by worker processes, one a core (see
# transparency_log.parallel), in chunks of VERIFY_CHUNK lines: they read and hash the lines, this
# process checks their order and builds the tree.
PARALLEL_VERIFY_FROM = 16 * 1024 * 1024
VERIFY_CHUNK = 4096


@dataclass(frozen=True)
class _CheckedLines:
    """Lines of a full export read, their form checked and hashed (by :func:`_check_full_lines`)."""

    keys: tuple[tuple[int, str, int, str], ...]  # (position, originator_id, version, type) of each
    leaves: tuple[bytes, ...]
    subtrees: tuple[tuple[bytes, int], ...]  # the leaves as aligned full subtrees of the tree
    problem: tuple[int, _LineProblem] | None  # the line after these, if it is broken, and why


def _check_full_lines(raw_lines: list[bytes], first_number: int) -> _CheckedLines:
    """Reads lines ``first_number``, ``first_number + 1``... of a full export up to the first
    broken one: each a canonical event line with no inclusion proof."""
    keys: list[tuple[int, str, int, str]] = []
    leaves: list[bytes] = []
    problem = None
    for number, raw_line in enumerate(raw_lines, first_number):
        try:
            line, raw = _read_line(raw_line)
            if PROOF_FIELD in line:
                raise _LineProblem(
                    "it has an inclusion proof but line 1 has none: the file mixes full and request export lines",
                    _position_of(line),
                )
            reason = _event_problem(line, _FULL_LINE_FIELDS)
            if reason:
                raise _LineProblem(reason, _position_of(line))
        except _LineProblem as broken:
            problem = (number, broken)
            break
        keys.append((line["position"], line["originator_id"], line["version"], line["type"]))
        leaves.append(_sha256(b"\x00" + raw).digest())
    return _CheckedLines(tuple(keys), tuple(leaves), tuple(aligned_subtrees(first_number - 1, leaves)), problem)


def _line_chunks(lines: BinaryIO) -> Iterator[tuple[list[bytes], int]]:
    """The file's lines VERIFY_CHUNK at a time, each chunk with the number of its first line."""
    number = 1
    while chunk := list(itertools.islice(lines, VERIFY_CHUNK)):
        yield chunk, number
        number += len(chunk)


def _verify_full_export(path: str, checkpoint: Checkpoint, older: Checkpoint | None, workers: int = 0) -> Report:
    growth = None if older is None else ConsistencyProofBuilder(older.size, checkpoint.size)
    builder = growth or TreeBuilder()
    order = _EventOrder(versions_are_complete=True)
    number = 0
    with open(path, "rb") as lines:
        for checked in ordered_map(_check_full_lines, _line_chunks(lines), workers):
            for number, key in enumerate(checked.keys, number + 1):
                reason = order.check(number, *key)
                if reason:
                    _fail_at(path, checkpoint, number, _LineProblem(reason, key[0]))
            if checked.problem:
                _fail_at(path, checkpoint, *checked.problem)
            if growth is None:
                for subtree_root, size in checked.subtrees:
                    builder.append_subtree(subtree_root, size)
            else:  # it follows the leaves one by one, for the proof
                for leaf in checked.leaves:
                    builder.append(leaf)
    if number != checkpoint.size or builder.root() != checkpoint.root:
        changed_line, why_not = _diagnose_with_hashes(path, checkpoint, before_line=None)
        if changed_line:
            raise _Broken(changed_line)
        if number < checkpoint.size:
            raise _Broken(
                f"the file holds {number} events; the checkpoint covers {checkpoint.size}: the file was truncated"
            )
        if number > checkpoint.size:
            raise _Broken(f"the file holds {number} events; the checkpoint covers {checkpoint.size}: events were added")
        raise _Broken("the checkpoint's root does not match the lines" + (f" ({why_not})" if why_not else ""))
    if older is not None and growth is not None:
        if growth.old_root() != older.root:
            raise _Broken(
                f"--since: the first {older.size} events do not hash to the older checkpoint's root: "
                "history was rewritten"
            )
        try:
            verify_consistency(older.size, checkpoint.size, older.root, checkpoint.root, growth.proof())
        except ProofError as error:
            raise _Broken(
                f"--since: the consistency proof from the older checkpoint does not verify: {error}"
            ) from None
    return Report(True, events=number, checkpoint=checkpoint, grew_from=None if older is None else older.size)


def _fail_at(path: str, checkpoint: Checkpoint, number: int, problem: _LineProblem) -> NoReturn:
    """Raises _Broken for line ``number``: the first changed line before it if ``.hashes`` names
    one (a change there explains this one), else ``problem`` itself."""
    earlier, _ = _diagnose_with_hashes(path, checkpoint, before_line=number)
    raise _Broken(earlier or f"{_where(number, problem.position)}: {problem.reason}")


def _read_hashes(path: str) -> tuple[bytes, ...] | None:
    """The leaf hashes listed in a .hashes file, or None if it is missing or malformed."""
    try:
        with open(path, encoding="ascii", newline="") as file:
            return _decode_hash_list([line[:-1] if line.endswith("\n") else None for line in file])
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _diagnose_with_hashes(path: str, checkpoint: Checkpoint, before_line: int | None) -> tuple[str | None, str]:
    """The first line (before ``before_line``, if given) that differs from the checkpointed log,
    and how, according to the export's .hashes list, which is used only when it hashes to the
    checkpoint's root. Returns (None, why no line could be named) otherwise."""
    expected = _read_hashes(path + HASHES_SUFFIX)
    if expected is None:
        return None, "no readable .hashes file beside the export names the changed line"
    if len(expected) != checkpoint.size or root(expected) != checkpoint.root:
        return (
            None,
            "the .hashes file does not hash to the checkpoint's root either, so it cannot name the changed line",
        )
    with open(path, "rb") as lines:
        for number, raw_line in enumerate(lines, 1):
            if before_line is not None and number >= before_line:
                return None, ""
            raw = raw_line[:-1] if raw_line.endswith(b"\n") else raw_line
            actual = leaf_hash(raw)
            index = number - 1
            if index < len(expected) and actual == expected[index]:
                continue
            where = _where(number, _position_in(raw))
            if index >= len(expected):
                return f"{where}: the checkpoint covers {len(expected)} events, not this one: an event was added", ""
            following = lines.readline()
            next_actual = leaf_hash(following[:-1] if following.endswith(b"\n") else following) if following else None
            next_expected = expected[index + 1] if index + 1 < len(expected) else None
            if next_expected is not None and actual == next_expected and next_actual == expected[index]:
                return f"{where}: swapped with line {number + 1}: events reordered", ""
            if next_expected is not None and actual == next_expected:
                return f"{where}: the event the checkpoint covers before this one is missing: an event was deleted", ""
            if next_actual == expected[index]:
                return f"{where}: the checkpoint does not cover this event: an event was inserted", ""
            return (
                f"{where}: its content differs from the event the checkpoint covers "
                "(leaf hash differs from the export's .hashes)"
            ), ""
    return None, ""


def _verify_request_export(path: str, checkpoint: Checkpoint, older: Checkpoint | None) -> Report:
    order = _EventOrder(versions_are_complete=False)
    last_leaf_index = -1
    number = 0
    with open(path, "rb") as lines:
        for number, raw_line in enumerate(lines, 1):
            try:
                line, _ = _read_line(raw_line)
                position = _position_of(line)
                if PROOF_FIELD not in line:
                    raise _LineProblem(
                        "it has no inclusion proof but line 1 has one: the file mixes full and request export lines",
                        position,
                    )
                problem = _event_problem(line, _REQUEST_LINE_FIELDS) or order.problem(number, line)
                if problem:
                    raise _LineProblem(problem, position)
                last_leaf_index = _check_inclusion(line, checkpoint, last_leaf_index)
            except _LineProblem as problem:
                raise _Broken(f"{_where(number, problem.position)}: {problem.reason}") from None
    grew_from = None
    if older is not None:
        _check_consistency_file(path + CONSISTENCY_SUFFIX, older, checkpoint)
        grew_from = older.size
    return Report(True, events=number, checkpoint=checkpoint, grew_from=grew_from)


def _check_inclusion(line: dict[str, Any], checkpoint: Checkpoint, last_leaf_index: int) -> int:
    """Checks the inclusion proof of a request export line and returns its leaf index; raises
    _LineProblem unless the proof is for the checkpoint's tree, comes after the previous line's
    leaf and leads from the event to the checkpoint's root."""
    position = _position_of(line)
    try:
        proof = _parse_inclusion_proof(line[PROOF_FIELD])
    except ValueError as error:
        raise _LineProblem(str(error), position) from None
    if proof.tree_size != checkpoint.size:
        raise _LineProblem(
            f"the inclusion proof is for a tree of {proof.tree_size} events; the checkpoint covers {checkpoint.size}",
            position,
        )
    if proof.leaf_index <= last_leaf_index:
        raise _LineProblem(
            f"its leaf index {proof.leaf_index} does not follow the previous line's {last_leaf_index}: "
            "events reordered",
            position,
        )
    event = {field: value for field, value in line.items() if field != PROOF_FIELD}
    try:
        verify_inclusion(
            leaf_hash(canonical_bytes(event)), proof.leaf_index, proof.tree_size, proof.hashes, checkpoint.root
        )
    except ProofError as error:
        raise _LineProblem(f"the inclusion proof does not lead to the checkpoint's root ({error})", position) from None
    return proof.leaf_index


def _check_consistency_file(path: str, older: Checkpoint, checkpoint: Checkpoint) -> None:
    try:
        with open(path, encoding="utf-8") as file:
            proof = _parse_consistency_proof(file.read())
    except FileNotFoundError:
        raise _Broken(
            f"--since: a request export is checked against an older checkpoint with its {CONSISTENCY_SUFFIX} file, "
            f"and {path} is missing"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise _Broken(f"--since: {path} is malformed: {error}") from None
    if (proof.old_size, proof.new_size) != (older.size, checkpoint.size):
        raise _Broken(
            f"--since: {path} links size {proof.old_size} to {proof.new_size}, "
            f"not the older checkpoint's {older.size} to this one's {checkpoint.size}"
        )
    if proof.old_root != older.root:
        raise _Broken(f"--since: {path} starts from another root than the older checkpoint's: history was rewritten")
    try:
        verify_consistency(older.size, checkpoint.size, older.root, checkpoint.root, proof.hashes)
    except ProofError as error:
        raise _Broken(
            f"--since: the consistency proof does not link the older checkpoint to this one ({error}): "
            "history was rewritten"
        ) from None
