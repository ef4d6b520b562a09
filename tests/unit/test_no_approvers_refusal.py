"""A request nobody could decide is refused in words the requestor understands: which package, why,
whom to ask; the technical detail (stage, which sets resolved to nobody) stays in ``details``."""

from __future__ import annotations

import pytest

from tests.unit.builders import MANAGER, escalation, group, stage
from domain import errors

EMPTY = {"empty": {"members": []}}


def refusal(submit, **kwargs) -> errors.NoApprovers:
    with pytest.raises(errors.NoApprovers) as refused:
        submit(**kwargs)
    return refused.value


def test_stage_with_no_approver_but_the_requestor_is_refused_naming_the_package(tenant, submit):
    tenant(groups=EMPTY, stages=[stage(group("empty"), fallback=["alice"])])

    assert refusal(submit).message == (
        "Package cannot be requested by you right now: nobody could approve it"
        " (stage 1 has no approver other than you). Ask the package's owner to name another approver for stage 1."
    )


def test_stage_whose_approvers_name_nobody_at_all_says_it_has_no_approver(tenant, submit):
    tenant(groups=EMPTY, stages=[stage(group("empty"))])

    assert "nobody could approve it (stage 1 has no approver)." in refusal(submit).message


def test_escalation_to_nobody_is_refused_in_the_requestors_words(tenant, submit):
    tenant(stages=[stage("bob", escalate_to=escalation("bob", "alice"))])

    assert refusal(submit).message == (
        "Package cannot be requested by you right now: nobody could approve it once stage 1 waits too long"
        " and is escalated (stage 1 has no alternate approver other than you and the stage's own approvers)."
        " Ask the package's owner to name another approver for stage 1."
    )


def test_refusal_on_behalf_of_someone_names_the_person_it_is_for(tenant, submit):
    tenant(stages=[stage(MANAGER)])

    message = refusal(submit, requestor_id="mike", target_user_id="alice").message

    assert message.startswith("Package cannot be requested by you for alice right now: nobody could approve it")
    assert "(stage 1 has no approver other than you and alice)" in message


def test_refusal_names_the_stage_nobody_could_decide(tenant, submit):
    tenant(groups=EMPTY, stages=[stage("bob"), stage(group("empty"))])

    error = refusal(submit)

    assert "(stage 2 has no approver)" in error.message and error.details["stage"] == 2


def test_refusal_keeps_the_stage_and_the_sets_that_resolved_to_nobody_in_its_details(tenant, submit):
    tenant(groups=EMPTY, stages=[stage(group("empty"), fallback=["alice"])])

    assert refusal(submit).details == {
        "stage": 1,
        "resolved_to_nobody": ["approvers", "fallback_approvers"],
        "left_out": ["alice"],
        "reason": "stage 1 has no approver: its approvers and fallback approvers resolve to nobody"
        " once the requestor and the target are left out",
    }


def test_escalation_refusal_details_name_the_alternate_sets_and_the_stage_approvers(tenant, submit):
    tenant(stages=[stage("bob", escalate_to=escalation("bob", fallback=["alice"]))])

    details = refusal(submit).details

    assert details["resolved_to_nobody"] == ["escalation.approvers", "escalation.fallback_approvers"]
    assert (details["stage"], details["stage_approvers"]) == (1, ["bob"])


def test_refusal_keeps_its_code_and_is_a_rule_violation(tenant, submit):
    tenant(groups=EMPTY, stages=[stage(group("empty"))])

    error = refusal(submit)

    assert error.code == "no_approvers" and isinstance(error, errors.RuleViolation)
