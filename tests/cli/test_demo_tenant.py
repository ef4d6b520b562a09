"""The demo tenant keeps its promise to every one of its users: each package a user may request
(per its policies' requestor scope and its catalog) can be requested, so nobody is shown a package
only to be told that nobody could approve it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.application import EntitlementsApplication
from domain.clock import ManualClock
from entitlements.cli import DEMO_TENANT
from entitlements.tenant import load_tenant, read_tenant_file

DEMO = read_tenant_file(DEMO_TENANT)
USERS = [entry["id"] for entry in DEMO["users"]]


@pytest.fixture
def demo():
    application = EntitlementsApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    )
    load_tenant(application, DEMO_TENANT)
    yield application
    application.close()


def packages_seen_by(app: EntitlementsApplication, user_id: str) -> dict[str, object]:
    """Package id -> the first policy that lets ``user_id`` request it, hidden packages included."""
    user = app.user(user_id)
    seen = {}
    for entry in DEMO["access_packages"]:
        package = app.access_package(entry["id"])
        catalog = app.catalog(package.catalog_id)
        if not catalog.enabled or (user.is_external and not catalog.enabled_for_external_users):
            continue
        for policy in app.policies_of(package):
            if policy.accepts_requests() and policy.allows_requestor(
                user_id, is_external=user.is_external, is_in_group=lambda g: user_id in app.group_members(g)
            ):
                seen[package.key] = policy
                break
    return seen


def test_every_demo_user_sees_some_package(demo):
    assert all(packages_seen_by(demo, user_id) for user_id in USERS)


@pytest.mark.parametrize("user_id", USERS)
def test_demo_user_can_request_every_package_they_may_see(demo, user_id):
    for package_id, policy in packages_seen_by(demo, user_id).items():
        answers = {q["id"]: (q.get("choices") or ["INC-1"])[0] for q in policy.questions if q.get("required")}
        receipt = demo.submit_request(
            requestor_id=user_id, access_package_id=package_id, policy_id=policy.key,
            justification="demo check", answers=answers,
        )
        assert receipt.state in {"pending_approval", "delivered"}, (package_id, receipt.state)
        if receipt.state == "pending_approval":  # so an incompatible package is not blocked by this one
            demo.cancel_request(request_id=receipt.id, actor_id=user_id)
