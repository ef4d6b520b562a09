"""Which numbered emails an event causes, and to whom (DESIGN.md's table, from the seed).

Pure: it reads the event and the request's facts (who the approvers of each stage are, as recorded
when the request was submitted or escalated) and answers ``Planned`` emails. Stages beyond 2 use
the stage-2 emails. Nothing is planned for an administrator's direct assignment (its request) or
for a package whose notifications are disabled: nor for the access such a request granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUEST = "AccessRequest"
ASSIGNMENT = "Assignment"
ADMIN_ADD = "admin_add"

# the events that cause emails (the notifier reads only these, and the ones that say which access
# an assignment holds)
REQUEST_KINDS = ("StageStarted", "ApproverReminded", "Escalated", "StageApproved", "Denied", "Expired")
ASSIGNMENT_KINDS = ("Delivered", "ExpiryReminded", "AccessExpired", "Removed")


@dataclass(frozen=True)
class Planned:
    number: int
    recipients: tuple[str, ...]  # user ids, in a stable order, each once
    due: Any = None  # the moment of the subject's [date] / [time]


def _people(*groups: list[str], leave_out: set[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for person in group:
            if person not in leave_out:
                seen.setdefault(person, None)
    return tuple(seen)


def notifies(request: dict) -> bool:
    return request.get("notifications_enabled", True) is not False


def request_emails(kind: str, data: dict, request: dict) -> list[Planned]:
    """The emails a request's event ``kind`` (``AccessRequest.Escalated``...) causes."""
    if request["request_type"] == ADMIN_ADD or not notifies(request):
        return []
    number = data.get("stage")
    if not number or number > len(request["stages"]):
        return []
    stage = request["stages"][number - 1]
    first = number == 1
    escalation = stage["escalation_enabled"]
    applicants = {request["requestor_id"], request["target_user_id"]}
    primary = _people(stage["approvers"], leave_out=applicants)
    everyone = _people(stage["approvers"], stage["alternate_approvers"], leave_out=applicants)
    event = kind.split(".", 1)[1]
    if event == "StageStarted":
        return [Planned((4 if escalation else 2) if first else (13 if escalation else 11), primary, data["deadline"])]
    if event == "ApproverReminded":
        reminded = _people(data.get("approvers") or stage["approvers"], leave_out=applicants)
        return [Planned((5 if escalation else 3) if first else (14 if escalation else 12), reminded, stage["deadline"])]
    if event == "Escalated":
        alternates = _people(data.get("alternate_approvers") or stage["alternate_approvers"], leave_out=applicants)
        return [Planned(1 if first else 15, alternates, stage["deadline"])]
    if event == "StageApproved":
        final = number == len(request["stages"])
        return [Planned((7 if final else 8) if first else 16, everyone)]
    if event == "Denied":
        return [Planned(9, (request["requestor_id"],))]
    if event == "Expired":
        return [Planned(6 if first else 17, everyone), Planned(10, (request["requestor_id"],))]
    return []


def assignment_emails(kind: str, data: dict, user_id: str, grant: dict | None) -> list[Planned]:
    """The emails an event of the assignment of ``user_id`` causes; ``grant`` is the request whose
    access it holds."""
    if grant is None or grant["request_type"] == ADMIN_ADD or not notifies(grant):
        return []  # the seed: emails are sent only when a user makes a request for access
    event = kind.split(".", 1)[1]
    user = (user_id,)
    if event == "Delivered":
        return [Planned(18, user)]
    if event == "ExpiryReminded":
        return [Planned(19, user, data.get("end"))]
    if event in ("AccessExpired", "Removed"):
        return [Planned(20, user)]
    return []
