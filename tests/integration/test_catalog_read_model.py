"""The catalog read model (``projections/catalog.py``): the packages a user may request, on SQLite
and on PostgreSQL, decided by the domain's own rules with group membership as it is now."""

from __future__ import annotations

import copy

import pytest

from domain import errors
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant_data
from projections.paging import InvalidCursor

STAGE = {"approvers": [{"user": "approver"}, {"user": "bob"}], "timeout": "P14D"}
APPROVAL = {"required": True, "stages": [STAGE]}


def specific(users=(), groups=()):
    return {"scope": "specific", "users": list(users), "groups": list(groups)}


TENANT = {
    "users": [
        {"id": "alice"},
        {"id": "bob"},
        {"id": "carl"},
        {"id": "nora"},
        {"id": "approver"},
        {"id": "xena", "external": True},
    ],
    "groups": [{"id": "engineers", "members": ["bob"]}],
    "catalogs": [
        {"id": "it", "name": "IT"},
        {"id": "partners", "name": "Partners", "enabled_for_external_users": True},
        {"id": "closed", "name": "Closed", "enabled": False},
    ],
    "access_packages": [
        {"id": "wiki", "catalog": "it", "name": "Team wiki", "description": "Pages of every team"},
        {"id": "laptop", "catalog": "it", "name": "laptop admin", "description": "Local administrator"},
        {"id": "secret", "catalog": "it", "name": "Secret", "hidden": True},
        {"id": "partner-share", "catalog": "partners", "name": "Partner share"},
        {"id": "intranet", "catalog": "it", "name": "Intranet", "description": "News_and 100% updates"},
        {"id": "old-system", "catalog": "closed", "name": "Old system"},
        {"id": "sealed", "catalog": "it", "name": "Sealed"},
        {"id": "onboarding", "catalog": "it", "name": "Engineering onboarding", "resources": [{"id": "engineers", "kind": "group"}]},
        {"id": "street", "catalog": "it", "name": "Straße", "description": "Ünterwegs"},
        {"id": "wiki-2", "catalog": "it", "name": "team WIKI"},
    ],
    "policies": [
        {
            "id": "wiki-staff",
            "access_package": "wiki",
            "name": "Staff",
            "description": "For the people of a team",
            "requestors": specific(users=["alice"], groups=["engineers"]),
            "requestor_justification_required": True,
            "questions": [{"id": "team", "text": "Which team?", "required": True, "choices": ["Red", "Blue"]}],
            "approval": APPROVAL,
            "expiration": {"after": "P90D"},
        },
        {"id": "laptop-engineers", "access_package": "laptop", "requestors": specific(groups=["engineers"]), "approval": APPROVAL},
        {"id": "laptop-alice", "access_package": "laptop", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "secret-alice", "access_package": "secret", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "partner-all", "access_package": "partner-share", "requestors": {"scope": "all_users"}, "approval": APPROVAL},
        {"id": "intranet-members", "access_package": "intranet", "requestors": {"scope": "all_members"}, "approval": APPROVAL},
        {"id": "old-alice", "access_package": "old-system", "requestors": specific(users=["alice"]), "approval": APPROVAL},
        {"id": "sealed-none", "access_package": "sealed", "requestors": {"scope": "none"}, "approval": APPROVAL},
        {"id": "onboarding-carl", "access_package": "onboarding", "requestors": specific(users=["carl"])},
        {"id": "street-members", "access_package": "street", "requestors": {"scope": "all_members"}, "approval": APPROVAL},
        {"id": "wiki-2-members", "access_package": "wiki-2", "requestors": {"scope": "all_members"}, "approval": APPROVAL},
    ],
}
USERS = [user["id"] for user in TENANT["users"]]
PACKAGES = {package["id"]: package for package in TENANT["access_packages"]}
POLICIES_OF = {package_id: [p["id"] for p in TENANT["policies"] if p["access_package"] == package_id] for package_id in PACKAGES}


@pytest.fixture
def services(database_url, clock):
    services = build_services(Settings(database_url=database_url), clock=clock)
    load_tenant_data(services.app, copy.deepcopy(TENANT))
    services.read_models.catch_up()
    yield services
    services.close()


@pytest.fixture
def app(services):
    return services.app


@pytest.fixture
def views(services):
    return services.read_models


def listed(views, user, **kwargs) -> dict[str, list[str]]:
    """Package id -> its policy ids, as listed for ``user``."""
    views.catch_up()
    page = views.requestable_packages(user, limit=200, **kwargs)
    return {item["id"]: [policy["id"] for policy in item["policies"]] for item in page.items}


def all_pages(views, user, *, limit, **kwargs) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = views.requestable_packages(user, limit=limit, cursor=cursor, **kwargs)
        pages.append([item["id"] for item in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_each_listed_policy_is_one_the_domain_accepts_a_request_under_and_no_other(app, views):
    refusals = (errors.RequestorNotAllowed, errors.RequestsNotAccepted, errors.CatalogDisabled, errors.ExternalUsersNotAllowed)
    disagreements = []
    for user in USERS:
        for package_id, policy_ids in POLICIES_OF.items():
            views.catch_up()
            shown = [policy["id"] for policy in views.requestable_package(user, package_id)["policies"]]
            for policy_id in policy_ids:
                answers = {"team": "Red"} if policy_id == "wiki-staff" else {}
                try:
                    receipt = app.submit_request(
                        requestor_id=user, access_package_id=package_id, policy_id=policy_id, justification="check", answers=answers
                    )
                except refusals:
                    accepted = False
                else:
                    accepted = True
                    if receipt.state == "pending_approval":
                        app.cancel_request(request_id=receipt.id, actor_id=user)
                if accepted != (policy_id in shown):
                    disagreements.append((user, package_id, policy_id, accepted))
    assert disagreements == []


def test_hidden_package_is_left_out_of_the_list(views):
    assert "secret" not in listed(views, "alice")


def test_hidden_package_opens_by_id_with_its_policies_and_hidden_true(views):
    package = views.requestable_package("alice", "secret")

    assert package["hidden"] is True
    assert [policy["id"] for policy in package["policies"]] == ["secret-alice"]


def test_unknown_package_is_none(views):
    assert views.requestable_package("alice", "no-such-package") is None


def test_package_shows_only_the_policies_the_user_may_request_under(views):
    assert listed(views, "alice")["laptop"] == ["laptop-alice"]
    assert listed(views, "bob")["laptop"] == ["laptop-engineers"]


def test_package_no_policy_of_which_admits_the_user_is_left_out(views):
    assert "laptop" not in listed(views, "nora")


def test_package_whose_policies_accept_no_requests_is_left_out(views):
    assert all("sealed" not in listed(views, user) for user in USERS)


def test_package_of_a_disabled_catalog_is_left_out(views):
    assert "old-system" not in listed(views, "alice")


def test_package_of_a_disabled_catalog_opens_by_id_with_no_policy(views):
    assert views.requestable_package("alice", "old-system")["policies"] == []


def test_external_user_sees_only_packages_of_catalogs_open_to_external_users(views):
    assert listed(views, "xena") == {"partner-share": ["partner-all"]}


def test_unknown_user_sees_nothing(views):
    page = views.requestable_packages("nobody", limit=50)

    assert (page.items, page.next_cursor) == ([], None)


def test_item_carries_what_the_request_form_needs(views):
    views.catch_up()
    item = next(item for item in views.requestable_packages("alice", limit=200).items if item["id"] == "wiki")

    assert item == {
        "id": "wiki",
        "name": "Team wiki",
        "description": "Pages of every team",
        "catalog_id": "it",
        "catalog_name": "IT",
        "policies": [
            {
                "id": "wiki-staff",
                "name": "Staff",
                "description": "For the people of a team",
                "questions": [{"id": "team", "text": "Which team?", "required": True, "choices": ["Red", "Blue"]}],
                "requestor_justification_required": True,
                "approval_required": True,
                "expiration": {"after": "P90D"},
            }
        ],
    }


def test_member_granted_the_requestor_group_by_delivered_access_is_admitted(app, views):
    assert "laptop" not in listed(views, "carl")
    assert app.submit_request(requestor_id="carl", access_package_id="onboarding").state == "delivered"

    assert listed(views, "carl")["laptop"] == ["laptop-engineers"]


def test_member_removed_from_the_requestor_group_no_longer_sees_its_packages(app, views):
    load_tenant_data(app, {"groups": [{"id": "engineers", "members": []}]})

    assert "laptop" not in listed(views, "bob") and "wiki" not in listed(views, "bob")


def test_policy_reconfigured_to_admit_a_user_is_listed_for_them(app, views):
    policy = copy.deepcopy(next(p for p in TENANT["policies"] if p["id"] == "laptop-alice"))
    policy["requestors"] = specific(users=["alice", "nora"])
    load_tenant_data(app, {"policies": [policy]})

    assert listed(views, "nora")["laptop"] == ["laptop-alice"]


def test_package_reconfigured_hidden_leaves_the_list(app, views):
    package = dict(PACKAGES["intranet"], hidden=True)
    load_tenant_data(app, {"access_packages": [package]})

    assert "intranet" not in listed(views, "alice")
    assert views.requestable_package("alice", "intranet")["hidden"] is True


def test_list_is_ordered_by_name_letter_case_aside_then_id(views):
    assert list(listed(views, "alice")) == ["intranet", "laptop", "partner-share", "street", "wiki", "wiki-2"]


def test_pages_follow_each_other_with_every_package_once(views):
    every = list(listed(views, "alice"))
    pages = all_pages(views, "alice", limit=2)

    assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
    assert [package_id for page in pages for package_id in page] == every


def test_search_matches_the_name_letter_case_aside(views):
    assert list(listed(views, "alice", search="LAPTOP")) == ["laptop"]


def test_search_matches_the_description(views):
    assert list(listed(views, "alice", search="pages of")) == ["wiki"]


def test_search_folds_letter_case_beyond_ascii(views):
    assert list(listed(views, "alice", search="STRASSE")) == ["street"]
    assert list(listed(views, "alice", search="ünter")) == ["street"]


def test_search_takes_percent_and_underscore_literally(views):
    assert list(listed(views, "alice", search="100%")) == ["intranet"]
    assert list(listed(views, "alice", search="s_and")) == ["intranet"]
    assert listed(views, "alice", search="e_s") == {}


def test_search_pages_through_its_matches(views):
    assert all_pages(views, "alice", limit=1, search="a") == [[package_id] for package_id in listed(views, "alice", search="a")]


def test_search_of_spaces_only_lists_every_package(views):
    assert listed(views, "alice", search="   ") == listed(views, "alice")


def test_cursor_not_given_out_is_refused(views):
    with pytest.raises(InvalidCursor):
        views.requestable_packages("alice", limit=10, cursor="bm90LWEtY3Vyc29y")


def test_rebuild_gives_the_rows_of_the_live_projection(app, views):
    policy = copy.deepcopy(next(p for p in TENANT["policies"] if p["id"] == "wiki-staff"))
    policy["requestors"] = {"scope": "all_members"}
    load_tenant_data(app, {"policies": [policy], "access_packages": [dict(PACKAGES["laptop"], name="Laptop")]})
    views.catch_up()
    live = views.dump("catalog")

    result = views.rebuild(["catalog"])

    assert result.names == ["catalog"] and views.positions()["catalog"] == views.head()
    assert views.dump("catalog") == live
