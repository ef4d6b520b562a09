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
    requestor_id: str | None = None,
    package_name: str | None = None,
) -> list[dict]:
    """The snapshot of every stage as recorded in ``Submitted``.

    Each entry: ``number, approvers, used_fallback, alternate_approvers, escalation_enabled,
    escalation_after, timeout, reminder, approver_justification_required``.

    A stage nobody could decide refuses the request with ``NoApprovers``, worded for the requestor
    (``requestor_id``; the target by default) and naming the package (``package_name``).
    """

    def resolve(specs: Iterable[dict], left_out: set[str] = excluded) -> list[str]:
        return resolve_approvers(
            specs,
            subject_user_id=subject_user_id,
            members_of=members_of,
            manager_of=manager_of,
            excluded=left_out,
        )

    def nobody(number: int, sets: list[str], *, named_anyone: bool, stage_approvers: list[str] | None = None) -> errors.NoApprovers:
        return _nobody_could_approve(
            number,
            sets,
            named_anyone=named_anyone,
            stage_approvers=stage_approvers,
            requestor_id=requestor_id or subject_user_id,
            target_id=subject_user_id,
            excluded=excluded,
            package_name=package_name,
        )

    snapshot = []
    for number, stage in enumerate(stages, start=1):
        primary = resolve(stage.get("approvers", []))
        used_fallback = False
        if not primary:
            primary = resolve(stage.get("fallback_approvers", []))
            used_fallback = True
        if not primary:
            configured = [*stage.get("approvers", []), *stage.get("fallback_approvers", [])]
            raise nobody(number, ["approvers", "fallback_approvers"], named_anyone=bool(resolve(configured, set())))
        escalation = stage.get("escalation") or {}
        escalation_enabled = bool(escalation.get("enabled", False))
        alternates: list[str] = []
        if escalation_enabled:
            alternates = [p for p in resolve(escalation.get("approvers", [])) if p not in primary]
            if not alternates:
                alternates = [p for p in resolve(escalation.get("fallback_approvers", [])) if p not in primary]
            if not alternates:
                configured = [*escalation.get("approvers", []), *escalation.get("fallback_approvers", [])]
                raise nobody(
                    number,
                    ["escalation.approvers", "escalation.fallback_approvers"],
                    named_anyone=bool(resolve(configured, set())),
                    stage_approvers=primary,
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


def _nobody_could_approve(
    number: int,
    sets: list[str],
    *,
    named_anyone: bool,
    stage_approvers: list[str] | None,
    requestor_id: str,
    target_id: str,
    excluded: set[str],
    package_name: str | None,
) -> errors.NoApprovers:
    """The refusal of a request nobody could decide, in the requestor's words; the technical
    detail (which stage, which sets resolved to nobody, who was left out) goes in ``details``."""
    package = package_name or "This access package"
    on_behalf = target_id != requestor_id
    by = f"you for {target_id}" if on_behalf else "you"
    left_out = ["you", target_id] if on_behalf else ["you"]
    others = " and ".join(left_out)
    escalation = stage_approvers is not None
    if escalation:
        why = (
            f"stage {number} has no alternate approver other than {', '.join(left_out)} and the stage's own approvers"
            if named_anyone
            else f"stage {number} has no alternate approver"
        )
        problem = f"nobody could approve it once stage {number} waits too long and is escalated ({why})"
        technical = f"stage {number} escalates to nobody: its alternate approvers resolve to nobody"
    else:
        why = f"stage {number} has no approver other than {others}" if named_anyone else f"stage {number} has no approver"
        problem = f"nobody could approve it ({why})"
        technical = f"stage {number} has no approver: its approvers and fallback approvers resolve to nobody"
    technical += " once the requestor and the target are left out" + (" (and the stage's approvers)" if escalation else "")
    message = (
        f"{package} cannot be requested by {by} right now: {problem}. "
        f"Ask the package's owner to name another approver for stage {number}."
    )
    details: dict = {
        "stage": number,
        "resolved_to_nobody": sets,
        "left_out": sorted(excluded),
        "reason": technical,
    }
    if escalation:
        details["stage_approvers"] = list(stage_approvers)
    return errors.NoApprovers(message, **details)
