"""The ``AccessRequest`` aggregate: one request for one access package, from submission through
its approval stages to a final outcome. Every decision is an immutable event that carries who made
it, when, at which stage and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain import errors, limits
from domain.durations import parse_duration

USER_ADD = "user_add"
USER_EXTEND = "user_extend"
ADMIN_ADD = "admin_add"
REQUEST_TYPES = (USER_ADD, USER_EXTEND, ADMIN_ADD)

SUBMITTED = "submitted"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
CANCELLED = "cancelled"
REVOKED = "revoked"
OPEN_STATES = (SUBMITTED, PENDING_APPROVAL)

APPROVE = "approve"
DENY = "deny"
SYSTEM = "system"


class AccessRequest(Aggregate):
    """A request by ``requestor_id`` for ``target_user_id`` to hold ``access_package_id``."""

    class Submitted(Aggregate.Created):
        request_type: str
        requestor_id: str
        target_user_id: str
        access_package_id: str
        catalog_id: str
        policy_id: str
        policy_version: int
        assignment_id: str
        justification: str | None
        questions: list
        answers: dict
        start: datetime | None
        end: datetime | None
        stages: list
        notifications_enabled: bool
        actor: str

    class StageStarted(Aggregate.Event):
        stage: int
        deadline: datetime
        escalation_at: datetime | None
        reminder_at: datetime | None
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = PENDING_APPROVAL
            request.current_stage = self.stage
            request.progress[self.stage - 1].update(
                started_at=self.timestamp,
                deadline=self.deadline,
                escalation_at=self.escalation_at,
                reminder_at=self.reminder_at,
            )

    class ApproverReminded(Aggregate.Event):
        stage: int
        approvers: list
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.progress[self.stage - 1]["reminded_at"] = self.timestamp

    class Escalated(Aggregate.Event):
        stage: int
        alternate_approvers: list
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.progress[self.stage - 1]["escalated_at"] = self.timestamp

    class StageApproved(Aggregate.Event):
        stage: int
        reason: str | None
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.progress[self.stage - 1].update(
                decision="approved", decided_by=self.actor, reason=self.reason, decided_at=self.timestamp
            )

    class Approved(Aggregate.Event):
        stage: int
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = APPROVED
            request.closed_at = self.timestamp

    class Denied(Aggregate.Event):
        stage: int
        reason: str | None
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = DENIED
            request.closed_at = self.timestamp
            request.progress[self.stage - 1].update(
                decision="denied", decided_by=self.actor, reason=self.reason, decided_at=self.timestamp
            )

    class Expired(Aggregate.Event):
        stage: int
        deadline: datetime
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = EXPIRED
            request.closed_at = self.timestamp
            request.progress[self.stage - 1]["decision"] = "expired"

    class Cancelled(Aggregate.Event):
        reason: str | None
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = CANCELLED
            request.closed_at = self.timestamp

    class Revoked(Aggregate.Event):
        stage: int
        reason: str
        actor: str

        def apply(self, request: "AccessRequest") -> None:
            request.state = REVOKED
            request.revoked_by = self.actor
            request.revoked_at = self.timestamp
            request.revocation_reason = self.reason

    def __init__(
        self,
        request_type: str,
        requestor_id: str,
        target_user_id: str,
        access_package_id: str,
        catalog_id: str,
        policy_id: str,
        policy_version: int,
        assignment_id: str,
        justification: str | None,
        questions: list,
        answers: dict,
        start: datetime | None,
        end: datetime | None,
        stages: list,
        notifications_enabled: bool,
        actor: str,
    ) -> None:
        self.request_type = request_type
        self.requestor_id = requestor_id
        self.target_user_id = target_user_id
        self.access_package_id = access_package_id
        self.catalog_id = catalog_id
        self.policy_id = policy_id
        self.policy_version = policy_version
        self.assignment_id = assignment_id
        self.justification = justification
        self.questions = questions  # [{id, text}] as asked, so answers read on their own
        self.answers = answers
        self.start = start
        self.end = end
        self.stages = stages
        self.notifications_enabled = notifications_enabled
        self.state = SUBMITTED
        self.current_stage = 0
        self.closed_at: datetime | None = None
        self.revoked_by: str | None = None
        self.revoked_at: datetime | None = None
        self.revocation_reason: str | None = None
        self.progress: list[dict[str, Any]] = [
            {
                "started_at": None,
                "deadline": None,
                "escalation_at": None,
                "reminder_at": None,
                "escalated_at": None,
                "reminded_at": None,
                "decision": None,
                "decided_by": None,
                "reason": None,
                "decided_at": None,
            }
            for _ in stages
        ]

    # --- creation ----------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        *,
        request_type: str,
        requestor_id: str,
        target_user_id: str,
        access_package_id: str,
        catalog_id: str,
        policy_id: str,
        policy_version: int,
        assignment_id: str,
        justification: str | None,
        questions: list,
        answers: dict,
        start: datetime | None,
        end: datetime | None,
        stages: list,
        notifications_enabled: bool,
        now: datetime,
    ) -> "AccessRequest":
        if request_type not in REQUEST_TYPES:
            raise errors.InvalidInput(f"unknown request type {request_type!r}")
        limits.check_input(justification=justification, answers=answers, start=start, end=end)
        request = cls._create(
            cls.Submitted,
            request_type=request_type,
            requestor_id=requestor_id,
            target_user_id=target_user_id,
            access_package_id=access_package_id,
            catalog_id=catalog_id,
            policy_id=policy_id,
            policy_version=policy_version,
            assignment_id=assignment_id,
            justification=justification,
            questions=questions,
            answers=answers,
            start=start,
            end=end,
            stages=stages,
            notifications_enabled=notifications_enabled,
            actor=requestor_id,
            timestamp=now,
        )
        if stages:
            request._start_stage(1, actor=requestor_id, now=now)
        else:
            # No approval needed: the policy approves a user's request; an administrator's own
            # direct assignment is approved by that administrator.
            approved_by = requestor_id if request_type == ADMIN_ADD else SYSTEM
            request.trigger_event(cls.Approved, stage=0, actor=approved_by, timestamp=now)
        return request

    # --- queries -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def stage(self) -> dict | None:
        """The current stage's snapshot merged with its progress, while pending."""
        if self.state != PENDING_APPROVAL:
            return None
        return self.stage_view(self.current_stage)

    def stage_view(self, number: int) -> dict:
        return {**self.stages[number - 1], **self.progress[number - 1]}

    @property
    def deadline(self) -> datetime | None:
        stage = self.stage
        return stage["deadline"] if stage else None

    def escalation_due(self, now: datetime) -> bool:
        """Escalation is enabled for the current stage, its time has come and it is not recorded."""
        stage = self.stage
        return bool(
            stage
            and stage["escalation_enabled"]
            and stage["escalated_at"] is None
            and stage["escalation_at"] is not None
            and now >= stage["escalation_at"]
        )

    def is_overdue(self, now: datetime) -> bool:
        deadline = self.deadline
        return deadline is not None and now >= deadline

    def can_decide_now(self, user_id: str) -> bool:
        """Is ``user_id`` among those who may decide the current stage now?"""
        stage = self.stage
        if stage is None or user_id in (self.requestor_id, self.target_user_id):
            return False
        return user_id in stage["approvers"] or (
            stage["escalated_at"] is not None and user_id in stage["alternate_approvers"]
        )

    def approvers_who_approved(self) -> dict[str, int]:
        """``{user_id: stage}`` for every stage approval recorded."""
        return {p["decided_by"]: n for n, p in enumerate(self.progress, start=1) if p["decision"] == "approved"}

    # --- decisions ---------------------------------------------------------------------------

    def decide(self, *, approver_id: str, decision: str, reason: str | None, now: datetime) -> None:
        """One approver of the current stage decides for the whole stage; the first decision wins."""
        if decision not in (APPROVE, DENY):
            raise errors.InvalidDecision(f"decision must be 'approve' or 'deny', not {decision!r}", decision=decision)
        limits.check_input(reason=reason)
        self._check_may_decide(approver_id, now)
        stage = self.stage
        assert stage is not None
        reason = (reason or "").strip() or None
        if stage["approver_justification_required"] and not reason:
            raise errors.ReasonRequired(
                f"stage {self.current_stage} of this request requires a reason for the decision", stage=self.current_stage
            )
        number = self.current_stage
        if decision == DENY:
            self.trigger_event(self.Denied, stage=number, reason=reason, actor=approver_id, timestamp=now)
            return
        self.trigger_event(self.StageApproved, stage=number, reason=reason, actor=approver_id, timestamp=now)
        if number < len(self.stages):
            self._start_stage(number + 1, actor=approver_id, now=now)
        else:
            self.trigger_event(self.Approved, stage=number, actor=approver_id, timestamp=now)

    def _check_may_decide(self, user_id: str, now: datetime) -> None:
        if self.state == EXPIRED:
            raise errors.RequestExpired(
                "this request expired: nobody decided before its deadline, so it can no longer be decided",
                state=self.state,
            )
        if self.state == CANCELLED:
            raise errors.RequestNotPending("this request was cancelled; it can no longer be decided", state=self.state)
        if user_id in (self.requestor_id, self.target_user_id):
            raise errors.SelfApprovalForbidden(
                "nobody may decide a request they made or that is for them", user_id=user_id
            )
        if self.can_decide_now(user_id):
            if self.is_overdue(now):
                raise errors.RequestExpired(
                    f"this request expired at {self.deadline.isoformat()}; it can no longer be decided",
                    state=EXPIRED,
                )
            return
        for number in range(len(self.stages), 0, -1):
            snapshot, progress = self.stages[number - 1], self.progress[number - 1]
            if progress["decided_by"] and user_id in snapshot["approvers"] + snapshot["alternate_approvers"]:
                raise errors.AlreadyDecided(
                    f"stage {number} was already decided ({progress['decision']}) by {progress['decided_by']}",
                    decided_by=progress["decided_by"],
                    decision=progress["decision"],
                    stage=number,
                    decided_at=progress["decided_at"].isoformat(),
                )
        if self.state != PENDING_APPROVAL:
            raise errors.RequestNotPending(f"this request is {self.state}, not awaiting a decision", state=self.state)
        stage = self.stage
        assert stage is not None
        if user_id in stage["alternate_approvers"]:
            raise errors.NotAnApprover(
                f"{user_id} is an alternate approver of stage {self.current_stage} and may decide only once it is escalated",
                stage=self.current_stage,
            )
        raise errors.NotAnApprover(
            f"{user_id} is not an approver of stage {self.current_stage} of this request", stage=self.current_stage
        )

    def _start_stage(self, number: int, *, actor: str, now: datetime) -> None:
        stage = self.stages[number - 1]
        deadline = now + parse_duration(stage["timeout"])
        escalation_at = None
        if stage["escalation_enabled"] and stage.get("escalation_after"):
            escalation_at = now + parse_duration(stage["escalation_after"])
        reminder_at = now + parse_duration(stage["reminder"]) if stage.get("reminder") else None
        self.trigger_event(
            self.StageStarted,
            stage=number,
            deadline=deadline,
            escalation_at=escalation_at,
            reminder_at=reminder_at,
            actor=actor,
            timestamp=now,
        )

    # --- time-driven ---------------------------------------------------------------------------

    def _require_pending(self) -> dict:
        stage = self.stage
        if stage is None:
            raise errors.RequestNotPending(f"this request is {self.state}, not awaiting a decision", state=self.state)
        return stage

    def _require_before_deadline(self, now: datetime) -> dict:
        """Reminding or escalating a stage whose deadline passed helps nobody: it expires instead."""
        stage = self._require_pending()
        if now >= stage["deadline"]:
            raise errors.RequestExpired(
                f"stage {self.current_stage} passed its deadline ({stage['deadline'].isoformat()}); the request expires",
                state=EXPIRED,
            )
        return stage

    def remind(self, *, now: datetime, actor: str = SYSTEM) -> list[str]:
        """Reminds the current stage's primary approvers; returns who was reminded."""
        stage = self._require_before_deadline(now)
        if stage["reminded_at"] is not None:
            raise errors.AlreadyReminded(f"stage {self.current_stage} approvers were already reminded", stage=self.current_stage)
        if stage["reminder_at"] is None:
            raise errors.NotYetDue(f"stage {self.current_stage} has no reminder", stage=self.current_stage)
        if now < stage["reminder_at"]:
            raise errors.NotYetDue(
                f"the reminder of stage {self.current_stage} is due at {stage['reminder_at'].isoformat()}",
                due_at=stage["reminder_at"].isoformat(),
            )
        approvers = list(stage["approvers"])  # the primary approvers (emails #3/#5, #12/#14)
        self.trigger_event(self.ApproverReminded, stage=self.current_stage, approvers=approvers, actor=actor, timestamp=now)
        return approvers

    def escalate(self, *, now: datetime, actor: str = SYSTEM) -> None:
        """Forwards the current stage to its alternate approvers."""
        stage = self._require_before_deadline(now)
        if not stage["escalation_enabled"]:
            raise errors.EscalationNotEnabled(f"stage {self.current_stage} has no escalation", stage=self.current_stage)
        if stage["escalated_at"] is not None:
            raise errors.AlreadyEscalated(f"stage {self.current_stage} was already escalated", stage=self.current_stage)
        if stage["escalation_at"] is not None and now < stage["escalation_at"]:
            raise errors.NotYetDue(
                f"stage {self.current_stage} escalates at {stage['escalation_at'].isoformat()}",
                due_at=stage["escalation_at"].isoformat(),
            )
        self.trigger_event(
            self.Escalated,
            stage=self.current_stage,
            alternate_approvers=list(stage["alternate_approvers"]),
            actor=actor,
            timestamp=now,
        )

    def expire(self, *, now: datetime, actor: str = SYSTEM) -> None:
        """Nobody decided the current stage before its deadline: the request ends."""
        stage = self._require_pending()
        if now < stage["deadline"]:
            raise errors.NotYetDue(
                f"stage {self.current_stage} expires at {stage['deadline'].isoformat()}",
                due_at=stage["deadline"].isoformat(),
            )
        self.trigger_event(self.Expired, stage=self.current_stage, deadline=stage["deadline"], actor=actor, timestamp=now)

    # --- by the requestor or the approver ------------------------------------------------------

    def cancel(self, *, actor: str, reason: str | None, now: datetime) -> None:
        limits.check_input(reason=reason)
        if actor != self.requestor_id:
            raise errors.NotTheRequestor("only the requestor may cancel this request", requestor_id=self.requestor_id)
        if not self.is_open:
            raise errors.RequestNotPending(f"this request is {self.state}; only a pending request can be cancelled", state=self.state)
        self.trigger_event(self.Cancelled, reason=(reason or "").strip() or None, actor=actor, timestamp=now)

    def withdraw(self, *, reason: str, now: datetime) -> None:
        """The system ends a pending request that can no longer succeed (an extension of access
        that ended or was removed meanwhile); recorded as a cancellation by ``system``."""
        if not self.is_open:
            raise errors.RequestNotPending(f"this request is {self.state}, not pending", state=self.state)
        self.trigger_event(self.Cancelled, reason=reason, actor=SYSTEM, timestamp=now)

    def revoke(self, *, actor: str, reason: str | None, now: datetime) -> None:
        """The approver who approved undoes the approval."""
        limits.check_input(reason=reason)
        if self.state != APPROVED:
            raise errors.NotRevocable(f"this request is {self.state}; only an approved request can be revoked", state=self.state)
        approved = self.approvers_who_approved()
        if actor not in approved:
            raise errors.NotTheApprover(
                f"{actor} did not approve this request; only its approvers may revoke it",
                approved_by=sorted(approved),
            )
        reason = (reason or "").strip()
        if not reason:
            raise errors.ReasonRequired("a reason is required to revoke an approval")
        self.trigger_event(self.Revoked, stage=approved[actor], reason=reason, actor=actor, timestamp=now)
