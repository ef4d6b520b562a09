"""The domain's commands, stored and read back on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain import errors
from domain.resources import DeliveryFailed, GroupMembership
from entitlements.cli import DEMO_TENANT
from entitlements.tenant import load_tenant, parse_tenant_text

ACCESS_REQUEST_EVENTS = {
    "Submitted", "StageStarted", "ApproverReminded", "Escalated", "StageApproved",
    "Approved", "Denied", "Expired", "Cancelled", "Revoked",
}
ASSIGNMENT_EVENTS = {
    "Delivering", "ResourceDelivered", "ResourceFailed", "Delivered", "PartiallyDelivered",
    "Extended", "ExpiryReminded", "AccessExpired", "Removed",
}


def recorded_event_types(app) -> list[tuple[str, str]]:
    """(aggregate class, event class) of every event in the log, in order."""
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    return [tuple(n.topic.split(":", 1)[1].rsplit(".", 1)) for n in notifications]


class FailingOnce(GroupMembership):
    """Group membership whose first grant of each resource fails, as a flaky connector would."""

    def __init__(self) -> None:
        self.failed: set[str] = set()

    def grant(self, directory, *, user_id, resource_id, assignment_id, now):
        if resource_id not in self.failed:
            self.failed.add(resource_id)
            raise DeliveryFailed(f"{resource_id} is unreachable")
        return super().grant(directory, user_id=user_id, resource_id=resource_id, assignment_id=assignment_id, now=now)


def test_loading_the_same_tenant_file_twice_records_nothing_new(app):
    first = load_tenant(app, DEMO_TENANT)
    position = app.recorder.max_notification_id()
    second = load_tenant(app, DEMO_TENANT)
    assert first.changed and second.changed == []
    assert app.recorder.max_notification_id() == position


def test_tenant_file_in_json_loads_the_same_items_as_yaml(open_app, tmp_path):
    data = parse_tenant_text(DEMO_TENANT.read_text())
    as_json = tmp_path / "tenant.json"
    as_json.write_text(json.dumps(data, default=str))
    app = open_app()
    load_tenant(app, DEMO_TENANT)
    assert load_tenant(app, as_json).changed == []


def test_request_state_survives_reopening_the_store(demo_app, open_app, clock):
    receipt = demo_app.submit_request(
        requestor_id="ben", access_package_id="sales-reports", justification="quarterly close",
        answers={"cost-center": "CC100"},
    )
    demo_app.decide(request_id=receipt.id, approver_id="carol", decision="approve", reason="ok")

    reopened = open_app()
    request = reopened.request(receipt.id)
    assert reopened.request_state(receipt.id) == "delivered"
    assert request.progress[0]["decided_by"] == "carol"
    assert request.answers == {"cost-center": "CC100"}
    assert request.progress[0]["deadline"] == clock.now() + timedelta(days=14)
    assert reopened.group_members("sales-share") == ["ben"]


def test_every_event_of_both_aggregates_is_stored_and_read_back(demo_app, open_app, clock):
    app = demo_app
    # reminder, then approval and delivery; later revoked (Revoked, Removed)
    sales = app.submit_request(requestor_id="ben", access_package_id="sales-reports", justification="close",
                               answers={"cost-center": "CC200"})
    # two stages with escalation in stage 1
    production = app.submit_request(requestor_id="dan", access_package_id="production-access",
                                    justification="on call", answers={"ticket": "INC-1"})
    denied = app.submit_request(requestor_id="ben", access_package_id="payments-audit")
    expiring = app.submit_request(requestor_id="erin", access_package_id="sales-reports", justification="x",
                                  answers={"cost-center": "CC300"})
    cancelled = app.submit_request(requestor_id="dan", access_package_id="sales-reports", justification="x",
                                   answers={"cost-center": "CC100"})
    app.cancel_request(request_id=cancelled.id, actor_id="dan")
    app.decide(request_id=denied.id, approver_id="frank", decision="deny", reason="not in audit team")

    clock.advance(timedelta(days=3))
    app.escalate(production.id)
    app.decide(request_id=production.id, approver_id="frank", decision="approve")
    app.decide(request_id=production.id, approver_id="erin", decision="approve", reason="ticket checked")
    clock.advance(timedelta(days=4))
    app.remind_approvers(sales.id)
    app.decide(request_id=sales.id, approver_id="carol", decision="approve")
    app.revoke_approval(request_id=sales.id, approver_id="carol", reason="left the team")
    clock.advance(timedelta(days=7))
    app.expire_request(expiring.id)

    # a flaky connector: partially delivered, then retried to delivered
    app.resource_kinds["group"] = FailingOnce()
    bridge = app.submit_request(requestor_id="alice", access_package_id="incident-bridge")
    assert bridge.state == "partially_delivered"
    assignment_id = app.find_assignment("alice", "incident-bridge").id
    assert app.deliver(assignment_id).state == "delivered"
    clock.advance(timedelta(days=6, hours=1))
    app.remind_access_expiry(assignment_id)
    assert app.request_extension(user_id="alice", assignment_id=assignment_id).state == "access_extended"
    clock.advance(timedelta(days=8))
    app.expire_access(assignment_id)

    stored = recorded_event_types(open_app())
    assert ACCESS_REQUEST_EVENTS <= {event for aggregate, event in stored if aggregate == "AccessRequest"}
    assert ASSIGNMENT_EVENTS <= {event for aggregate, event in stored if aggregate == "Assignment"}
    reopened = open_app()
    assert reopened.request_state(sales.id) == "revoked"
    assert reopened.request_state(expiring.id) == "expired"
    assert reopened.request_state(denied.id) == "denied"
    assert reopened.request_state(cancelled.id) == "cancelled"
    assert reopened.request_state(production.id) == "delivered"
    assert reopened.assignment(assignment_id).state == "access_expired"


def test_group_membership_at_an_earlier_moment_is_answered_from_the_log(demo_app, clock):
    before = clock.now()
    clock.advance(timedelta(hours=1))
    receipt = demo_app.submit_request(requestor_id="ben", access_package_id="incident-bridge")
    granted = clock.now()
    clock.advance(timedelta(days=8))
    demo_app.expire_access(demo_app.find_assignment("ben", "incident-bridge").id)
    assert receipt.state == "delivered"
    assert demo_app.group_members("incident-responders", at=before) == []
    assert demo_app.group_members("incident-responders", at=granted) == ["ben"]
    assert demo_app.group_members("incident-responders") == []


def test_decision_after_the_deadline_is_refused_and_the_request_stays_expired(demo_app, open_app, clock):
    receipt = demo_app.submit_request(requestor_id="ben", access_package_id="payments-audit")
    clock.advance(timedelta(days=7))
    with pytest.raises(errors.RequestExpired):
        demo_app.decide(request_id=receipt.id, approver_id="frank", decision="approve")
    with pytest.raises(errors.RequestExpired):
        demo_app.decide(request_id=receipt.id, approver_id="frank", decision="approve")
    assert open_app().request_state(receipt.id) == "expired"


def test_admin_direct_assignment_is_stored_as_an_approved_admin_add_request(demo_app, open_app):
    receipt = demo_app.assign_directly(admin_id="alice", target_user_id="pat", access_package_id="partner-portal")
    request = open_app().request(receipt.id)
    assert (request.request_type, request.stages, receipt.state) == ("admin_add", [], "delivered")
