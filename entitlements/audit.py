"""``entitlements audit``: the deployment's signing key, exports of the log (whole, or one request's
trail with inclusion proofs), signed checkpoints, and the verification of the live database.

The signing key is an Ed25519 key in the C2SP note signer form, in ``ENTITLEMENTS_AUDIT_KEY_FILE``
(default ``var/audit-signing.key``), generated on first use (readable by its owner only). Its name
is the log's origin: the portal's host and port and ``/audit`` (``127.0.0.1:8000/audit``), fixed
when the key is made. The verifier key (``entitlements audit key``) is what auditors are given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from transparency_log import merkle
from transparency_log.canonical import canonical_bytes_of_parsed
from transparency_log.checkpoint import CheckpointError, read_checkpoint
from transparency_log.export import (
    ConsistencyProof,
    ExportWriter,
    InclusionProof,
    PreparedLines,
    prepare_lines,
    write_request_export,
)
from transparency_log.merkle import TreeBuilder
from transparency_log.parallel import default_workers, ordered_map
from transparency_log.note import NoteError, Signer, Verifier, generate_signer

from entitlements.keyfiles import read_or_create
from entitlements.settings import ConfigurationError
from projections.audit_log import audit_event
from projections.log_tree import LEAVES, LogTree, event_leaf


def origin_for(base_url: str) -> str:
    """``http://127.0.0.1:8000`` -> ``127.0.0.1:8000/audit`` (a key name: no spaces, no ``+``)."""
    parts = urlsplit(base_url)
    name = f"{parts.netloc}{parts.path.rstrip('/')}/audit"
    return "".join(ch for ch in name if ch.isprintable() and ch not in " +") or "entitlements/audit"


def load_signer(key_file: str | Path, base_url: str) -> Signer:
    """The deployment's signing key, made (and kept in ``key_file``) on first use."""
    path = Path(key_file)
    try:
        return Signer.from_text(read_or_create(path, lambda: generate_signer(origin_for(base_url))))
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"cannot read the audit signing key {path}: {error}") from error


def read_verifier(text_or_path: str) -> Verifier:
    """A verifier key given as its text, or as the path of a file holding it."""
    candidate = Path(text_or_path)
    text = candidate.read_text(encoding="utf-8").strip() if "+" not in text_or_path or candidate.is_file() else text_or_path
    try:
        return Verifier.from_text(text.strip())
    except ValueError as error:
        raise ConfigurationError(f"not a verifier key: {error}") from error


@dataclass
class ExportResult:
    path: Path
    events: int
    tree_size: int
    root: bytes


class RequestNotFound(LookupError):
    pass


class LogDiffers(RuntimeError):
    """The live log no longer matches the tree recorded beside it: an export would vouch for it."""


# A log this long is exported by worker processes (making lines and hashing them), one a core,
# while this process reads the log and writes the files; a shorter one is not worth starting them.
PARALLEL_EXPORT_FROM = 50_000


def export_log(tree: LogTree, signer: Signer, path: Path, *, workers: int | None = None) -> ExportResult:
    """The whole log, one event a line, and its signed checkpoint beside it.

    ``workers`` processes make the lines (default: one a core, on a machine of several cores,
    when the log holds at least PARALLEL_EXPORT_FROM events; else none: this process makes them)."""
    if workers is None:
        workers = default_workers(tree.audit_log.head(), PARALLEL_EXPORT_FROM)
    with ExportWriter(str(path), signer, signer.name) as writer:
        count = 0
        for prepared in ordered_map(prepare_export_chunk, _chunks_with_first_index(tree.log_chunks()), workers):
            writer.write_prepared(prepared)
            count += len(prepared.keys)
        checkpoint = writer.finish()
    return ExportResult(path, count, checkpoint.size, checkpoint.root)


def prepare_export_chunk(rows: list[tuple], first_index: int) -> PreparedLines:
    """The export lines of a chunk of log rows, the first being leaf ``first_index`` (in a
    worker process, or in this one)."""
    return prepare_lines((audit_event(*row) for row in rows), parsed=True, first_index=first_index)


def _chunks_with_first_index(chunks: Iterator[list[tuple]]) -> Iterator[tuple[list[tuple], int]]:
    index = 0
    for rows in chunks:
        yield rows, index
        index += len(rows)


def export_request(tree: LogTree, read_models: Any, signer: Signer, path: Path, request_id: str,
                   since_note: str | None = None) -> ExportResult:
    """One request's trail, each event with its inclusion proof against a new checkpoint of the
    whole log (and, with ``since_note``, a consistency proof from that older checkpoint)."""
    trail = read_models.trail(request_id)
    if trail is None:
        raise RequestNotFound(f"no request {request_id}")
    recorded = tree.record(force=True)
    assert recorded is not None
    with tree.store.transaction(write=False) as tx:
        hashes = tree.leaf_hashes(tx, recorded.tree_size)
        indexes = tree.leaf_indexes(tx, [event["position"] for event in trail])
    if merkle.root(hashes) != recorded.root:
        raise LogDiffers("the recorded leaves do not hash to the latest checkpoint; run `entitlements audit verify`")
    lines = []
    for event in trail:
        index = indexes.get(event["position"])
        if index is None or index >= recorded.tree_size:
            continue  # recorded after the checkpoint: not in it
        if merkle.leaf_hash(canonical_bytes_of_parsed(event)) != hashes[index]:
            raise LogDiffers(
                f"the event at position {event['position']} differs from the leaf recorded for it; run `entitlements audit verify`"
            )
        proof = InclusionProof(index, recorded.tree_size, tuple(merkle.inclusion_proof(hashes, index)))
        lines.append((event, proof))
    consistency = None
    if since_note is not None:
        old = read_checkpoint(since_note, Verifier.from_text(signer.verifier_key))
        if old.size > recorded.tree_size:
            raise LogDiffers(f"the older checkpoint covers {old.size} events, more than the log's {recorded.tree_size}")
        consistency = ConsistencyProof(old.size, old.root, recorded.tree_size, tuple(merkle.consistency_proof(hashes, old.size)))
    write_request_export(str(path), lines, recorded.note, consistency)
    return ExportResult(path, len(lines), recorded.tree_size, recorded.root)


@dataclass
class LiveReport:
    ok: bool
    events: int
    checkpoints: int
    message: str


def verify_live(tree: LogTree, verifier: Verifier) -> LiveReport:
    """The live log against the leaves recorded beside it and every recorded checkpoint: names
    the first event changed, removed, inserted or reordered behind the application's back."""
    checkpoints = []
    for recorded in tree.checkpoints():
        try:
            checkpoint = read_checkpoint(recorded.note, verifier)
        except (NoteError, CheckpointError, ValueError) as error:
            return LiveReport(False, 0, 0, f"checkpoint of tree size {recorded.tree_size} recorded at {recorded.recorded_at}: {error}")
        checkpoints.append((checkpoint, recorded))
    pending = iter(checkpoints)
    next_checkpoint = next(pending, None)
    builder = TreeBuilder()
    versions: dict[str, int] = {}
    leaves = _recorded_leaves(tree)
    count = 0
    while next_checkpoint is not None and next_checkpoint[0].size == 0:
        next_checkpoint = next(pending, None)
    for row in tree.log_rows():
        position, leaf, event = event_leaf(row)
        index = builder.size
        where = f"event at position {position} ({event['type']} of {event['originator_id']}, version {event['version']})"
        previous = versions.get(event["originator_id"], 0)
        if event["version"] != previous + 1:
            what = "an event before it is missing" if event["version"] > previous + 1 else "it repeats a version: inserted"
            return LiveReport(False, count, 0, f"{where}: follows version {previous} of its aggregate: {what}")
        versions[event["originator_id"]] = event["version"]
        recorded = next(leaves, None)
        if recorded is not None:
            recorded_index, recorded_position, recorded_hash = recorded
            if recorded_position != position:
                if recorded_position < position:
                    problem = f"the event recorded at position {recorded_position} (leaf {recorded_index}) is no longer in the log: removed"
                else:
                    problem = f"{where} was not in the log when leaf {recorded_index} was recorded (position {recorded_position} was): inserted"
                return LiveReport(False, count, 0, problem)
            if recorded_hash != leaf:
                return LiveReport(False, count, 0, f"{where} (leaf {index}) differs from the event recorded when it was appended: changed")
        builder.append(leaf)
        count += 1
        while next_checkpoint is not None and next_checkpoint[0].size == builder.size:
            checkpoint, recorded_row = next_checkpoint
            if builder.root() != checkpoint.root:
                return LiveReport(
                    False, count, 0,
                    f"the log's first {checkpoint.size} events (up to position {position}) do not hash to the checkpoint signed"
                    f" at {recorded_row.recorded_at}: an event up to there was changed, removed or reordered",
                )
            next_checkpoint = next(pending, None)
    if next_checkpoint is not None:
        checkpoint, recorded_row = next_checkpoint
        return LiveReport(False, count, 0, f"the log holds {count} events, but the checkpoint signed at {recorded_row.recorded_at}"
                          f" covers {checkpoint.size}: events were removed from its end")
    extra = next(leaves, None)
    if extra is not None:
        return LiveReport(False, count, 0, f"the event recorded at position {extra[1]} (leaf {extra[0]}) is no longer in the log: removed")
    return LiveReport(True, count, len(checkpoints), f"intact: {count} events, {len(checkpoints)} signed checkpoint(s) checked")


def _recorded_leaves(tree: LogTree):
    """(leaf index, position, hash) of every recorded leaf, in order, read in chunks."""
    after = -1
    while True:
        with tree.store.transaction(write=False) as tx:
            rows = tx.fetchall(f"SELECT leaf_index, position, hash FROM {LEAVES} WHERE leaf_index > ? ORDER BY leaf_index LIMIT 5000", (after,))
        if not rows:
            return
        for index, position, digest in rows:
            yield int(index), int(position), bytes.fromhex(digest)
        after = int(rows[-1][0])


def checkpoint_summary(note: str) -> dict[str, Any]:
    """The fields of a checkpoint note's text, for printing."""
    origin, size, root = note.split("\n")[:3]
    return {"origin": origin, "tree_size": int(size), "root": root}

