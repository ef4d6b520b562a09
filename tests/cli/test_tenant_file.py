"""The tenant file: validated whole, with every problem located by entry and field."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from domain import errors
from domain.application import EntitlementsApplication
from domain.clock import ManualClock
from entitlements.cli import DEMO_TENANT, main
from entitlements.tenant import (
    TenantFileError,
    load_tenant,
    load_tenant_data,
    parse_tenant_text,
    read_tenant_file,
    validate_tenant,
)

MINIMAL = {
    "users": [{"id": "alice"}, {"id": "bob"}],
    "catalogs": [{"id": "c"}],
    "access_packages": [{"id": "p", "catalog": "c", "resources": [{"id": "share", "kind": "group"}]}],
    "policies": [{
        "id": "pol", "access_package": "p",
        "approval": {"required": True, "stages": [{"approvers": [{"user": "bob"}], "timeout": "P14D"}]},
    }],
}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(TenantFileError) as raised:
        validate_tenant(data)
    return raised.value.problems


def with_changes(change) -> dict:
    data = copy.deepcopy(MINIMAL)
    change(data)
    return data


@pytest.fixture
def app():
    application = EntitlementsApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    )
    yield application
    application.close()


def test_minimal_tenant_is_valid():
    tenant = validate_tenant(MINIMAL)
    assert tenant.counts["policies"] == 1 and tenant.resource_groups == ["share"]


def test_missing_field_is_reported_with_its_entry_and_name():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0].pop("timeout"))
    assert problems_of(data) == ["policies[0] (pol).approval.stages[0].timeout: required, but missing"]


def test_unknown_field_is_reported_as_a_likely_misspelling():
    data = with_changes(lambda d: d["catalogs"][0].update(enabeld=True))
    assert problems_of(data) == ["catalogs[0] (c).enabeld: unknown field (check the spelling against API.md)"]


def test_every_problem_in_the_file_is_reported_at_once():
    def break_it(d):
        d["users"][0]["email"] = "not-an-address"
        d["users"][1]["roles"] = ["boss"]
        d["policies"][0]["approval"]["stages"][0]["timeout"] = "two weeks"

    problems = problems_of(with_changes(break_it))
    assert len(problems) == 3
    assert problems[0].startswith("users[0] (alice).email:")
    assert problems[1].startswith("users[1] (bob).roles[0]:")
    assert problems[2].startswith("policies[0] (pol).approval.stages[0].timeout: 'two weeks' is not an ISO 8601 duration")


def test_reference_to_an_unknown_user_names_the_entry_and_field():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0]["approvers"].append({"user": "zed"}))
    assert problems_of(data) == [
        "policies[0] (pol).approval.stages[0].approvers[1].user: no user 'zed' in this file or already loaded"
    ]


def test_duplicate_ids_are_refused():
    data = with_changes(lambda d: d["users"].append({"id": "alice"}))
    assert problems_of(data) == ["users[2] (alice).id: 'alice' is declared twice in users"]


def test_approver_entry_must_name_exactly_one_kind():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0]["approvers"].__setitem__(0, {"user": "bob", "group": "g"}))
    assert problems_of(data) == [
        "policies[0] (pol).approval.stages[0].approvers[0]: name exactly one of user, group or requestor_manager: true"
    ]


def test_required_approval_has_one_to_three_stages():
    stage = MINIMAL["policies"][0]["approval"]["stages"][0]
    data = with_changes(lambda d: d["policies"][0]["approval"].update(stages=[stage] * 4))
    assert problems_of(data) == ["policies[0] (pol).approval.stages: an approval that is required has 1 to 3 stages"]


def test_reminder_must_come_before_the_timeout():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0].update(reminder="P20D"))
    assert problems_of(data) == ["policies[0] (pol).approval.stages[0].reminder: must come before the timeout (P14D)"]


def test_enabled_escalation_needs_a_delay_and_alternates():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0].update(escalation={"enabled": True}))
    problems = problems_of(data)
    assert problems == [
        "policies[0] (pol).approval.stages[0].escalation.after: an enabled escalation needs 'after' (when to forward, e.g. P3D)"
    ]


def test_years_are_refused_in_durations():
    data = with_changes(lambda d: d["policies"][0].update(expiration={"after": "P1Y"}))
    assert "uses years or months" in problems_of(data)[0]


def test_extension_needs_an_expiration_after_a_duration():
    data = with_changes(lambda d: d["policies"][0].update(extension={"allowed": True}))
    assert problems_of(data) == [
        "policies[0] (pol).extension: extensions need an expiration 'after' a duration (there is no period to add)"
    ]


def test_unknown_resource_kind_is_refused():
    data = with_changes(lambda d: d["access_packages"][0]["resources"].append({"id": "hook", "kind": "webhook"}))
    assert problems_of(data) == ["access_packages[0] (p).resources[1].kind: unknown resource kind 'webhook' (known: group)"]


def test_expiration_on_key_is_a_date_not_a_yaml_boolean():
    data = parse_tenant_text("policies:\n  - {id: x, access_package: p, expiration: {on: 2027-12-31}}\n")
    assert data["policies"][0]["expiration"] == {"on": __import__("datetime").date(2027, 12, 31)}


def test_invalid_yaml_reports_the_line():
    with pytest.raises(TenantFileError) as raised:
        parse_tenant_text("users:\n  - {id: a\n", source="t.yaml")
    assert raised.value.problems[0].startswith("line 3, column 1: not valid YAML")


def test_invalid_json_reports_the_line(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"users": [\n  {"id": "a",}\n]}')
    with pytest.raises(TenantFileError) as raised:
        read_tenant_file(path)
    assert raised.value.problems[0].startswith("line 2, column")


def test_missing_file_is_reported():
    with pytest.raises(TenantFileError) as raised:
        read_tenant_file("/no/such/tenant.yaml")
    assert raised.value.problems == ["no such file"]


def test_loading_twice_changes_nothing(app):
    assert load_tenant_data(app, MINIMAL).changed
    position = app.recorder.max_notification_id()
    assert load_tenant_data(app, MINIMAL).changed == []
    assert app.recorder.max_notification_id() == position


def test_changed_entry_is_recorded_as_a_new_version(app):
    load_tenant_data(app, MINIMAL)
    changed = load_tenant_data(app, with_changes(lambda d: d["catalogs"][0].update(enabled=False))).changed
    assert changed == ["catalog:c"]
    assert app.catalog("c").version == 2 and not app.catalog("c").enabled


def test_group_named_only_as_a_resource_is_created_empty(app):
    load_tenant_data(app, MINIMAL)
    assert app.group_members("share") == []


def test_policy_for_a_package_loaded_earlier_joins_its_policies(app):
    load_tenant_data(app, MINIMAL)
    later = {"policies": [{"id": "pol2", "access_package": "p", "requestors": {"scope": "all_users"}}]}
    load_tenant_data(app, later)
    assert [p.key for p in app.policies_of(app.access_package("p"))] == ["pol", "pol2"]


def test_invalid_file_stores_nothing(app):
    data = with_changes(lambda d: d["users"].append({"id": "x", "manager": "nobody"}))
    with pytest.raises(TenantFileError):
        load_tenant_data(app, data)
    assert app.recorder.max_notification_id() in (None, 0)


# --- the demo tenant -----------------------------------------------------------------------------


@pytest.fixture
def demo(app):
    load_tenant(app, DEMO_TENANT)
    return app


def test_demo_tenant_has_a_single_stage_and_a_two_stage_policy_with_escalation(demo):
    assert len(demo.policy("sales-reports-staff").stages) == 1
    stages = demo.policy("production-two-stage").stages
    assert len(stages) == 2 and all(stage["escalation"]["enabled"] for stage in stages)


def test_demo_tenant_hidden_package_can_be_requested_by_id(demo):
    assert demo.access_package("incident-bridge").hidden
    assert demo.submit_request(requestor_id="ben", access_package_id="incident-bridge").state == "delivered"


def test_demo_tenant_manager_requests_on_behalf_of_a_direct_report(demo):
    receipt = demo.submit_request(
        requestor_id="carol", target_user_id="ben", access_package_id="sales-reports",
        justification="new in the team", answers={"cost-center": "CC100"},
    )
    request = demo.request(receipt.id)
    # carol is ben's manager but made the request, so the fallback group decides (ben excluded)
    assert (request.requestor_id, request.target_user_id) == ("carol", "ben")
    assert request.stages[0]["approvers"] == ["dan"] and request.stages[0]["used_fallback"]


def test_demo_tenant_incompatible_packages_exclude_each_other(demo):
    receipt = demo.submit_request(requestor_id="alice", access_package_id="payments-audit")
    demo.decide(request_id=receipt.id, approver_id="frank", decision="approve")
    with pytest.raises(errors.IncompatibleAccess):
        demo.submit_request(requestor_id="alice", access_package_id="payments-admin", justification="x")


def test_demo_tenant_external_user_requests_only_where_the_catalog_allows(demo):
    with pytest.raises(errors.ExternalUsersNotAllowed):
        demo.submit_request(requestor_id="pat", access_package_id="sales-reports", justification="x",
                            answers={"cost-center": "CC100"})
    receipt = demo.submit_request(requestor_id="pat", access_package_id="partner-portal", justification="shared docs")
    assert demo.request(receipt.id).stages[0]["approvers"] == ["dan"]


def test_demo_tenant_questions_must_be_answered(demo):
    with pytest.raises(errors.AnswerRequired):
        demo.submit_request(requestor_id="ben", access_package_id="sales-reports", justification="x")


# --- review fixes ----------------------------------------------------------------------------------

LATER_POLICY = {"policies": [{"id": "pol2", "access_package": "p", "requestors": {"scope": "all_users"}}]}


def test_reloading_a_file_keeps_a_policy_another_file_added_to_its_package(app):
    load_tenant_data(app, MINIMAL)
    load_tenant_data(app, LATER_POLICY)
    assert load_tenant_data(app, MINIMAL).changed == []
    assert [p.key for p in app.policies_of(app.access_package("p"))] == ["pol", "pol2"]


def test_policy_moved_to_another_package_leaves_the_one_it_was_in(app):
    load_tenant_data(app, MINIMAL)
    moved = with_changes(lambda d: (
        d["access_packages"].append({"id": "q", "catalog": "c"}), d["policies"][0].update(access_package="q")
    ))
    load_tenant_data(app, moved)
    assert app.access_package("p").settings["policies"] == []
    assert app.access_package("q").settings["policies"] == ["pol"]


def test_a_file_may_refer_to_items_stored_by_an_earlier_file(app):
    load_tenant_data(app, {"users": [{"id": "alice"}]})
    load_tenant_data(app, {"groups": [{"id": "g", "members": ["alice"]}]})
    assert app.group_members("g") == ["alice"]


@pytest.mark.parametrize("timeout", ["P3650000D", "P99999999999D", "PT0.000001S"])
def test_timeout_outside_one_second_to_a_hundred_years_is_refused(timeout):
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0].update(timeout=timeout))
    [problem] = problems_of(data)
    assert problem.startswith(f"policies[0] (pol).approval.stages[0].timeout: {timeout!r} ")


def test_expiration_on_a_date_that_has_passed_is_refused():
    data = with_changes(lambda d: d["policies"][0].update(expiration={"on": "2020-01-01"}))
    [problem] = problems_of(data)
    assert problem.startswith("policies[0] (pol).expiration.on: 2020-01-01 has passed")


def test_expiration_on_today_is_accepted():
    today = datetime.now(timezone.utc).date().isoformat()
    validate_tenant(with_changes(lambda d: d["policies"][0].update(expiration={"on": today})))


def test_extension_approval_without_approval_stages_is_refused():
    data = with_changes(lambda d: d["policies"][0].update(
        approval={"required": False},
        expiration={"after": "P30D"},
        extension={"allowed": True, "approval_required": True},
    ))
    assert problems_of(data) == [
        "policies[0] (pol).extension: extension.approval_required needs approval stages (approval.required is false or has no stages)"
    ]


# --- one pass over the whole file; types; limits ------------------------------------------------------

SEVERAL_KINDS = """\
users:
  - {id: alice, manager: nobody}
  - {id: bob}
catalogs:
  - {id: finance, enabled: "yes"}
access_packages:
  - {id: p, catalog: finance, hidden: 1, resources: [{id: share, kind: group}]}
policies:
  - id: pol
    access_package: p
    approval:
      required: true
      stages:
        - {approvers: [{user: zed}], timeout: two weeks}
        - {approvers: [{user: bob}], timeout: P14D, reminder: P20D}
        - {approvers: [{user: bob}], timeout: P14D}
        - {approvers: [{user: bob}], timeout: P14D}
    expiration: {on: 2020-01-01}
"""


def test_a_file_with_problems_of_several_kinds_reports_them_all_in_one_run(tmp_path, database, capsys):
    path = tmp_path / "tenant.yaml"
    path.write_text(SEVERAL_KINDS, encoding="utf-8")

    assert main(["load", str(path)]) == 1

    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("  - ")] == [
        "  - catalogs[0] (finance).enabled: expected true or false, got 'yes'",
        "  - access_packages[0] (p).hidden: expected true or false, got 1",
        "  - policies[0] (pol).approval.stages[0].timeout: 'two weeks' is not an ISO 8601 duration such as P14D or PT12H",
        "  - policies[0] (pol).approval.stages[1].reminder: must come before the timeout (P14D)",
        "  - policies[0] (pol).approval.stages: an approval that is required has 1 to 3 stages",
        "  - users[0] (alice).manager: no user 'nobody' in this file or already loaded",
        "  - policies[0] (pol).approval.stages[0].approvers[0].user: no user 'zed' in this file or already loaded",
        f"  - policies[0] (pol).expiration.on: 2020-01-01 has passed (today is {datetime.now(timezone.utc).date().isoformat()})",
    ]


def test_references_of_an_entry_are_checked_even_when_one_of_its_fields_has_the_wrong_type():
    def break_it(d):
        d["policies"][0]["name"] = 5
        d["policies"][0]["approval"]["stages"][0]["approvers"].append({"user": "zed"})

    assert problems_of(with_changes(break_it)) == [
        "policies[0] (pol).name: expected text, got 5",
        "policies[0] (pol).approval.stages[0].approvers[1].user: no user 'zed' in this file or already loaded",
    ]


def test_stage_rules_are_checked_even_when_another_stage_has_a_wrong_value():
    def break_it(d):
        stages = d["policies"][0]["approval"]["stages"]
        stages.append({"approvers": [{"user": "bob"}], "timeout": "P14D", "reminder": "P20D", "approver_justification_required": "no"})

    assert problems_of(with_changes(break_it)) == [
        "policies[0] (pol).approval.stages[1].approver_justification_required: expected true or false, got 'no'",
        "policies[0] (pol).approval.stages[1].reminder: must come before the timeout (P14D)",
    ]


def test_a_wrong_duration_adds_no_rule_of_its_own_about_the_field():
    data = with_changes(lambda d: d["policies"][0].update(expiration={"after": "P1Y"}, extension={"allowed": True}))
    assert problems_of(data) == [
        "policies[0] (pol).expiration.after: 'P1Y' uses years or months; state it in weeks, days or hours (e.g. P365D)"
    ]


def test_text_for_a_flag_is_refused_naming_the_field():
    data = with_changes(lambda d: d["catalogs"][0].update(id="finance", enabled="yes"))
    data["access_packages"][0]["catalog"] = "finance"
    assert problems_of(data) == ["catalogs[0] (finance).enabled: expected true or false, got 'yes'"]


def test_a_number_for_a_flag_is_refused_naming_the_field():
    data = with_changes(lambda d: d["access_packages"][0].update(hidden=1))
    assert problems_of(data) == ["access_packages[0] (p).hidden: expected true or false, got 1"]


def test_a_number_where_text_is_expected_is_refused_naming_the_field():
    data = parse_tenant_text("users: [{id: alice, display_name: 2024}]\n")
    assert problems_of(data) == ["users[0] (alice).display_name: expected text, got 2024"]


def test_a_number_as_an_answer_choice_is_refused_naming_the_choice():
    data = parse_tenant_text(
        "catalogs: [{id: c}]\naccess_packages: [{id: p, catalog: c}]\n"
        "policies: [{id: pol, access_package: p, questions: [{id: q, text: 'Which?', choices: [CC1, 200]}]}]\n"
    )
    assert problems_of(data) == ["policies[0] (pol).questions[0] (q).choices[1]: expected text, got 200"]


def test_a_list_where_a_mapping_is_expected_is_refused_naming_the_field():
    data = with_changes(lambda d: d["policies"][0].update(requestors=["all_members"]))
    assert problems_of(data) == ["policies[0] (pol).requestors: expected a mapping, got ['all_members']"]


def test_a_mapping_where_a_list_is_expected_is_refused_naming_the_field():
    data = with_changes(lambda d: d["policies"][0]["approval"].update(stages={"approvers": [{"user": "bob"}], "timeout": "P14D"}))
    [problem] = problems_of(data)
    assert problem.startswith("policies[0] (pol).approval.stages: expected a list, got {'approvers': ")


def test_a_single_name_where_a_list_is_expected_is_refused_naming_the_field():
    data = with_changes(lambda d: d.update(groups=[{"id": "g", "members": "alice"}]))
    assert problems_of(data) == ["groups[0] (g).members: expected a list, got 'alice'"]


def test_an_entry_that_is_not_a_mapping_is_refused_naming_its_place():
    data = with_changes(lambda d: d["users"].append("carol"))
    assert problems_of(data) == ["users[2]: expected a mapping, got 'carol'"]


def test_a_section_that_is_not_a_list_is_reported_once_without_its_references():
    data = with_changes(lambda d: d.update(users={"alice": {}, "bob": {}}))
    [problem] = problems_of(data)
    assert problem.startswith("users: expected a list, got {'alice': {}")


def test_a_number_for_a_duration_is_refused_naming_the_field():
    data = with_changes(lambda d: d["policies"][0]["approval"]["stages"][0].update(timeout=14))
    assert problems_of(data) == [
        "policies[0] (pol).approval.stages[0].timeout: expected an ISO 8601 duration such as P14D, got 14"
    ]


def test_null_for_a_required_id_is_refused_naming_the_field():
    data = with_changes(lambda d: d["access_packages"][0].update(catalog=None))
    assert problems_of(data) == ["access_packages[0] (p).catalog: expected text, got null"]


def test_an_id_of_more_than_200_characters_is_refused():
    data = with_changes(lambda d: d["users"].append({"id": "u" * 201}))
    assert problems_of(data) == ["users[2].id: must be at most 200 characters long (it has 201)"]


def test_an_id_of_200_characters_is_accepted():
    validate_tenant(with_changes(lambda d: d["users"].append({"id": "u" * 200})))


def test_a_display_name_of_more_than_500_characters_is_refused():
    data = with_changes(lambda d: d["users"][0].update(display_name="A" * 501))
    assert problems_of(data) == ["users[0] (alice).display_name: must be at most 500 characters long (it has 501)"]


def test_a_question_of_more_than_1000_characters_is_refused():
    data = with_changes(lambda d: d["policies"][0].update(questions=[{"id": "q", "text": "?" * 1001}]))
    assert problems_of(data) == ["policies[0] (pol).questions[0] (q).text: must be at most 1000 characters long (it has 1001)"]


def test_a_description_of_more_than_4000_characters_is_refused():
    data = with_changes(lambda d: d["access_packages"][0].update(description="d" * 4001))
    assert problems_of(data) == ["access_packages[0] (p).description: must be at most 4000 characters long (it has 4001)"]


def test_a_description_of_4000_characters_is_accepted():
    validate_tenant(with_changes(lambda d: d["access_packages"][0].update(description="d" * 4000)))


def test_text_with_a_nul_character_is_refused():
    data = with_changes(lambda d: d["catalogs"][0].update(name="Fin\x00ance"))
    assert problems_of(data) == ["catalogs[0] (c).name: must not contain the NUL character (U+0000)"]


def test_text_that_is_not_valid_unicode_is_refused(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"catalogs": [{"id": "c", "name": "Fin\\ud800ance"}]}', encoding="utf-8")
    assert problems_of(read_tenant_file(path)) == [
        "catalogs[0] (c).name: must be valid Unicode: it holds a lone surrogate (U+D800 to U+DFFF)"
    ]
