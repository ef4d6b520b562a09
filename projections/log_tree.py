"""The log's Merkle tree and its signed checkpoints, kept beside the log.

Every event of the log is a leaf, in log order: the RFC 9162 leaf hash of the RFC 8785 canonical
bytes of the event as auditors see it (:func:`projections.audit_log.audit_event`, the line
``entitlements audit export`` writes). The service appends the leaves of new events
(``log_tree_leaves``: leaf index, log position, hash) and keeps the tree's compact state (the
roots of its full subtrees), so that a root costs O(log n) whatever the log's length, and records
a signed checkpoint (a C2SP signed note of a tlog-checkpoint) of the head regularly:
:data:`CHECKPOINT_EVERY_EVENTS` events after the last one, or :data:`CHECKPOINT_EVERY_SECONDS`
after it when anything was recorded since, and whenever ``entitlements audit checkpoint`` asks.

The leaves let a one-request export prove each of its events' place in the signed log (RFC 9162
inclusion proofs) without the rest, and let ``entitlements audit verify`` name the first event of
the live log that differs from what was recorded when it was appended. The checkpoints make that
evident even when the leaves were rewritten too: the log must still hash to every signed root.

Checkpoints are kept forever (a rebuild never touches them); leaves and the compact state can be
recomputed from the log (:meth:`LogTree.reset`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from transparency_log.canonical import canonical_bytes_of_parsed
from transparency_log.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.merkle import TreeBuilder, leaf_hash
from transparency_log.note import Signer

from projections.audit_log import AuditLog, audit_event
from projections.store import Transaction, dumps, loads

LEAVES = "log_tree_leaves"
STATE = "log_tree_state"
CHECKPOINTS = "log_checkpoints"

CHECKPOINT_EVERY_EVENTS = 1000
CHECKPOINT_EVERY_SECONDS = 600
READ_CHUNK = 5000
LOCK_KEY = 0x6C6F6774726565  # "logtree": one writer of the tree at a time on PostgreSQL

TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {LEAVES} (
        leaf_index BIGINT PRIMARY KEY,
        position BIGINT NOT NULL,
        hash TEXT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
        name TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        position BIGINT NOT NULL,
        subtrees TEXT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
        tree_size BIGINT PRIMARY KEY,
        position BIGINT NOT NULL,
        root TEXT NOT NULL,
        note TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
)


def event_leaf(row: tuple) -> tuple[int, bytes, dict[str, Any]]:
    """(position, leaf hash, the event) of a log row (position, originator, version, topic, state)."""
    event = audit_event(*row)
    return event["position"], leaf_hash(canonical_bytes_of_parsed(event)), event


@dataclass(frozen=True)
class RecordedCheckpoint:
    tree_size: int
    position: int
    root: bytes
    note: str
    recorded_at: str


class LogTree:
    """The tree over ``audit_log``'s events and the checkpoints signed by ``signer``."""

    def __init__(self, audit_log: AuditLog, signer: Callable[[], Signer], *, now: Callable[[], datetime]) -> None:
        self.audit_log = audit_log
        self.store = audit_log.store
        self._load_signer = signer  # the key is read (or made) only when a checkpoint is signed
        self._signer: Signer | None = None
        self.now = now
        with self.store.transaction() as tx:
            for statement in TABLES:
                tx.execute(statement)

    # --- reading the log ---------------------------------------------------------------------

    def rows_after(self, tx: Transaction, position: int, *, up_to: int | None = None, limit: int | None = None) -> list[tuple]:
        log = self.audit_log.log
        limit = READ_CHUNK if limit is None else limit
        bound = f" AND {log._id} <= {int(up_to)}" if up_to is not None else ""
        return tx.fetchall(
            f"{self.audit_log._select} WHERE {log._id} > ?{bound} ORDER BY {log._id} LIMIT {int(limit)}", (position,)
        )

    def log_rows(self, *, up_to: int | None = None) -> Iterator[tuple]:
        """Every row of the log in order (up to position ``up_to``)."""
        for rows in self.log_chunks(up_to=up_to):
            yield from rows

    def log_chunks(self, *, up_to: int | None = None) -> Iterator[list[tuple]]:
        """Every row of the log in order (up to position ``up_to``), in chunks of READ_CHUNK."""
        position = 0
        while True:
            with self.store.transaction(write=False, binary=True) as tx:
                rows = self.rows_after(tx, position, up_to=up_to)
            if not rows:
                return
            yield rows
            position = int(rows[-1][0])

    # --- the tree ----------------------------------------------------------------------------

    def _lock(self, tx: Transaction) -> None:
        if self.store.backend == "postgresql":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))

    def _state(self, tx: Transaction) -> tuple[TreeBuilder, int]:
        row = tx.fetchone(f"SELECT size, position, subtrees FROM {STATE} WHERE name = 'log'")
        if row is None:
            return TreeBuilder(), 0
        subtrees = [base64.b64decode(item) for item in loads(row[2])]
        return TreeBuilder.resume(int(row[0]), subtrees), int(row[1])

    def append_new(self) -> tuple[int, int]:
        """Appends the leaves of the events recorded since; answers (tree size, position)."""
        while True:
            with self.store.transaction(binary=True) as tx:
                self._lock(tx)
                tree, position = self._state(tx)
                rows = self.rows_after(tx, position)
                if not rows:
                    return tree.size, position
                leaves = []
                for row in rows:
                    position, leaf, _ = event_leaf(row)
                    leaves.append((tree.size, position, leaf.hex()))
                    tree.append(leaf)
                tx.insert_many(f"INSERT INTO {LEAVES} (leaf_index, position, hash)", leaves,
                               types=("bigint", "bigint", "text"))
                tx.execute(
                    f"INSERT INTO {STATE} (name, size, position, subtrees) VALUES ('log', ?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET size = excluded.size, position = excluded.position,"
                    " subtrees = excluded.subtrees",
                    (tree.size, position, dumps([base64.b64encode(s).decode() for s in tree.subtrees])),
                )
                if len(rows) < READ_CHUNK:
                    return tree.size, position

    def leaf_hashes(self, tx: Transaction, size: int) -> list[bytes]:
        rows = tx.fetchall(f"SELECT hash FROM {LEAVES} WHERE leaf_index < ? ORDER BY leaf_index", (size,))
        return [bytes.fromhex(row[0]) for row in rows]

    def leaf_indexes(self, tx: Transaction, positions: list[int]) -> dict[int, int]:
        """Leaf index by log position, for these positions."""
        return {int(p): int(i) for p, i in tx.fetch_where_in(f"SELECT position, leaf_index FROM {LEAVES}", "position", positions)}

    # --- checkpoints -------------------------------------------------------------------------

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = self._load_signer()
        return self._signer

    def checkpoints(self) -> list[RecordedCheckpoint]:
        with self.store.transaction(write=False) as tx:
            rows = tx.fetchall(f"SELECT tree_size, position, root, note, recorded_at FROM {CHECKPOINTS} ORDER BY tree_size")
        return [RecordedCheckpoint(int(r[0]), int(r[1]), base64.b64decode(r[2]), r[3], r[4]) for r in rows]

    def latest(self) -> RecordedCheckpoint | None:
        with self.store.transaction(write=False) as tx:
            row = tx.fetchone(f"SELECT tree_size, position, root, note, recorded_at FROM {CHECKPOINTS} ORDER BY tree_size DESC LIMIT 1")
        return RecordedCheckpoint(int(row[0]), int(row[1]), base64.b64decode(row[2]), row[3], row[4]) if row else None

    def record(self, *, force: bool = True) -> RecordedCheckpoint | None:
        """Appends the new leaves and records a signed checkpoint of the head: always (``force``,
        unless the head is the latest checkpoint's), or only when one is due. Answers the
        checkpoint recorded (or, forced at an unchanged head, the latest); None when none is due."""
        size, position = self.append_new()
        latest = self.latest()
        if latest is not None and latest.tree_size >= size:
            return latest if force else None
        if not force and latest is not None:
            age = (self.now() - datetime.fromisoformat(latest.recorded_at)).total_seconds()
            if size - latest.tree_size < CHECKPOINT_EVERY_EVENTS and age < CHECKPOINT_EVERY_SECONDS:
                return None
        with self.store.transaction(binary=True) as tx:
            self._lock(tx)
            tree, state_position = self._state(tx)
            if tree.size != size:  # another process appended meanwhile: sign what the state says now
                size, position = tree.size, state_position
            root = tree.root()
            note = sign_checkpoint(Checkpoint(self.signer.name, size, root), self.signer)
            recorded_at = self.now().isoformat()
            tx.execute(
                f"INSERT INTO {CHECKPOINTS} (tree_size, position, root, note, recorded_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tree_size) DO NOTHING",
                (size, position, base64.b64encode(root).decode(), note, recorded_at),
            )
        return RecordedCheckpoint(size, position, root, note, recorded_at)

    def reset(self) -> None:
        """Forgets the leaves and the compact state (not the checkpoints): the next
        :meth:`append_new` recomputes them from the log."""
        with self.store.transaction() as tx:
            self._lock(tx)
            tx.execute(f"DELETE FROM {LEAVES}")
            tx.execute(f"DELETE FROM {STATE}")
