"""Deterministic identifiers: one aggregate per configured key, one assignment per user and package.

Deterministic ids make uniqueness a property of the event store: two writers creating the same
aggregate at once collide on its version, and one of them loses.
"""

from __future__ import annotations

from uuid import UUID, NAMESPACE_URL, uuid5

NAMESPACE = uuid5(NAMESPACE_URL, "urn:entitlements")


def configuration_id(kind: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{key}")


def assignment_id(user_id: str, access_package_id: str) -> UUID:
    return uuid5(NAMESPACE, f"assignment:{user_id}:{access_package_id}")


def membership_id(group_id: str, user_id: str) -> UUID:
    """The group's length comes first, so ``("a:b", "c")`` and ``("a", "b:c")`` differ."""
    return uuid5(NAMESPACE, f"membership:{len(group_id)}:{group_id}:{user_id}")
