"""Delivery: approved access is granted on every resource of the package; the assignment is
Delivered when all succeeded, Partially Delivered when some failed, and failures are retried.
Also the administrator's direct assignment and removal, which deliver and withdraw the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import NO_APPROVAL, START, WITH_WEBHOOK
from domain import errors

TWO_GROUPS = {"resources": [{"id": "share", "kind": "group"}, {"id": "wiki", "kind": "group"}]}
EXTRA_GROUPS = {"wiki": {"members": []}}


def auto_approved(**overrides):
    return {"policy": {"approval": NO_APPROVAL}, **overrides}


# --- delivery ----------------------------------------------------------------------------------


def test_approved_access_is_granted_on_every_resource(tenant, submit, app):
    tenant(groups=EXTRA_GROUPS, package=TWO_GROUPS, **auto_approved())

    submit()

    assert (app.group_members("share"), app.group_members("wiki")) == (["alice"], ["alice"])


def test_assignment_is_delivered_when_every_resource_succeeded(tenant, submit, app):
    tenant(groups=EXTRA_GROUPS, package=TWO_GROUPS, **auto_approved())

    submit()

    assignment = app.find_assignment("alice", "pkg")
    assert (assignment.state, assignment.resource_status) == ("delivered", {"share": "delivered", "wiki": "delivered"})


def test_failing_resource_leaves_the_assignment_partially_delivered(tenant, submit, app):
    tenant(package=WITH_WEBHOOK, **auto_approved())

    receipt = submit()

    assignment = app.find_assignment("alice", "pkg")
    assert receipt.state == "partially_delivered"
    assert (assignment.resource_status, assignment.resource_errors) == (
        {"share": "delivered", "crm": "failed"},
        {"crm": "crm is unreachable"},
    )


def test_retrying_delivery_completes_a_partially_delivered_assignment(tenant, submit, app, webhook):
    tenant(package=WITH_WEBHOOK, **auto_approved())
    submit()
    assignment_id = app.find_assignment("alice", "pkg").id

    assert app.deliver(assignment_id).state == "delivered"
    assert webhook.granted == [("alice", "crm")]


def test_resource_of_a_kind_without_connector_fails(tenant, submit, app):
    tenant(package={"resources": [{"id": "erp", "kind": "sap"}]}, **auto_approved())

    assert submit().state == "partially_delivered"


def test_delivering_a_delivered_assignment_again_records_nothing(tenant, submit, app, event_names):
    tenant(**auto_approved())
    submit()
    assignment_id = app.find_assignment("alice", "pkg").id
    before = event_names(assignment_id)

    assert app.deliver(assignment_id).state == "delivered"
    assert event_names(assignment_id) == before


# --- when access starts and ends -----------------------------------------------------------------


def test_access_ends_after_the_policy_duration(tenant, submit, app):
    tenant(policy={"approval": NO_APPROVAL, "expiration": {"after": "P30D"}})

    submit()

    assert app.find_assignment("alice", "pkg").end == START + timedelta(days=30)


def test_requested_end_earlier_than_the_policy_limit_is_kept(tenant, submit, app):
    tenant(policy={"approval": NO_APPROVAL, "expiration": {"after": "P30D"}})

    submit(end=START + timedelta(days=10))

    assert app.find_assignment("alice", "pkg").end == START + timedelta(days=10)


def test_access_period_starts_when_the_request_is_approved(tenant, submit, app, clock):
    tenant()
    receipt = submit()
    clock.advance(timedelta(days=4))

    app.decide(request_id=receipt.id, approver_id="bob", decision="approve")

    assignment = app.find_assignment("alice", "pkg")
    assert (assignment.start, assignment.end) == (START + timedelta(days=4), START + timedelta(days=34))


def test_access_requested_to_start_later_is_not_granted_before_its_start(tenant, submit, app):
    tenant(**auto_approved())

    submit(start=START + timedelta(days=10))

    assert app.find_assignment("alice", "pkg").start == START + timedelta(days=10)
    assert app.group_members("share") == []


def test_delivery_before_the_requested_start_is_not_yet_due(tenant, submit, app):
    tenant(**auto_approved())
    submit(start=START + timedelta(days=10))

    with pytest.raises(errors.NotYetDue):
        app.deliver(app.find_assignment("alice", "pkg").id)


def test_access_requested_to_start_later_is_delivered_from_its_start(tenant, submit, app, clock):
    tenant(**auto_approved())
    receipt = submit(start=START + timedelta(days=10))
    clock.advance(timedelta(days=10))

    app.deliver(app.find_assignment("alice", "pkg").id)

    assert (app.request_state(receipt.id), app.group_members("share")) == ("delivered", ["alice"])


# --- administrators ----------------------------------------------------------------------------


def test_administrator_assigns_directly_without_approval(tenant, app):
    tenant()

    receipt = app.assign_directly(admin_id="ada", target_user_id="frank", access_package_id="pkg")

    request = app.request(receipt.id)
    assert (receipt.state, request.request_type, request.stages) == ("delivered", "admin_add", [])
    assert app.group_members("share") == ["frank"]


def test_direct_assignment_ignores_the_requestor_scope(tenant, app):
    tenant(policy={"requestors": {"scope": "none"}})

    assert app.assign_directly(admin_id="ada", target_user_id="alice", access_package_id="pkg").state == "delivered"


def test_direct_assignment_by_a_non_administrator_is_refused(tenant, app):
    tenant()

    with pytest.raises(errors.AdministratorRequired):
        app.assign_directly(admin_id="bob", target_user_id="frank", access_package_id="pkg")


def test_administrator_removes_access_and_its_resources(tenant, submit, app, webhook):
    webhook.failures = 0
    tenant(package=WITH_WEBHOOK, **auto_approved())
    submit()
    assignment_id = app.find_assignment("alice", "pkg").id

    receipt = app.remove_access(assignment_id=assignment_id, admin_id="ada", reason="left team")

    assert receipt.state == "removed"
    assert (app.group_members("share"), webhook.withdrawn) == ([], [("alice", "crm")])


def test_removing_access_by_a_non_administrator_is_refused(tenant, submit, app):
    tenant(**auto_approved())
    submit()

    with pytest.raises(errors.AdministratorRequired):
        app.remove_access(assignment_id=app.find_assignment("alice", "pkg").id, admin_id="bob")


def test_removing_access_without_a_reason_is_refused(tenant, submit, app):
    tenant(**auto_approved())
    submit()

    with pytest.raises(errors.ReasonRequired):
        app.remove_access(assignment_id=app.find_assignment("alice", "pkg").id, admin_id="ada", reason=" ")


def test_removed_access_can_be_requested_again(tenant, submit, app):
    tenant(**auto_approved())
    submit()
    app.remove_access(assignment_id=app.find_assignment("alice", "pkg").id, admin_id="ada", reason="moved team")

    assert submit().state == "delivered"
    assert app.group_members("share") == ["alice"]
