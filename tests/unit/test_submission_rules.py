"""Who may request what: the rules checked when a request is submitted."""

from __future__ import annotations

import pytest

from tests.unit.builders import approval, other_package, stage
from domain import errors


def test_disabled_catalog_refuses_requests(tenant, submit):
    tenant(catalog={"enabled": False})

    with pytest.raises(errors.CatalogDisabled):
        submit()


def test_external_user_is_refused_when_catalog_is_not_enabled_for_external_users(tenant, submit):
    tenant(policy={"requestors": {"scope": "all_users"}})

    with pytest.raises(errors.ExternalUsersNotAllowed):
        submit(requestor_id="xena")


def test_external_user_may_request_from_catalog_enabled_for_external_users_under_all_users_scope(tenant, submit):
    tenant(catalog={"enabled_for_external_users": True}, policy={"requestors": {"scope": "all_users"}})

    assert submit(requestor_id="xena").state == "pending_approval"


def test_all_members_scope_excludes_external_users(tenant, submit):
    tenant(catalog={"enabled_for_external_users": True}, policy={"requestors": {"scope": "all_members"}})

    with pytest.raises(errors.RequestorNotAllowed):
        submit(requestor_id="xena")


def test_specific_scope_admits_a_listed_user(tenant, submit):
    tenant(policy={"requestors": {"scope": "specific", "users": ["alice"], "groups": []}})

    assert submit().state == "pending_approval"


def test_specific_scope_admits_a_member_of_a_listed_group(tenant, submit):
    tenant(
        groups={"requestors": {"members": ["alice"]}},
        policy={"requestors": {"scope": "specific", "users": [], "groups": ["requestors"]}},
    )

    assert submit().state == "pending_approval"


def test_specific_scope_refuses_a_user_outside_it(tenant, submit):
    tenant(policy={"requestors": {"scope": "specific", "users": ["frank"], "groups": ["approvers"]}})

    with pytest.raises(errors.RequestorNotAllowed):
        submit()


def test_policy_with_scope_none_accepts_no_requests(tenant, submit):
    tenant(policy={"requestors": {"scope": "none"}})

    with pytest.raises(errors.RequestsNotAccepted):
        submit()


def test_request_on_behalf_of_someone_by_a_non_manager_is_refused(tenant, submit):
    tenant()

    with pytest.raises(errors.OnBehalfNotAllowed):
        submit(requestor_id="frank", target_user_id="alice")


def test_manager_may_request_on_behalf_of_a_direct_report(tenant, submit, app):
    tenant()

    receipt = submit(requestor_id="mike", target_user_id="alice")

    request = app.request(receipt.id)
    assert (receipt.state, request.requestor_id, request.target_user_id) == ("pending_approval", "mike", "alice")


def test_user_who_already_holds_the_package_cannot_request_it(granted, submit):
    granted()

    with pytest.raises(errors.AlreadyAssigned):
        submit()


def test_second_request_while_one_is_open_is_refused_naming_the_open_one(tenant, submit):
    tenant()
    first = submit()

    with pytest.raises(errors.OpenRequestExists) as refused:
        submit(requestor_id="mike", target_user_id="alice")

    assert refused.value.details["request_id"] == first.id


def test_holder_of_an_incompatible_package_cannot_request(tenant, submit):
    tenant(package={"incompatible_packages": ["payroll"]}, extra=other_package("payroll"))
    submit(access_package_id="payroll")

    with pytest.raises(errors.IncompatibleAccess) as refused:
        submit()

    assert refused.value.details == {"incompatible_package": "payroll"}


def test_member_of_an_incompatible_group_cannot_request(tenant, submit):
    tenant(groups={"auditors": {"members": ["alice"]}}, package={"incompatible_groups": ["auditors"]})

    with pytest.raises(errors.IncompatibleAccess) as refused:
        submit()

    assert refused.value.details == {"incompatible_group": "auditors"}


def test_hidden_package_can_still_be_requested_by_id(tenant, submit):
    tenant(package={"hidden": True})

    assert submit().state == "pending_approval"


def test_missing_justification_is_refused_where_the_policy_requires_one(tenant, submit):
    tenant(policy={"requestor_justification_required": True})

    with pytest.raises(errors.JustificationRequired):
        submit()


QUESTIONS = [
    {"id": "cost-center", "text": "Cost center?", "required": True, "choices": ["CC1", "CC2"]},
    {"id": "project", "text": "Project?", "required": False, "choices": []},
]


def test_unanswered_required_question_is_refused(tenant, submit):
    tenant(policy={"questions": QUESTIONS})

    with pytest.raises(errors.AnswerRequired) as refused:
        submit(answers={"project": "apollo"})

    assert refused.value.details["question_id"] == "cost-center"


def test_answer_outside_the_question_choices_is_invalid(tenant, submit):
    tenant(policy={"questions": QUESTIONS})

    with pytest.raises(errors.InvalidAnswer):
        submit(answers={"cost-center": "CC9"})


def test_answer_to_a_question_the_policy_does_not_ask_is_invalid(tenant, submit):
    tenant(policy={"questions": QUESTIONS})

    with pytest.raises(errors.InvalidAnswer) as refused:
        submit(answers={"cost-center": "CC1", "shoe-size": "42"})

    assert refused.value.details["question_id"] == "shoe-size"


def test_justification_and_answers_are_recorded_in_the_submitted_event(tenant, submit, events):
    tenant(policy={"questions": QUESTIONS, "requestor_justification_required": True})

    receipt = submit(justification="  quarterly close  ", answers={"cost-center": "CC2"})

    submitted = events(receipt.id)[0]
    assert (submitted.justification, submitted.answers) == ("quarterly close", {"cost-center": "CC2"})


def test_pending_request_for_an_incompatible_package_blocks_the_request(tenant, submit, app):
    tenant(package={"incompatible_packages": ["other"]},
           extra=other_package("other", policy={"approval": approval(stage("bob"))}))
    submit(access_package_id="other")

    with pytest.raises(errors.IncompatibleAccess) as refused:
        submit()
    assert refused.value.details["incompatible_package"] == "other"


def test_request_whose_access_would_already_have_ended_is_refused(tenant, submit):
    tenant(policy={"expiration": {"on": "2025-12-31"}})

    with pytest.raises(errors.InvalidSchedule):
        submit()


def test_start_that_is_not_a_moment_is_refused(tenant, submit):
    tenant()

    with pytest.raises(errors.InvalidSchedule):
        submit(start="2026-02-01")


def test_answers_that_are_not_a_mapping_are_refused(tenant, submit):
    tenant()

    with pytest.raises(errors.InvalidAnswer):
        submit(answers="CC100")


def test_submission_records_the_questions_asked_and_the_approver_rule(tenant, submit, app, events):
    tenant(policy={"questions": [{"id": "cc", "text": "Cost center?", "required": True, "choices": []}]},
           stages=[stage({"group": "approvers"})])

    receipt = submit(answers={"cc": "CC1"})

    submitted = events(receipt.id)[0]
    assert submitted.questions == [{"id": "cc", "text": "Cost center?"}]
    assert submitted.stages[0]["configured"]["approvers"] == [{"group": "approvers"}]
