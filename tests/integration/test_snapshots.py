"""Snapshots of growing aggregates are stored and read back on SQLite and PostgreSQL: another
process loads the same state from a snapshot as from a full replay."""

from __future__ import annotations

from domain.assignment import Assignment
from domain.membership import Membership
from tests.unit.builders import standard_items


def test_an_assignment_and_a_membership_read_from_snapshots_equal_their_full_replay(app, open_app):
    app.configure(standard_items(), actor="loader")
    for _ in range(20):  # the membership: 1 + 2 x 20 events, more than SNAPSHOT_AFTER
        receipt = app.submit_request(requestor_id="alice", access_package_id="pkg")
        app.decide(request_id=receipt.id, approver_id="bob", decision="approve", reason="ok")
        app.revoke_approval(request_id=receipt.id, approver_id="bob", reason="again")
    receipt = app.submit_request(requestor_id="alice", access_package_id="pkg")
    app.decide(request_id=receipt.id, approver_id="bob", decision="approve", reason="ok")
    other = open_app()

    for cls, aggregate_id in ((Assignment, Assignment.id_for("alice", "pkg")), (Membership, Membership.id_for("share", "alice"))):
        other.find(cls, aggregate_id)  # writes the snapshot
        assert list(other.snapshots.get(aggregate_id)), cls
        replayed = None
        for event in other.events.get(aggregate_id):
            replayed = event.mutate(replayed)
        assert vars(open_app().find(cls, aggregate_id)) == vars(replayed)
