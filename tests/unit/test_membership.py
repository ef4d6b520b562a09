"""Group membership granted by access lives on one aggregate per group and user, and the member
index answers who is in a group without replaying any aggregate."""

from __future__ import annotations

import pytest

from domain import errors
from domain.group import Group
from domain.membership import Membership
from tests.unit.builders import other_package


def test_a_grant_writes_the_members_own_aggregate_and_nothing_on_the_group(granted, app, event_names):
    granted()

    assert event_names(Membership.id_for("share", "alice")) == ["Created", "Granted"]
    assert event_names(Group.id_for("share")) == ["Registered"]


def test_grants_of_two_users_into_one_group_touch_two_different_aggregates(tenant, app, event_names):
    tenant(extra=other_package("open", resources=[{"id": "share", "kind": "group"}]))

    app.submit_request(requestor_id="alice", access_package_id="open")
    app.submit_request(requestor_id="frank", access_package_id="open")

    assert Membership.id_for("share", "alice") != Membership.id_for("share", "frank")
    assert event_names(Membership.id_for("share", "frank")) == ["Created", "Granted"]
    assert app.group_members("share") == ["alice", "frank"]


def test_a_member_through_two_packages_stays_until_the_last_grant_ends(tenant, approve, submit, app):
    tenant(extra=other_package("open", resources=[{"id": "share", "kind": "group"}]))
    first = submit()
    approve(first.id)
    app.submit_request(requestor_id="alice", access_package_id="open")

    app.revoke_approval(request_id=first.id, approver_id="bob", reason="moved")

    assert app.group_members("share") == ["alice"]
    app.remove_access(assignment_id=app.find_assignment("alice", "open").id, admin_id="ada", reason="left")
    assert app.group_members("share") == []


def test_membership_ids_keep_group_and_user_apart():
    assert Membership.id_for("a:b", "c") != Membership.id_for("a", "b:c")


def test_members_granted_through_access_are_resolved_as_group_approvers(tenant, app):
    tenant(
        extra=other_package("lead", resources=[{"id": "approvers", "kind": "group"}]),
        stages=[{"approvers": [{"group": "approvers"}], "timeout": "P14D"}],
    )
    app.submit_request(requestor_id="dave", access_package_id="lead")

    receipt = app.submit_request(requestor_id="alice", access_package_id="pkg")

    assert app.request(receipt.id).stages[0]["approvers"] == ["bob", "carol", "dave"]


def test_a_policy_scoped_to_a_group_admits_members_granted_through_access(tenant, app):
    tenant(
        extra=other_package("lead", resources=[{"id": "approvers", "kind": "group"}]),
        policy={"requestors": {"scope": "specific", "users": [], "groups": ["approvers"]}},
    )
    with pytest.raises(errors.RequestorNotAllowed):
        app.submit_request(requestor_id="frank", access_package_id="pkg")

    app.submit_request(requestor_id="frank", access_package_id="lead")

    assert app.submit_request(requestor_id="frank", access_package_id="pkg").state == "pending_approval"
