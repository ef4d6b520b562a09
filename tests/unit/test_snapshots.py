"""Aggregates whose history grows with use are loaded from a snapshot: a load replays at most
SNAPSHOT_AFTER events, and gives the state a full replay gives."""

from __future__ import annotations

from datetime import timedelta

from domain.application import SNAPSHOT_AFTER
from domain.assignment import Assignment

DAY = timedelta(days=1)


def cycles(app, submit, approve, count: int) -> list[str]:
    """``count`` times: alice requests the package, bob approves, bob revokes. Answers the request ids."""
    ids = []
    for _ in range(count):
        receipt = submit()
        approve(receipt.id)
        app.revoke_approval(request_id=receipt.id, approver_id="bob", reason="again")
        ids.append(receipt.id)
    return ids


def full_replay(app, aggregate_id):
    state = None
    for event in app.events.get(aggregate_id):
        state = event.mutate(state)
    return state


def test_a_long_assignment_is_loaded_from_a_snapshot_replaying_few_events(tenant, submit, approve, app):
    tenant()
    cycles(app, submit, approve, 30)
    assignment_id = app.find_assignment("alice", "pkg").id
    app._kept.clear()  # as a process that starts now finds it

    app.find(Assignment, assignment_id)

    snapshot = next(iter(app.snapshots.get(assignment_id, desc=True, limit=1)))
    assert len(list(app.events.get(assignment_id))) > 4 * SNAPSHOT_AFTER
    assert len(list(app.events.get(assignment_id, gt=snapshot.originator_version))) <= SNAPSHOT_AFTER


def test_an_assignment_loaded_from_a_snapshot_equals_its_full_replay(tenant, submit, approve, app):
    tenant()
    cycles(app, submit, approve, 12)
    receipt = submit()
    approve(receipt.id)
    assignment_id = app.find_assignment("alice", "pkg").id
    kept = app.find(Assignment, assignment_id)
    app._kept.clear()

    loaded = app.find(Assignment, assignment_id)

    assert vars(loaded) == vars(kept) == vars(full_replay(app, assignment_id))


def test_an_earlier_request_answers_how_its_grant_ended_after_access_was_granted_again(
    tenant, submit, approve, app, clock
):
    tenant()
    first = submit()
    approve(first.id)
    clock.advance(30 * DAY)
    app.expire_access(app.find_assignment("alice", "pkg").id)
    [revoked] = cycles(app, submit, approve, 1)
    again = submit()
    approve(again.id)

    assert [app.request_state(r) for r in (first.id, revoked, again.id)] == ["access_expired", "revoked", "delivered"]


def test_a_kept_aggregate_is_brought_up_to_date_with_events_another_process_recorded(tenant, submit, approve, app):
    tenant()
    receipt = submit()
    assignment_id = app.find_assignment("alice", "pkg").id
    kept = app.find(Assignment, assignment_id)
    later = full_replay(app, assignment_id)
    later.close_request(request_id=receipt.id, outcome="cancelled", actor="other", now=later.modified_on)
    app.save(later)  # as another process would, bypassing this application's commands

    assert kept.open_request_id == receipt.id
    assert app.find(Assignment, assignment_id).open_request_id is None


def test_changing_a_loaded_aggregate_leaves_the_kept_state_alone(tenant, submit, app):
    tenant()
    receipt = submit()
    assignment_id = app.find_assignment("alice", "pkg").id
    loaded = app.find(Assignment, assignment_id)

    loaded.close_request(request_id=receipt.id, outcome="cancelled", actor="alice", now=loaded.modified_on)

    assert app.find(Assignment, assignment_id).open_request_id == receipt.id
