"""The event-sourced configuration, and who was in a group at any moment."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.builders import START, standard_items
from domain.group import Group

DAY = timedelta(days=1)


def test_applying_the_same_configuration_twice_changes_nothing(app):
    app.configure(standard_items(), actor="loader")

    assert app.configure(standard_items(), actor="loader") == []


def test_reconfiguration_records_only_the_items_that_changed(app):
    app.configure(standard_items(), actor="loader")

    changed = app.configure(standard_items(groups={"approvers": {"members": ["dave"]}}), actor="loader")

    assert changed == ["group:approvers"]


def test_request_records_the_policy_version_in_force(app, tenant, submit, events):
    tenant()
    tenant(policy={"requestor_justification_required": True})

    submitted = events(submit(justification="audit").id)[0]

    assert (submitted.policy_id, submitted.policy_version) == ("pol", app.policy("pol").version)
    assert app.policy("pol").version == 2


def test_group_members_at_an_earlier_moment_follow_the_directory_then(app, clock):
    app.configure([(Group, "team", {"members": ["bob"]})], actor="loader")
    clock.advance(10 * DAY)
    app.configure([(Group, "team", {"members": ["carol"]})], actor="loader")

    assert app.group_members("team", at=START + 5 * DAY) == ["bob"]
    assert app.group_members("team") == ["carol"]


def test_group_members_at_a_moment_include_access_granted_then(granted, app, clock):
    assignment_id = granted(policy={"expiration": {"after": "P10D"}})
    clock.advance(10 * DAY)
    app.expire_access(assignment_id)

    assert app.group_members("share", at=START + 5 * DAY) == ["alice"]
    assert app.group_members("share") == []
