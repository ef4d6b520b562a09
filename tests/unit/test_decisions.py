"""Deciding: one approver of the current stage decides for the whole stage, the first decision wins,
stages follow one another, and the requestor may withdraw a pending request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import START, escalation, stage
from domain import errors
from domain.resources import GroupMembership


def decide(app, receipt, approver_id, decision="approve", reason="ok"):
    return app.decide(request_id=receipt.id, approver_id=approver_id, decision=decision, reason=reason)


# --- single stage ------------------------------------------------------------------------------


def test_deny_ends_the_request_as_denied(tenant, submit, app):
    tenant()

    assert decide(app, submit(), "carol", "deny", "not needed").state == "denied"


def test_second_approver_gets_conflict_naming_first(tenant, submit, app):
    tenant()
    receipt = submit()
    decide(app, receipt, "bob")

    with pytest.raises(errors.AlreadyDecided) as conflict:
        decide(app, receipt, "carol", "deny", "no")

    assert (conflict.value.details["decided_by"], conflict.value.details["decision"]) == ("bob", "approved")


def test_approver_after_a_deny_gets_conflict_naming_the_denier(tenant, submit, app):
    tenant()
    receipt = submit()
    decide(app, receipt, "carol", "deny", "no")

    with pytest.raises(errors.AlreadyDecided) as conflict:
        decide(app, receipt, "bob")

    assert (conflict.value.details["decided_by"], conflict.value.details["decision"]) == ("carol", "denied")


def test_concurrent_decision_saved_second_gets_conflict_naming_the_first(tenant, submit, app, monkeypatch):
    tenant()
    receipt = submit()
    load = app.request_and_assignment
    loads: list[str] = []

    def load_then_let_carol_decide(request_id):
        loaded = load(request_id)
        loads.append("load")
        if len(loads) == 1:  # while bob holds a stale copy, carol decides and saves first
            decide(app, receipt, "carol", "deny", "no")
        return loaded

    monkeypatch.setattr(app, "request_and_assignment", load_then_let_carol_decide)

    with pytest.raises(errors.AlreadyDecided) as conflict:
        decide(app, receipt, "bob")

    assert conflict.value.details["decided_by"] == "carol"
    assert len(loads) == 3  # bob's stale load, carol's, and bob's retry after his save conflicted
    assert app.request_state(receipt.id) == "denied"


def test_someone_who_is_not_an_approver_cannot_decide(tenant, submit, app):
    tenant()

    with pytest.raises(errors.NotAnApprover):
        decide(app, submit(), "frank")


def test_alternate_approver_cannot_decide_before_escalation(tenant, submit, app):
    tenant(stages=[stage("bob", escalate_to=escalation("erin"))])

    with pytest.raises(errors.NotAnApprover):
        decide(app, submit(), "erin")


def test_alternate_approver_may_decide_after_escalation(tenant, submit, app, clock):
    tenant(stages=[stage("bob", escalate_to=escalation("erin", after="P3D"))])
    receipt = submit()
    clock.advance(timedelta(days=3))
    app.escalate(receipt.id)

    assert decide(app, receipt, "erin").state == "delivered"


def test_primary_approver_may_still_decide_after_escalation(tenant, submit, app, clock):
    tenant(stages=[stage("bob", escalate_to=escalation("erin", after="P3D"))])
    receipt = submit()
    clock.advance(timedelta(days=3))
    app.escalate(receipt.id)

    assert decide(app, receipt, "bob", "deny", "no").state == "denied"


def test_requestor_cannot_decide_their_own_request(tenant, submit, app):
    tenant()

    with pytest.raises(errors.SelfApprovalForbidden):
        decide(app, submit(), "alice")


def test_target_cannot_decide_a_request_made_for_them(tenant, submit, app):
    tenant()
    receipt = submit(requestor_id="mike", target_user_id="alice")

    with pytest.raises(errors.SelfApprovalForbidden):
        decide(app, receipt, "alice")


def test_decision_without_a_reason_is_refused_where_the_stage_requires_one(tenant, submit, app):
    tenant(stages=[stage("bob", justification=True)])

    with pytest.raises(errors.ReasonRequired):
        decide(app, submit(), "bob", reason="  ")


# --- multi-stage -------------------------------------------------------------------------------


def test_stage_two_approver_cannot_decide_while_stage_one_is_pending(tenant, submit, app):
    tenant(stages=[stage("bob"), stage("dave")])

    with pytest.raises(errors.NotAnApprover):
        decide(app, submit(), "dave")


def test_stage_one_approval_starts_stage_two_and_grants_nothing_yet(tenant, submit, app):
    tenant(stages=[stage("bob"), stage("dave")])
    receipt = submit()

    answer = decide(app, receipt, "bob")

    assert (answer.state, app.request(receipt.id).current_stage) == ("pending_approval", 2)
    assert app.group_members("share") == []


def test_stage_two_deadline_counts_from_when_stage_two_started(tenant, submit, app, clock):
    tenant(stages=[stage("bob", timeout="P14D"), stage("dave", timeout="P10D")])
    receipt = submit()
    clock.advance(timedelta(days=5))

    decide(app, receipt, "bob")

    assert app.request(receipt.id).deadline == START + timedelta(days=5 + 10)


def test_deny_at_stage_two_ends_the_request(tenant, submit, app):
    tenant(stages=[stage("bob"), stage("dave")])
    receipt = submit()
    decide(app, receipt, "bob")

    assert decide(app, receipt, "dave", "deny", "no").state == "denied"
    assert app.find_assignment("alice", "pkg").open_request_id is None


def test_deny_at_stage_one_never_starts_stage_two(tenant, submit, app, event_names):
    tenant(stages=[stage("bob"), stage("dave")])
    receipt = submit()

    decide(app, receipt, "bob", "deny", "no")

    assert event_names(receipt.id) == ["Submitted", "StageStarted", "Denied"]
    with pytest.raises(errors.RequestNotPending):
        decide(app, receipt, "dave")


def test_stage_one_approver_gets_conflict_once_stage_one_is_decided(tenant, submit, app):
    tenant(stages=[stage("bob", "carol"), stage("dave")])
    receipt = submit()
    decide(app, receipt, "bob")

    with pytest.raises(errors.AlreadyDecided) as conflict:
        decide(app, receipt, "carol")

    assert (conflict.value.details["decided_by"], conflict.value.details["stage"]) == ("bob", 1)


# --- cancelling --------------------------------------------------------------------------------


def test_requestor_can_cancel_a_pending_request(tenant, submit, app):
    tenant()
    receipt = submit()

    assert app.cancel_request(request_id=receipt.id, actor_id="alice", reason="changed my mind").state == "cancelled"


def test_only_the_requestor_may_cancel(tenant, submit, app):
    tenant()
    receipt = submit(requestor_id="mike", target_user_id="alice")

    with pytest.raises(errors.NotTheRequestor):
        app.cancel_request(request_id=receipt.id, actor_id="alice")


def test_approved_request_cannot_be_cancelled(tenant, submit, app):
    tenant()
    receipt = submit()
    decide(app, receipt, "bob")

    with pytest.raises(errors.RequestNotPending):
        app.cancel_request(request_id=receipt.id, actor_id="alice")


def test_approver_of_an_earlier_stage_gets_not_pending_once_the_request_is_cancelled(tenant, submit, app):
    tenant(stages=[stage("bob"), stage("dave")])
    receipt = submit()
    decide(app, receipt, "bob")
    app.cancel_request(request_id=receipt.id, actor_id="alice")

    with pytest.raises(errors.RequestNotPending):
        decide(app, receipt, "bob")


def test_alternate_approver_may_decide_once_escalation_is_due_before_the_scheduler_ran(
    tenant, submit, app, clock, event_names
):
    tenant(stages=[stage("bob", escalate_to=escalation("erin", after="P3D"))])
    receipt = submit()
    clock.advance(timedelta(days=3))

    decide(app, receipt, "erin")

    assert event_names(receipt.id)[2:5] == ["Escalated", "StageApproved", "Approved"]


def test_decision_follows_the_policy_version_the_request_was_made_under(tenant, submit, app, clock):
    tenant()
    receipt = submit()
    tenant(policy={"expiration": {"after": "P90D"}})  # the policy changes while the request waits

    decide(app, receipt, "bob")

    assignment = app.find_assignment("alice", "pkg")
    assert assignment.end == START + timedelta(days=30)
    delivering = next(e for e in app.events.get(assignment.id) if type(e).__name__ == "Delivering")
    assert delivering.policy_version == app.request(receipt.id).policy_version == 1


def test_approval_is_refused_when_the_requested_end_has_passed(tenant, submit, app, clock):
    tenant()
    receipt = submit(end=START + timedelta(days=2))
    clock.advance(timedelta(days=5))

    with pytest.raises(errors.InvalidSchedule):
        decide(app, receipt, "bob")


def test_approval_is_refused_once_the_target_joined_an_incompatible_group(tenant, submit, app):
    tenant(groups={"contractors": {"members": []}}, package={"incompatible_groups": ["contractors"]})
    receipt = submit()
    tenant(groups={"contractors": {"members": ["alice"]}}, package={"incompatible_groups": ["contractors"]})

    with pytest.raises(errors.IncompatibleAccess):
        decide(app, receipt, "bob")
    assert app.request_state(receipt.id) == "pending_approval"


def test_delivery_failing_after_the_approval_is_saved_still_answers_the_approval(tenant, submit, app, resource_kinds):
    class Broken(GroupMembership):
        def grant(self, directory, **kwargs):
            raise errors.ConcurrentModification("connector state changed")

    resource_kinds["group"] = Broken()
    tenant()
    receipt = submit()

    assert decide(app, receipt, "bob").state == "delivering"
    assert app.request(receipt.id).state == "approved"
