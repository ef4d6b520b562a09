"""Builders of sample logs and exports for the transparency tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from transparency_log.canonical import canonical_bytes
from transparency_log.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.export import ConsistencyProof, ExportWriter, InclusionProof, write_request_export
from transparency_log.merkle import consistency_proof, inclusion_proof, leaf_hash, root
from transparency_log.note import Signer

AGGREGATES = 8
LIFECYCLE = (
    "AccessRequest.Submitted",
    "AccessRequest.StageApproved",
    "AccessRequest.Approved",
    "AccessRequest.Delivered",
    "AccessRequest.Expired",
)
START = datetime(2024, 5, 17, 9, 0, tzinfo=UTC)


def originator(number: int) -> str:
    return str(uuid.UUID(int=0x6F1C2D3E_4B5A_4C6D_8E9F_000000000000 + number))


def sample_events(count: int, tag: str = "") -> list[dict]:
    """``count`` events of AGGREGATES interleaved requests: event i belongs to request i % 8,
    with version i // 8 + 1 and position 10 + 3 * i (positions have gaps, as real logs do)."""
    events = []
    for i in range(count):
        version = i // AGGREGATES + 1
        events.append(
            {
                "position": 10 + 3 * i,
                "originator_id": originator(i % AGGREGATES),
                "type": LIFECYCLE[(version - 1) % len(LIFECYCLE)],
                "version": version,
                "timestamp": (START + timedelta(minutes=i)).isoformat(),
                "actor": None if version == 4 else f"user-{i % AGGREGATES}@example.com",
                "data": {
                    "justification": f"Q3 numbers for Z\u00fcrich \u2014 request {i % AGGREGATES}{tag}",
                    "approvers": [{"id": "carol@example.com", "stage": 1}, {"id": "dan@example.com", "stage": 2}],
                    "emergency": False,
                },
            }
        )
    return events


def write_full_export(path: Path, signer: Signer, events: list[dict]) -> Checkpoint:
    with ExportWriter(path, signer) as writer:
        for event in events:
            writer.write(event)
        return writer.finish()


def leaf_hashes(events: list[dict]) -> list[bytes]:
    return [leaf_hash(canonical_bytes(event)) for event in events]


def signed_checkpoint(signer: Signer, events: list[dict]) -> str:
    return sign_checkpoint(Checkpoint(signer.name, len(events), root(leaf_hashes(events))), signer)


def write_request_trail(
    path: Path, signer: Signer, events: list[dict], request: int, since_size: int | None = None
) -> int:
    """Writes the request export of request number ``request`` of ``events`` (the whole log),
    with a .consistency file from the log's first ``since_size`` events when given."""
    hashes = leaf_hashes(events)
    trail = [
        (event, InclusionProof(index, len(events), tuple(inclusion_proof(hashes, index))))
        for index, event in enumerate(events)
        if event["originator_id"] == originator(request)
    ]
    consistency = None
    if since_size is not None:
        consistency = ConsistencyProof(
            since_size, root(hashes[:since_size]), len(events), tuple(consistency_proof(hashes, since_size))
        )
    return write_request_export(path, trail, signed_checkpoint(signer, events), consistency)
