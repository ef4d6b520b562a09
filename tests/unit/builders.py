"""Small builders for the unit tests: a standard tenant (directory, catalog, package, policy) in the
canonical settings shape, and shorthands for approval stages.

The standard tenant:
- ``alice`` requests; her manager is ``mike``;
- ``bob`` and ``carol`` approve stage 1; ``dave`` approves stage 2 (when a test adds it);
  ``erin`` is an alternate (escalation) approver; ``frank`` is nobody in particular (no manager);
- ``ada`` is an administrator; ``xena`` is an external user;
- group ``share`` is the package's resource; group ``approvers`` holds bob and carol;
- catalog ``cat`` (enabled, not for external users), package ``pkg``, policy ``pol``: everyone in
  the directory may request, one stage (bob, carol) with a 14 day timeout, access for 30 days,
  extension allowed without approval, reminded 7 days before the end.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Iterable

from domain.access_package import AccessPackage
from domain.assignment_policy import AssignmentPolicy
from domain.catalog import Catalog
from domain.group import Group
from domain.resources import DeliveryFailed, GroupMembership, ResourceKind
from domain.user import User

START = datetime(2026, 1, 1, tzinfo=timezone.utc)

MANAGER = {"requestor_manager": True}


def user(user_id: str) -> dict:
    return {"user": user_id}


def group(group_id: str) -> dict:
    return {"group": group_id}


def _specs(approvers: Iterable[str | dict]) -> list[dict]:
    return [a if isinstance(a, dict) else user(a) for a in approvers]


def escalation(*approvers: str | dict, after: str | None = "P3D", fallback: Iterable[str | dict] = ()) -> dict:
    settings = {"enabled": True, "approvers": _specs(approvers), "fallback_approvers": _specs(fallback)}
    if after is not None:
        settings["after"] = after
    return settings


def stage(
    *approvers: str | dict,
    fallback: Iterable[str | dict] = (),
    timeout: str = "P14D",
    reminder: str | None = None,
    justification: bool = False,
    escalate_to: dict | None = None,
) -> dict:
    """One approval stage; plain strings are user ids."""
    return {
        "approvers": _specs(approvers),
        "fallback_approvers": _specs(fallback),
        "approver_justification_required": justification,
        "timeout": timeout,
        "reminder": reminder,
        "escalation": escalate_to or {"enabled": False},
    }


def approval(*stages: dict) -> dict:
    return {"required": True, "stages": list(stages)}


NO_APPROVAL = {"required": False, "stages": []}

USERS: dict[str, dict] = {
    "alice": {
        "display_name": "Alice Adams",
        "email": "alice@contoso.example",
        "organization": "Contoso",
        "manager": "mike",
    },
    "bob": {"display_name": "Bob Brown", "email": "bob@contoso.example", "organization": "Contoso", "manager": "mike"},
    "carol": {"display_name": "Carol Clark", "email": "carol@contoso.example", "organization": "Contoso"},
    "dave": {"display_name": "Dave Dunn", "email": "dave@contoso.example", "organization": "Contoso"},
    "erin": {"display_name": "Erin Ellis", "email": "erin@contoso.example", "organization": "Contoso"},
    "frank": {"display_name": "Frank Fox", "email": "frank@contoso.example", "organization": "Contoso"},
    "mike": {"display_name": "Mike Moore", "email": "mike@contoso.example", "organization": "Contoso"},
    "ada": {"display_name": "Ada Admin", "email": "ada@contoso.example", "organization": "Contoso", "roles": ["admin"]},
    "xena": {
        "display_name": "Xena Extern",
        "email": "xena@fabrikam.example",
        "organization": "Fabrikam",
        "external": True,
    },
}

GROUPS: dict[str, dict] = {
    "share": {"members": []},
    "approvers": {"members": ["bob", "carol"]},
}

CATALOG = {"name": "Catalog", "enabled": True, "enabled_for_external_users": False}

PACKAGE = {
    "catalog": "cat",
    "name": "Package",
    "hidden": False,
    "notifications_enabled": True,
    "resources": [{"id": "share", "kind": "group"}],
    "incompatible_packages": [],
    "incompatible_groups": [],
    "policies": ["pol"],
}

POLICY = {
    "access_package": "pkg",
    "name": "Staff",
    "requestors": {"scope": "all_members", "users": [], "groups": []},
    "requestor_justification_required": False,
    "questions": [],
    "approval": approval(stage("bob", "carol")),
    "expiration": {"after": "P30D"},
    "extension": {"allowed": True, "approval_required": False, "reminder_before": "P7D"},
}


def _merged(defaults: dict[str, dict], overrides: dict[str, dict] | None) -> dict[str, dict]:
    merged = copy.deepcopy(defaults)
    for key, settings in (overrides or {}).items():
        merged[key] = {**merged.get(key, {}), **copy.deepcopy(settings)}
    return merged


def standard_items(
    *,
    users: dict[str, dict] | None = None,
    groups: dict[str, dict] | None = None,
    catalog: dict[str, Any] | None = None,
    package: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    stages: list[dict] | None = None,
    extra: Iterable[tuple] = (),
) -> list[tuple]:
    """The standard tenant's configuration items, each part shallow-merged with its overrides.

    ``stages`` is a shorthand for ``policy={"approval": approval(*stages)}``.
    """
    policy_settings = {**copy.deepcopy(POLICY), **copy.deepcopy(policy or {})}
    if stages is not None:
        policy_settings["approval"] = approval(*stages)
    items: list[tuple] = [(User, key, settings) for key, settings in _merged(USERS, users).items()]
    items += [(Group, key, settings) for key, settings in _merged(GROUPS, groups).items()]
    items.append((Catalog, "cat", {**CATALOG, **(catalog or {})}))
    items.append((AccessPackage, "pkg", {**copy.deepcopy(PACKAGE), **copy.deepcopy(package or {})}))
    items.append((AssignmentPolicy, "pol", policy_settings))
    items += list(extra)
    return items


def other_package(key: str, *, policy: dict | None = None, **settings: Any) -> list[tuple]:
    """Another package ``key`` in catalog ``cat`` with its own policy ``key-pol`` (no approval)."""
    package_settings = {**copy.deepcopy(PACKAGE), "name": key, "resources": [], "policies": [f"{key}-pol"], **settings}
    policy_settings = {**copy.deepcopy(POLICY), "access_package": key, "approval": NO_APPROVAL, **(policy or {})}
    return [(AccessPackage, key, package_settings), (AssignmentPolicy, f"{key}-pol", policy_settings)]


class FlakyWebhook(ResourceKind):
    """A fake outside system (resource kind ``webhook``) that is down for its first ``failures``
    grants; it remembers what it granted and withdrew."""

    kind = "webhook"

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.granted: list[tuple[str, str]] = []
        self.withdrawn: list[tuple[str, str]] = []

    def grant(self, directory, *, user_id, resource_id, assignment_id, now):
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed(f"{resource_id} is unreachable")
        self.granted.append((user_id, resource_id))
        return []

    def withdraw(self, directory, *, user_id, resource_id, assignment_id, now):
        self.withdrawn.append((user_id, resource_id))
        return []


def kinds_with(webhook: FlakyWebhook) -> dict[str, ResourceKind]:
    return {GroupMembership.kind: GroupMembership(), FlakyWebhook.kind: webhook}


WITH_WEBHOOK = {"resources": [{"id": "share", "kind": "group"}, {"id": "crm", "kind": "webhook"}]}
