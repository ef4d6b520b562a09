"""Resolving a policy's approval stages into people, once, at submission.

The resolved sets are recorded in the ``Submitted`` event, so later changes to groups or managers
never change who may decide a request already made, and an auditor sees exactly who could.
"""

from __future__ import annotations

from typing import Callable, Iterable

from domain import errors

MembersOf = Callable[[str], list[str]]
ManagerOf = Callable[[str], "str | None"]


def resolve_approvers(
    specs: Iterable[dict],
    *,
    subject_user_id: str,
    members_of: MembersOf,
    manager_of: ManagerOf,
    excluded: set[str],
) -> list[str]:
    """``[{user: bob}, {group: g}, {requestor_manager: true}]`` -> user ids, in order, no repeats.

    Groups are expanded to their members now; the manager is the manager of the user the access is
    for. Anyone in ``excluded`` (the requestor and the target: nobody approves their own request)
    is left out.
    """
    people: dict[str, None] = {}
    for spec in specs:
        if spec.get("user"):
            candidates = [spec["user"]]
        elif spec.get("group"):
            candidates = members_of(spec["group"])
        elif spec.get("requestor_manager"):
            manager = manager_of(subject_user_id)
            candidates = [manager] if manager else []
        else:
            candidates = []
        for person in candidates:
            if person not in excluded:
                people.setdefault(person, None)
    return list(people)


def resolve_stages(
    stages: list[dict],
    *,
    subject_user_id: str,
    excluded: set[str],
    members_of: MembersOf,
    manager_of: ManagerOf,
) -> list[dict]:
    """The snapshot of every stage as recorded in ``Submitted``.

    Each entry: ``number, approvers, used_fallback, alternate_approvers, escalation_enabled,
    escalation_after, timeout, reminder, approver_justification_required``.
    """

    def resolve(specs: Iterable[dict]) -> list[str]:
        return resolve_approvers(
            specs,
            subject_user_id=subject_user_id,
            members_of=members_of,
            manager_of=manager_of,
            excluded=excluded,
        )

    snapshot = []
    for number, stage in enumerate(stages, start=1):
        primary = resolve(stage.get("approvers", []))
        used_fallback = False
        if not primary:
            primary = resolve(stage.get("fallback_approvers", []))
            used_fallback = True
        if not primary:
            raise errors.NoApprovers(
                f"stage {number} has no approver: its approvers and fallback approvers resolve to nobody"
                " (the requestor and the target cannot approve)",
                stage=number,
            )
        escalation = stage.get("escalation") or {}
        escalation_enabled = bool(escalation.get("enabled", False))
        alternates: list[str] = []
        if escalation_enabled:
            alternates = [p for p in resolve(escalation.get("approvers", [])) if p not in primary]
            if not alternates:
                alternates = [p for p in resolve(escalation.get("fallback_approvers", [])) if p not in primary]
            if not alternates:
                raise errors.NoApprovers(
                    f"stage {number} escalates to nobody: its alternate approvers resolve to nobody",
                    stage=number,
                )
        snapshot.append(
            {
                "number": number,
                "approvers": primary,
                "used_fallback": used_fallback,
                "alternate_approvers": alternates,
                "escalation_enabled": escalation_enabled,
                "escalation_after": escalation.get("after") if escalation_enabled else None,
                "timeout": stage["timeout"],
                "reminder": stage.get("reminder"),
                "approver_justification_required": bool(stage.get("approver_justification_required", False)),
                # the rule the sets above were resolved from, as configured in the policy
                "configured": {
                    "approvers": list(stage.get("approvers", [])),
                    "fallback_approvers": list(stage.get("fallback_approvers", [])),
                    "escalation": dict(escalation),
                },
            }
        )
    return snapshot
