"""``GET /access-packages``: the packages the caller may request, through HTTP, on both backends.

The tenant of this module: ``alice`` is named by most policies, ``bob`` is in the group
``engineers``, ``carl`` may request only the onboarding package (whose delivery puts him in
``engineers``), ``nora`` is in no requestor scope at all.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from entitlements.tenant import load_tenant_data

STAGE = {"approvers": [{"user": "approver"}], "timeout": "P14D"}
APPROVAL = {"required": True, "stages": [STAGE]}


def specific(users=(), groups=()):
    return {"scope": "specific", "users": list(users), "groups": list(groups)}


TENANT = {
    "users": [{"id": user} for user in ("alice", "bob", "carl", "nora", "approver")],
    "groups": [{"id": "engineers", "members": ["bob"]}],
    "catalogs": [{"id": "it", "name": "IT"}, {"id": "closed", "name": "Closed", "enabled": False}],
    "access_packages": [
        {"id": "wiki", "catalog": "it", "name": "Team wiki", "description": "Pages of every team"},
        {"id": "laptop", "catalog": "it", "name": "Laptop admin", "description": "Local administrator rights"},
        {"id": "secret", "catalog": "it", "name": "Secret", "hidden": True},
        {"id": "old-system", "catalog": "closed", "name": "Old system"},
        {"id": "onboarding", "catalog": "it", "name": "Onboarding", "resources": [{"id": "engineers", "kind": "group"}]},
        *({"id": f"report-{n}", "catalog": "it", "name": f"Report {n}"} for n in range(1, 6)),
    ],
    "policies": [
        {
            "id": "wiki-staff",
            "access_package": "wiki",
            "name": "Staff",
            "requestors": specific(users=["alice"], groups=["engineers"]),
            "requestor_justification_required": True,
            "questions": [
                {"id": "team", "text": "Which team?", "required": True, "choices": ["Red", "Blue"]},
                {"id": "note", "text": "Anything else?"},
            ],
            "approval": APPROVAL,
        },
        {"id": "laptop-engineers", "access_package": "laptop", "requestors": specific(groups=["engineers"]), "approval": APPROVAL},
        {"id": "laptop-alice", "access_package": "laptop", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "secret-alice", "access_package": "secret", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "old-alice", "access_package": "old-system", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "onboarding-carl", "access_package": "onboarding", "requestors": specific(users=["carl"])},
        *(
            {"id": f"report-{n}-alice", "access_package": f"report-{n}", "requestors": specific(users=["alice"]), "approval": APPROVAL}
            for n in range(1, 6)
        ),
    ],
}


@pytest.fixture
def tenant_file(tmp_path):
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(TENANT, sort_keys=False), encoding="utf-8")
    return path


def packages(api, user, query="", **kwargs):
    response = api.get(user, f"/access-packages{query}", **kwargs)
    assert response.status_code == 200, response.json
    return response.json


def ids(body) -> list[str]:
    return [item["id"] for item in body["items"]]


def policy_ids(body, package_id) -> list[str]:
    return next([policy["id"] for policy in item["policies"]] for item in body["items"] if item["id"] == package_id)


def test_hidden_packages_are_left_out(api):
    assert "secret" not in ids(packages(api, "alice"))


def test_each_package_lists_only_the_policies_the_caller_may_request_under(api):
    assert policy_ids(packages(api, "alice"), "laptop") == ["laptop-alice"]
    assert policy_ids(packages(api, "bob"), "laptop") == ["laptop-engineers"]


def test_packages_of_a_disabled_catalog_are_left_out(api):
    assert "old-system" not in ids(packages(api, "alice"))


def test_a_user_in_no_requestor_scope_gets_an_empty_list(api):
    assert packages(api, "nora") == {"items": [], "next_cursor": None}


def test_policies_carry_their_questions_and_whether_a_justification_is_required(api):
    wiki = next(item for item in packages(api, "bob")["items"] if item["id"] == "wiki")

    assert (wiki["name"], wiki["description"], wiki["catalog_id"], wiki["catalog_name"]) == ("Team wiki", "Pages of every team", "it", "IT")
    [policy] = wiki["policies"]
    assert (policy["id"], policy["name"], policy["requestor_justification_required"]) == ("wiki-staff", "Staff", True)
    assert policy["questions"] == [
        {"id": "team", "text": "Which team?", "required": True, "choices": ["Red", "Blue"]},
        {"id": "note", "text": "Anything else?", "required": False, "choices": []},
    ]


def test_a_listed_policy_accepts_the_request_its_form_describes(api):
    wiki = next(item for item in packages(api, "bob")["items"] if item["id"] == "wiki")
    [policy] = wiki["policies"]
    answers = {q["id"]: q["choices"][0] for q in policy["questions"] if q["required"]}

    receipt = api.submit("bob", wiki["id"], policy_id=policy["id"], justification="the launch", answers=answers)

    assert receipt["state"] == "pending_approval"


def test_list_is_ordered_by_name_then_id(api):
    assert ids(packages(api, "alice")) == ["laptop", "report-1", "report-2", "report-3", "report-4", "report-5", "wiki"]


def test_search_keeps_packages_whose_name_or_description_holds_it_letter_case_aside(api):
    assert ids(packages(api, "alice", "?search=REPORT%203")) == ["report-3"]
    assert ids(packages(api, "alice", "?search=administrator")) == ["laptop"]


def test_search_finding_nothing_answers_an_empty_page(api):
    assert packages(api, "alice", "?search=nothing%20like%20it") == {"items": [], "next_cursor": None}


def test_limit_and_cursor_page_through_every_package_once(api):
    every = ids(packages(api, "alice"))
    seen, cursor = [], None
    while True:
        body = packages(api, "alice", f"?limit=3{'&cursor=' + cursor if cursor else ''}")
        assert len(body["items"]) <= 3
        seen += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert seen == every


def test_search_pages_with_its_cursor(api):
    first = packages(api, "alice", "?search=report&limit=2")
    second = packages(api, "alice", f"?search=report&limit=2&cursor={first['next_cursor']}")

    assert ids(first) + ids(second) == ["report-1", "report-2", "report-3", "report-4"]


def test_a_policy_change_is_in_the_list_read_at_its_position(api):
    policy = copy.deepcopy(next(p for p in TENANT["policies"] if p["id"] == "laptop-alice"))
    policy["requestors"] = specific(users=["alice", "nora"])
    load_tenant_data(api.services.app, {"policies": [policy]})
    head = api.services.read_models.head()

    response = api.get("nora", "/access-packages", at=head)

    assert response.status_code == 200 and int(response.headers["X-Position"]) >= head
    assert ids(response.json) == ["laptop"] and policy_ids(response.json, "laptop") == ["laptop-alice"]


def test_group_membership_granted_by_access_shows_at_once(api):
    assert "laptop" not in ids(packages(api, "carl"))
    receipt = api.submit("carl", "onboarding")
    assert receipt["state"] == "delivered"

    assert policy_ids(packages(api, "carl", at=receipt["position"]), "laptop") == ["laptop-engineers"]


def test_answer_carries_the_position_it_was_read_at(api):
    response = api.get("alice", "/access-packages")

    assert int(response.headers["X-Position"]) == api.services.read_models.positions()["catalog"]


def test_a_cursor_not_given_out_is_a_bad_request(api):
    response = api.get("alice", "/access-packages?cursor=bm90LWEtY3Vyc29y")

    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_cursor"


def test_a_search_longer_than_a_name_is_a_bad_request(api):
    response = api.get("alice", f"/access-packages?search={'x' * 501}")

    assert response.status_code == 400 and "search" in response.json["error"]["details"]["fields"]


def test_without_a_token_is_unauthorized(api):
    assert api.get(None, "/access-packages").status_code == 401
