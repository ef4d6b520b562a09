"""Each command records the events that tell an auditor what happened, on the request, on the
assignment and on the resource group, and nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

import pytest

from tests.unit.builders import WITH_WEBHOOK, escalation, stage
from domain.membership import Membership

DAY = timedelta(days=1)
SHARE = Membership.id_for("share", "alice")  # alice's membership of the package's group


@pytest.fixture
def recorded_by(event_names) -> Callable:
    """``recorded_by(command, *aggregate_ids)``: runs ``command`` and answers, per aggregate, the
    type names of the events it recorded."""

    def run(command: Callable[[], object], *aggregate_ids) -> list[list[str]]:
        before = [len(event_names(i)) for i in aggregate_ids]
        command()
        return [event_names(i)[n:] for i, n in zip(aggregate_ids, before)]

    return run


@pytest.fixture
def pending(tenant, submit, app):
    """A pending request of alice for pkg: ``(request_id, assignment_id)``; tenant overrides as kwargs."""

    def make(**overrides) -> tuple[str, str]:
        tenant(**overrides)
        receipt = submit()
        return receipt.id, str(app.find_assignment("alice", "pkg").id)

    return make


def test_submission_records_submitted_and_stage_started_and_opens_the_assignment(tenant, submit, app, event_names):
    tenant()

    receipt = submit()

    assignment_id = app.find_assignment("alice", "pkg").id
    assert event_names(receipt.id) == ["Submitted", "StageStarted"]
    assert event_names(assignment_id) == ["Created", "RequestOpened"]


def test_reminder_records_approver_reminded(pending, app, clock, recorded_by):
    request_id, _ = pending(stages=[stage("bob", reminder="P7D")])
    clock.advance(7 * DAY)

    assert recorded_by(lambda: app.remind_approvers(request_id), request_id) == [["ApproverReminded"]]


def test_escalation_records_escalated(pending, app, clock, recorded_by):
    request_id, _ = pending(stages=[stage("bob", escalate_to=escalation("erin", after="P3D"))])
    clock.advance(3 * DAY)

    assert recorded_by(lambda: app.escalate(request_id), request_id) == [["Escalated"]]


def test_stage_one_approval_records_stage_approved_and_starts_stage_two(pending, approve, recorded_by):
    request_id, assignment_id = pending(stages=[stage("bob"), stage("dave")])

    assert recorded_by(lambda: approve(request_id, "bob"), request_id, assignment_id) == [
        ["StageApproved", "StageStarted"],
        [],
    ]


def test_final_approval_records_approved_and_delivers_every_resource(pending, approve, recorded_by):
    request_id, assignment_id = pending()

    assert recorded_by(lambda: approve(request_id, "bob"), request_id, assignment_id, SHARE) == [
        ["StageApproved", "Approved"],
        ["RequestClosed", "Delivering", "ResourceDelivered", "Delivered"],
        ["Created", "Granted"],
    ]


def test_deny_records_denied_and_closes_the_open_request(pending, app, recorded_by):
    request_id, assignment_id = pending()

    def deny():
        app.decide(request_id=request_id, approver_id="bob", decision="deny", reason="no")

    assert recorded_by(deny, request_id, assignment_id) == [["Denied"], ["RequestClosed"]]


def test_expiry_records_expired_and_closes_the_open_request(pending, app, clock, recorded_by):
    request_id, assignment_id = pending()
    clock.advance(14 * DAY)

    assert recorded_by(lambda: app.expire_request(request_id), request_id, assignment_id) == [
        ["Expired"],
        ["RequestClosed"],
    ]


def test_cancel_records_cancelled_and_closes_the_open_request(pending, app, recorded_by):
    request_id, assignment_id = pending()

    def cancel():
        app.cancel_request(request_id=request_id, actor_id="alice")

    assert recorded_by(cancel, request_id, assignment_id) == [["Cancelled"], ["RequestClosed"]]


def test_revocation_records_revoked_removed_and_withdrawn_membership(pending, approve, app, recorded_by):
    request_id, assignment_id = pending()
    approve(request_id, "bob")

    def revoke():
        app.revoke_approval(request_id=request_id, approver_id="bob", reason="mistake")

    assert recorded_by(revoke, request_id, assignment_id, SHARE) == [["Revoked"], ["Removed"], ["Withdrawn"]]


def test_failing_resource_records_resource_failed_and_partially_delivered(pending, approve, recorded_by):
    request_id, assignment_id = pending(package=WITH_WEBHOOK)

    assert recorded_by(lambda: approve(request_id, "bob"), assignment_id) == [
        ["RequestClosed", "Delivering", "ResourceDelivered", "ResourceFailed", "PartiallyDelivered"]
    ]


def test_retried_delivery_records_resource_delivered_and_delivered(pending, approve, app, recorded_by):
    request_id, assignment_id = pending(package=WITH_WEBHOOK)
    approve(request_id, "bob")

    assert recorded_by(lambda: app.deliver(assignment_id), assignment_id) == [["ResourceDelivered", "Delivered"]]


def test_extension_records_extended(granted, app, clock, recorded_by):
    assignment_id = granted()
    clock.advance(25 * DAY)  # within the last 7 days of the 30 days granted, when it may be extended

    def extend():
        app.request_extension(user_id="alice", assignment_id=assignment_id)

    assert recorded_by(extend, assignment_id) == [["RequestOpened", "RequestClosed", "Extended"]]


def test_expiry_reminder_records_expiry_reminded(granted, app, clock, recorded_by):
    assignment_id = granted()
    clock.advance(23 * DAY)

    assert recorded_by(lambda: app.remind_access_expiry(assignment_id), assignment_id) == [["ExpiryReminded"]]


def test_access_expiry_records_access_expired_and_withdrawn_membership(granted, app, clock, recorded_by):
    assignment_id = granted()
    clock.advance(30 * DAY)

    assert recorded_by(lambda: app.expire_access(assignment_id), assignment_id, SHARE) == [
        ["AccessExpired"],
        ["Withdrawn"],
    ]


def test_direct_assignment_records_submitted_and_approved_without_stages(tenant, app, event_names):
    tenant()

    receipt = app.assign_directly(admin_id="ada", target_user_id="frank", access_package_id="pkg")

    assert event_names(receipt.id) == ["Submitted", "Approved"]
