"""Explaining a decision from the log alone (``/audit/requests/{id}/explain``).

For each stage of a request: the approver rules of the policy version it was made under, who could
decide and why (named in the policy, a member of a group, the manager of the person the access is
for, each as the directory was when the request was submitted; whether the fallback approvers were
used), the reminders and the escalation with their moments, the decision (who, when, why, at which
log position) and what the deciding approver was shown: the request's details as the log had them
at the position of the decision (the requestor's name and organization then, the package's name
then, the stage's deadline then, the decisions of the stages before).

Everything is read from the request's events and from the configuration's events (policy, users,
groups, package) up to the positions that matter; nothing comes from a read model.
"""

from __future__ import annotations

from typing import Any

from domain.ids import configuration_id

from projections.audit_log import AuditLog
from projections.store import Transaction

STAGE_EVENTS = {
    "AccessRequest.StageStarted",
    "AccessRequest.ApproverReminded",
    "AccessRequest.Escalated",
    "AccessRequest.StageApproved",
    "AccessRequest.Denied",
    "AccessRequest.Expired",
    "AccessRequest.Cancelled",
}


class Explainer:
    def __init__(self, audit_log: AuditLog) -> None:
        self.audit_log = audit_log

    def explain(self, request_id: str) -> dict[str, Any] | None:
        with self.audit_log.store.transaction(write=False, binary=True) as tx:
            events = self.audit_log.events_of(tx, request_id)
            if not events or events[0]["type"] != "AccessRequest.Submitted":
                return None
            return _Explanation(self.audit_log, tx, events).build()


class _Explanation:
    def __init__(self, audit_log: AuditLog, tx: Transaction, events: list[dict[str, Any]]) -> None:
        self.audit_log, self.tx, self.events = audit_log, tx, events
        self.submitted = events[0]
        self.data = events[0]["data"]
        self._settings_cache: dict[tuple[str, int], dict[str, Any] | None] = {}

    # --- configuration as it was ---------------------------------------------------------------

    def settings_at(self, kind: str, key: str | None, position: int) -> dict[str, Any] | None:
        """The settings of a configured item as of log position ``position`` (None: not known then)."""
        if not key:
            return None
        cache_key = (f"{kind}:{key}", position)
        if cache_key not in self._settings_cache:
            settings = None
            for event in self.audit_log.events_of(self.tx, str(configuration_id(kind, key)), up_to=position):
                if "settings" in event["data"]:
                    settings = event["data"]["settings"]
            self._settings_cache[cache_key] = settings
        return self._settings_cache[cache_key]

    def policy_at_version(self) -> dict[str, Any] | None:
        version = self.data.get("policy_version")
        settings = None
        for event in self.audit_log.events_of(self.tx, str(configuration_id("policy", self.data["policy_id"]))):
            if version is not None and event["version"] > version:
                break
            settings = event["data"].get("settings", settings)
        return settings

    def person(self, user_id: str | None, position: int) -> dict[str, Any] | None:
        if user_id is None:
            return None
        settings = self.settings_at("user", user_id, position) or {}
        return {
            "user_id": user_id,
            "display_name": settings.get("display_name") or user_id,
            "organization": settings.get("organization"),
            "email": settings.get("email"),
        }

    # --- who could decide, and why --------------------------------------------------------------

    def reasons(self, specs: list[dict], person: str, position: int) -> list[str]:
        """Why ``person`` is among those ``specs`` resolve to, as of ``position`` (empty: not)."""
        target = self.data["target_user_id"]
        why, through_access = [], []
        for spec in specs or []:
            if spec.get("user") == person:
                why.append("named in the policy")
            elif spec.get("requestor_manager"):
                if (self.settings_at("user", target, position) or {}).get("manager") == person:
                    why.append(f"manager of {target}, the user the access is for")
            elif spec.get("group"):
                members = (self.settings_at("group", spec["group"], position) or {}).get("members") or []
                if person in members:
                    why.append(f"member of group {spec['group']}")
                else:  # resolution counts members granted through delivered access too
                    through_access.append(f"member of group {spec['group']} through access granted to them")
        return why or through_access

    def could_decide(
        self, people: list[str], specs: list[dict], fallback: list[dict], used_fallback: bool | None, position: int
    ) -> tuple[list[dict], bool]:
        """Each person with the reasons (from the fallback rules when those were used; None:
        not recorded, found out from the rules); whether the fallback rules were used."""
        explained = []
        for person in people:
            why = [] if used_fallback else self.reasons(specs, person, position)
            if not why:
                why = [f"fallback approver, {w}" for w in self.reasons(fallback, person, position)]
                used_fallback = used_fallback is None or used_fallback
            explained.append({"user_id": person, "why": why})
        return explained, bool(used_fallback)

    # --- the whole explanation ----------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        data, submitted = self.data, self.submitted
        position = submitted["position"]
        policy = self.policy_at_version()
        stages = []
        for recorded in data.get("stages") or []:
            number = recorded["number"]
            configured = recorded.get("configured") or {}
            escalation = configured.get("escalation") or {}
            primary, used_fallback = self.could_decide(
                recorded.get("approvers") or [], configured.get("approvers") or [],
                configured.get("fallback_approvers") or [], bool(recorded.get("used_fallback")), position,
            )
            alternates, alternates_used_fallback = self.could_decide(
                recorded.get("alternate_approvers") or [], escalation.get("approvers") or [],
                escalation.get("fallback_approvers") or [], None, position,
            )
            stages.append(
                {
                    "number": number,
                    "rules": {
                        "approvers": configured.get("approvers") or [],
                        "fallback_approvers": configured.get("fallback_approvers") or [],
                        "escalation": escalation,
                        "approver_justification_required": recorded.get("approver_justification_required"),
                        "timeout": recorded.get("timeout"),
                        "reminder": recorded.get("reminder"),
                    },
                    "approvers": primary,
                    "used_fallback": used_fallback,
                    "alternate_approvers": alternates,
                    "alternates_used_fallback": alternates_used_fallback,
                    "started_at": None,
                    "deadline": None,
                    "escalation_at": None,
                    "reminders": [],
                    "escalation": None,
                    "decision": None,
                    "decided_by": None,
                    "decided_at": None,
                    "reason": None,
                    "decision_position": None,
                    "shown_to_approver": None,
                }
            )
        by_number = {stage["number"]: stage for stage in stages}
        groups = sorted({
            spec["group"]
            for recorded in data.get("stages") or []
            for specs in _all_specs(recorded.get("configured") or {})
            for spec in specs
            if spec.get("group")
        })
        directory = {
            "manager_of_target": (self.settings_at("user", data["target_user_id"], position) or {}).get("manager"),
            "group_members": {g: list((self.settings_at("group", g, position) or {}).get("members") or []) for g in groups},
        }
        current = 0
        for event in self.events[1:]:
            kind, event_data = event["type"], event["data"]
            number = event_data.get("stage") or current
            stage = by_number.get(number)
            if kind == "AccessRequest.StageStarted":
                current = number
                if stage:
                    stage.update(started_at=event["timestamp"], deadline=event_data.get("deadline"),
                                 escalation_at=event_data.get("escalation_at"))
            elif stage is None or kind not in STAGE_EVENTS:
                continue
            elif kind == "AccessRequest.ApproverReminded":
                stage["reminders"].append({"at": event["timestamp"], "approvers": event_data.get("approvers"),
                                           "by": event["actor"], "position": event["position"]})
            elif kind == "AccessRequest.Escalated":
                stage["escalation"] = {"at": event["timestamp"], "alternate_approvers": event_data.get("alternate_approvers"),
                                       "by": event["actor"], "position": event["position"]}
            else:
                decision = {
                    "AccessRequest.StageApproved": "approved",
                    "AccessRequest.Denied": "denied",
                    "AccessRequest.Expired": "expired",
                    "AccessRequest.Cancelled": "cancelled",
                }[kind]
                stage.update(
                    decision=decision,
                    decided_by=None if decision == "expired" else event["actor"],
                    decided_at=event["timestamp"],
                    reason=event_data.get("reason"),
                    decision_position=event["position"],
                )
                if decision in ("approved", "denied"):
                    stage["shown_to_approver"] = self.shown_at(event["position"], number, stages)
        outcome = next(
            (
                {"type": e["type"], "at": e["timestamp"], "by": e["actor"], "reason": e["data"].get("reason"), "position": e["position"]}
                for e in reversed(self.events)
                if e["type"] in ("AccessRequest.Approved", "AccessRequest.Denied", "AccessRequest.Expired",
                                 "AccessRequest.Cancelled", "AccessRequest.Revoked")
            ),
            None,
        )
        return {
            "request_id": submitted["originator_id"],
            "request_type": data.get("request_type"),
            "requestor_id": data["requestor_id"],
            "target_user_id": data["target_user_id"],
            "access_package_id": data["access_package_id"],
            "policy_id": data["policy_id"],
            "policy_version": data.get("policy_version"),
            "policy": policy,
            "submitted_at": submitted["timestamp"],
            "submitted_position": position,
            "directory_at_submission": directory,
            "stages": stages,
            "outcome": outcome,
        }

    def shown_at(self, position: int, number: int, stages: list[dict]) -> dict[str, Any]:
        """The request's details as an approver of stage ``number`` saw them just before deciding
        at ``position`` (what the log held at the previous position)."""
        before = position - 1
        data = self.data
        package = self.settings_at("access_package", data["access_package_id"], before) or {}
        questions = {q.get("id"): q.get("text") for q in data.get("questions") or []}
        return {
            "as_of_position": before,
            "requestor": self.person(data["requestor_id"], before),
            "target": self.person(data["target_user_id"], before),
            "access_package": {"id": data["access_package_id"], "name": package.get("name") or data["access_package_id"]},
            "justification": data.get("justification"),
            "answers": [{"question_id": key, "question": questions.get(key), "answer": value} for key, value in (data.get("answers") or {}).items()],
            "start": data.get("start"),
            "end": data.get("end"),
            "submitted_at": self.submitted["timestamp"],
            "stage": number,
            "expires_at": next((s["deadline"] for s in stages if s["number"] == number), None),
            "earlier_stages": [
                {"number": s["number"], "decision": s["decision"], "decided_by": s["decided_by"], "reason": s["reason"], "decided_at": s["decided_at"]}
                for s in stages
                if s["number"] < number
            ],
        }


def _all_specs(configured: dict[str, Any]) -> list[list[dict]]:
    """Every list of approver rules of a stage: primary, fallback, escalation and its fallback."""
    escalation = configured.get("escalation") or {}
    return [configured.get("approvers") or [], configured.get("fallback_approvers") or [],
            escalation.get("approvers") or [], escalation.get("fallback_approvers") or []]
