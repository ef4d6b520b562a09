"""Who approves: each stage's approvers are resolved to people once, at submission, and recorded in
the Submitted event."""

from __future__ import annotations

import pytest

from tests.unit.builders import MANAGER, escalation, group, stage
from domain import errors


def recorded_stages(events, receipt) -> list[dict]:
    submitted = events(receipt.id)[0]
    assert type(submitted).__name__ == "Submitted"
    return submitted.stages


def test_group_approvers_are_expanded_to_the_group_members(tenant, submit, events):
    tenant(stages=[stage(group("approvers"))])

    stages = recorded_stages(events, submit())

    assert stages[0]["approvers"] == ["bob", "carol"]


def test_requestor_manager_is_looked_up_in_the_directory(tenant, submit, events):
    tenant(stages=[stage(MANAGER)])

    stages = recorded_stages(events, submit())

    assert (stages[0]["approvers"], stages[0]["used_fallback"]) == (["mike"], False)


def test_fallback_approvers_are_used_when_the_primary_approvers_resolve_to_nobody(tenant, submit, events):
    tenant(stages=[stage(MANAGER, fallback=["dave"])])

    stages = recorded_stages(events, submit(requestor_id="frank"))  # frank has no manager

    assert (stages[0]["approvers"], stages[0]["used_fallback"]) == (["dave"], True)


def test_target_and_requestor_are_left_out_of_an_on_behalf_request(tenant, submit, events):
    tenant(
        groups={"approvers": {"members": ["alice", "mike", "carol"]}},
        stages=[stage(group("approvers"), MANAGER)],
    )

    stages = recorded_stages(events, submit(requestor_id="mike", target_user_id="alice"))

    assert stages[0]["approvers"] == ["carol"]


def test_manager_who_requests_on_behalf_gives_way_to_the_fallback_approvers(tenant, submit, events):
    tenant(stages=[stage(MANAGER, fallback=["dave"])])

    stages = recorded_stages(events, submit(requestor_id="mike", target_user_id="alice"))

    assert (stages[0]["approvers"], stages[0]["used_fallback"]) == (["dave"], True)


def test_stage_that_resolves_to_nobody_refuses_the_request(tenant, submit):
    tenant(groups={"empty": {"members": []}}, stages=[stage(group("empty"), fallback=["alice"])])

    with pytest.raises(errors.NoApprovers) as refused:
        submit()

    assert refused.value.details["stage"] == 1


def test_alternate_approvers_are_recorded_for_an_escalating_stage(tenant, submit, events):
    tenant(stages=[stage("bob", escalate_to=escalation("bob", "erin", after="P3D"))])

    stages = recorded_stages(events, submit())

    assert stages[0]["alternate_approvers"] == ["erin"]
    assert (stages[0]["escalation_enabled"], stages[0]["escalation_after"]) == (True, "P3D")


def test_later_group_change_does_not_change_who_may_decide(tenant, submit, app):
    tenant(stages=[stage(group("approvers"))])
    receipt = submit()
    tenant(groups={"approvers": {"members": ["dave"]}}, stages=[stage(group("approvers"))])

    with pytest.raises(errors.NotAnApprover):
        app.decide(request_id=receipt.id, approver_id="dave", decision="approve")
    assert app.decide(request_id=receipt.id, approver_id="carol", decision="approve").state == "delivered"
