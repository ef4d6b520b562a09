"""``entitlements audit verify`` with no file: the live log against the leaves recorded beside it
and its signed checkpoints. Each change made behind the application's back (straight in the
events table) fails verification with a message that says what and where."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.clock import ManualClock
from entitlements.audit import load_signer, verify_live
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from projections.log_tree import CHECKPOINTS
from transparency_log.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.note import Signer, Verifier, generate_signer

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TENANT = """
users:
  - {id: ann, email: ann@example.test}
  - {id: bob, email: bob@example.test}
catalogs: [{id: it}]
access_packages:
  - {id: wiki, catalog: it, resources: [{id: wiki-editors, kind: group}]}
policies:
  - id: wiki-policy
    access_package: wiki
    approval: {required: true, stages: [{approvers: [{user: bob}], timeout: P14D}]}
"""


@pytest.fixture
def services(database_url, tmp_path):
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(TENANT, encoding="utf-8")
    settings = Settings(database_url=database_url, audit_key_file=str(tmp_path / "audit.key"))
    services = build_services(settings, clock=ManualClock(START))
    try:
        load_tenant(services.app, tenant)
        request = services.app.submit_request(requestor_id="ann", access_package_id="wiki", justification="docs")
        services.app.decide(request_id=request.id, approver_id="bob", decision="approve", reason="fine")
        services.log_tree.record(force=True)
        yield services
    finally:
        services.close()


def verifier(services) -> Verifier:
    return Verifier.from_text(services.log_tree.signer.verifier_key)


class Events:
    """The events table, changed behind the application's back."""

    def __init__(self, services) -> None:
        log = services.read_models.audit_log.log
        self.store, self.table, self.id = services.store, log._table, log._id

    def rows(self) -> list[tuple]:
        with self.store.transaction(write=False, binary=True) as tx:
            return tx.fetchall(f"SELECT {self.id}, originator_id, originator_version, topic, state FROM {self.table} ORDER BY {self.id}")

    def execute(self, statement: str, params=()) -> None:
        with self.store.transaction() as tx:
            tx.execute(statement.format(table=self.table, id=self.id), params)

    def set_state(self, position: int, state: bytes) -> None:
        self.execute("UPDATE {table} SET state = ? WHERE {id} = ?", (state, position))

    def move(self, position: int, to: int) -> None:
        self.execute("UPDATE {table} SET {id} = ? WHERE {id} = ?", (to, position))


def report(services):
    return verify_live(services.log_tree, verifier(services))


def test_an_untouched_live_log_verifies_against_its_checkpoints(services):
    result = report(services)
    assert result.ok, result.message
    assert result.events == len(Events(services).rows()) and result.checkpoints == 1


def test_one_flipped_byte_in_an_event_is_named_by_its_position(services):
    events = Events(services)
    position, _, _, topic, state = next(row for row in events.rows() if row[3].endswith("StageApproved"))
    events.set_state(position, bytes(state).replace(b"fine", b"fime"))
    result = report(services)
    assert not result.ok
    assert f"event at position {position} (AccessRequest.StageApproved" in result.message and "changed" in result.message


def test_a_deleted_event_is_named(services):
    events = Events(services)
    position = events.rows()[5][0]
    events.execute("DELETE FROM {table} WHERE {id} = ?", (position,))
    result = report(services)
    assert not result.ok and ("missing" in result.message or "removed" in result.message)
    assert f"position {position}" in result.message


def test_two_swapped_events_are_named(services):
    events = Events(services)
    rows = events.rows()
    first, second = rows[3][0], rows[4][0]
    head = rows[-1][0]
    events.move(first, head + 10)
    events.move(second, first)
    events.move(head + 10, second)
    result = report(services)
    assert not result.ok
    assert f"position {first}" in result.message


def test_an_event_inserted_in_the_middle_is_named(services):
    events = Events(services)
    rows = events.rows()
    at = rows[10][0]
    for position in reversed([row[0] for row in rows if row[0] >= at]):
        events.move(position, position + 1)
    forged = rows[0]
    events.execute(
        "INSERT INTO {table} ({id}, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        (at, forged[1], 99, forged[3], bytes(forged[4])),
    )
    result = report(services)
    assert not result.ok
    assert f"position {at}" in result.message and ("inserted" in result.message or "missing" in result.message)


def test_events_removed_from_the_end_are_found_by_the_checkpoint(services):
    events = Events(services)
    last = events.rows()[-1][0]
    events.execute("DELETE FROM {table} WHERE {id} >= ?", (last - 1,))
    result = report(services)
    assert not result.ok and "removed" in result.message


def test_a_checkpoint_signed_by_another_key_is_refused(services):
    other = Signer.from_text(generate_signer(services.log_tree.signer.name))
    latest = services.log_tree.latest()
    forged = sign_checkpoint(Checkpoint(other.name, latest.tree_size, latest.root), other)
    with services.store.transaction() as tx:
        tx.execute(f"UPDATE {CHECKPOINTS} SET note = ? WHERE tree_size = ?", (forged, latest.tree_size))
    result = report(services)
    assert not result.ok and f"tree size {latest.tree_size}" in result.message


def test_a_history_rewritten_with_its_leaves_is_found_by_the_signed_root(services):
    events = Events(services)
    position, _, _, _, state = next(row for row in events.rows() if row[3].endswith("StageApproved"))
    events.set_state(position, bytes(state).replace(b"fine", b"fime"))
    services.log_tree.reset()  # the leaves recomputed from the rewritten log
    services.log_tree.append_new()
    result = report(services)
    assert not result.ok
    assert "do not hash to the checkpoint signed" in result.message


def test_the_signing_key_is_made_once_and_kept(tmp_path):
    first = load_signer(tmp_path / "k", "http://127.0.0.1:8000")
    again = load_signer(tmp_path / "k", "http://127.0.0.1:8000")
    assert first.verifier_key == again.verifier_key and first.name == "127.0.0.1:8000/audit"
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
