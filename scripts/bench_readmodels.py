"""Read-model benchmark: rebuild throughput, peak memory, the raw PostgreSQL ceiling and read latency.

Run it through ``scripts/bench_readmodels`` (``--help`` lists the options). One run:

1. creates a fresh database (PostgreSQL by default, a temporary SQLite file with ``--sqlite``) and
   loads a synthetic but realistic history: a generated tenant (users, managers, owner and
   security groups, catalogs, ~50 packages, policies of four shapes) stored through the tenant
   loader, then N access requests played through a discrete-event simulation that calls the
   aggregates' own methods (``AccessRequest.submit/decide/remind/escalate/expire/cancel/revoke``,
   ``Assignment.create/open_request/start_delivery/record_resource_*/complete_delivery/extend/
   remind_expiry/expire/remove``, ``Membership.grant/withdraw``) at a fake, advancing
   time; the events are converted with the application's mapper and written in log order with
   one COPY (PostgreSQL: the library's column values, ``notification_id`` from the table's own
   sequence, under the library's table lock) or through ``recorder.insert_events`` (SQLite);
2. (a) rebuilds each read model alone and all together, each in a fresh subprocess, and reports
   log events/s and the peak RSS; the all-together rebuild also runs on a second, smaller history;
   (b) COPYs as many rows as the log holds into a scratch table shaped like the events table (the
   raw ceiling), and reads + decodes the log without writing anything (the read ceiling);
   (c) runs ``entitlements web`` (granian: 2 worker processes x 4 threads) and measures
   ``GET /api/v1/approvals/pending`` and ``/history`` latency from 8 keep-alive client threads;
3. prints a table of the figures next to their targets, and drops what it created.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_SINGLE = 25_000  # events/s, each read model alone (PostgreSQL)
TARGET_ALL = 10_000  # log events/s, all read models together
TARGET_P99_MS = 20.0
HORIZON_ENV = "BENCH_NOTIFIER_HORIZON"  # --notifier-horizon, handed to the child processes
RSS_FLAT_TOLERANCE = 1.25  # "flat": the big history's peak RSS within 25 % of the small one's


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# =============================================================================================
# The synthetic tenant
# =============================================================================================


@dataclass
class TenantPlan:
    data: dict  # the tenant file, as loaded by entitlements.tenant.load_tenant_data
    users: list[str]
    requestors: list[str]  # users who request access (not the directors)
    managers: dict[str, str]  # user -> manager
    groups: dict[str, list[str]]  # group id -> directory members
    packages: list[dict]
    policies: dict[str, dict]  # package id -> its (one) policy, as written in the file
    shapes: dict[str, str]  # package id -> policy shape


def make_tenant(users: int, packages: int, rng: random.Random) -> TenantPlan:
    """A tenant of ``users`` people in a three-level hierarchy and ``packages`` packages whose
    policies come in four shapes: approved by the requestor's manager (half), by the package's
    owners (a quarter), in two stages with escalation (a fifth), or without approval."""
    directors = max(2, users // 60)
    managers_n = max(4, users // 5)
    ids = [f"u{n:04d}" for n in range(users)]
    director_ids = ids[:directors]
    manager_ids = ids[directors : directors + managers_n]
    staff_ids = ids[directors + managers_n :]
    manager_of: dict[str, str] = {}
    for index, user in enumerate(manager_ids):
        manager_of[user] = director_ids[index % directors]
    for index, user in enumerate(staff_ids):
        manager_of[user] = manager_ids[index % managers_n]
    user_entries = []
    for index, user in enumerate(ids):
        entry: dict[str, Any] = {
            "id": user,
            "display_name": f"User {index:04d}",
            "email": f"{user}@contoso.example",
            "organization": "Contoso",
        }
        if user in manager_of:
            entry["manager"] = manager_of[user]
        if index == 0:
            entry["roles"] = ["admin", "auditor"]
        user_entries.append(entry)

    groups: dict[str, list[str]] = {}
    security_groups = []
    for k in range(5):
        members = rng.sample(manager_ids + staff_ids, 4)
        groups[f"security-{k}"] = members
        security_groups.append(f"security-{k}")
    catalogs = [{"id": f"cat{k:02d}", "name": f"Catalog {k}", "enabled": True} for k in range(max(1, packages // 5))]

    package_entries = []
    policy_entries = []
    policies: dict[str, dict] = {}
    shapes: dict[str, str] = {}
    for p in range(packages):
        pid = f"pkg{p:02d}"
        owners = f"owners-{pid}"
        groups[owners] = rng.sample(staff_ids, 3)
        resources = [{"id": f"res-{pid}", "kind": "group"}]
        if p % 5 == 0:
            resources.append({"id": f"res-{pid}-b", "kind": "group"})
        package_entries.append(
            {
                "id": pid,
                "catalog": catalogs[p % len(catalogs)]["id"],
                "name": f"Package {p:02d}",
                "description": f"Access package number {p}",
                "resources": resources,
            }
        )
        slot = p % 20
        policy: dict[str, Any] = {"id": f"pol-{pid}", "access_package": pid, "name": f"Policy of {pid}"}
        if slot < 10:
            shape = "manager"
            escalation = (
                {"enabled": True, "after": "P3D", "approvers": [{"group": owners}]} if p % 2 else {"enabled": False}
            )
            policy.update(
                requestor_justification_required=True,
                questions=[{"id": "cost-center", "text": "Which cost center pays?", "required": True, "choices": ["CC100", "CC200", "CC300"]}],
                approval={
                    "required": True,
                    "stages": [
                        {
                            "approvers": [{"requestor_manager": True}],
                            "fallback_approvers": [{"group": owners}],
                            "timeout": "P14D",
                            "reminder": "P7D",
                            "escalation": escalation,
                        }
                    ],
                },
                expiration={"after": "P90D"},
                extension={"allowed": True, "approval_required": False, "reminder_before": "P7D"},
            )
        elif slot < 15:
            shape = "owners"
            policy.update(
                approval={
                    "required": True,
                    "stages": [
                        {
                            "approvers": [{"group": owners}],
                            "approver_justification_required": slot % 2 == 0,
                            "timeout": "P7D",
                            "reminder": "P4D",
                        }
                    ],
                },
                expiration={"after": "P180D"},
            )
        elif slot < 19:
            shape = "two-stage"
            security = security_groups[p % len(security_groups)]
            backup = security_groups[(p + 1) % len(security_groups)]
            policy.update(
                requestor_justification_required=True,
                questions=[{"id": "ticket", "text": "Change or incident ticket", "required": True}],
                approval={
                    "required": True,
                    "stages": [
                        {
                            "approvers": [{"requestor_manager": True}],
                            "fallback_approvers": [{"group": owners}],
                            "timeout": "P14D",
                            "reminder": "P7D",
                            "escalation": {"enabled": True, "after": "P3D", "approvers": [{"group": owners}]},
                        },
                        {
                            "approvers": [{"group": security}],
                            "approver_justification_required": True,
                            "timeout": "P14D",
                            "reminder": "P7D",
                            "escalation": {"enabled": True, "after": "P3D", "approvers": [{"group": backup}]},
                        },
                    ],
                },
                expiration={"after": "P30D"},
                extension={"allowed": True, "approval_required": True, "reminder_before": "P7D"},
            )
        else:
            shape = "auto"
            policy.update(approval={"required": False}, expiration={"after": "P7D"})
        policy_entries.append(policy)
        policies[pid] = policy
        shapes[pid] = shape

    data = {
        "users": user_entries,
        "groups": [{"id": gid, "members": members} for gid, members in groups.items()],
        "catalogs": catalogs,
        "access_packages": package_entries,
        "policies": policy_entries,
    }
    return TenantPlan(
        data=data,
        users=ids,
        requestors=manager_ids + staff_ids,
        managers=manager_of,
        groups=groups,
        packages=package_entries,
        policies=policies,
        shapes=shapes,
    )


# =============================================================================================
# The synthetic history: a discrete-event simulation over the aggregates' own methods
# =============================================================================================


class EventSink:
    """Receives the events of each simulated transaction in log order."""

    def __init__(self, mapper) -> None:
        self.mapper = mapper
        self.count = 0
        self.topics: Counter = Counter()

    def write(self, stored_event) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def emit(self, *aggregates) -> None:
        for aggregate in aggregates:
            for event in aggregate.collect_events():
                stored = self.mapper.to_stored_event(event)
                self.topics[stored.topic.rsplit(":", 1)[-1]] += 1
                self.count += 1
                self.write(stored)

    def close(self) -> None:
        pass


@dataclass
class Outcomes:
    approve: float = 0.80
    deny: float = 0.09
    expire: float = 0.05
    cancel: float = 0.06
    revoke: float = 0.02  # of approved grants
    extend: float = 0.30  # of reminded grants whose policy allows it
    resource_failure: float = 0.01
    on_behalf: float = 0.05
    pending: float = 0.10  # of all requests: submitted in the last days and still undecided


@dataclass
class Simulation:
    app: Any
    plan: TenantPlan
    sink: EventSink
    requests: int
    rng: random.Random
    end: datetime
    days: int = 730
    outcomes: Outcomes = field(default_factory=Outcomes)

    def __post_init__(self) -> None:
        from domain.approvers import resolve_stages

        self._resolve_stages = resolve_stages
        self.start = self.end - timedelta(days=self.days)
        self._heap: list = []
        self._seq = 0
        self.assignments: dict[tuple[str, str], Any] = {}
        self.memberships: dict[tuple[str, str], Any] = {}  # (group, user) -> Membership
        self.policy_aggregates: dict[str, Any] = {}
        self.package_aggregates: dict[str, Any] = {}
        self.request_count = 0
        self.extension_count = 0
        self.skipped = 0
        self.final: dict[str, tuple[str, int]] = {}  # sampled request id -> (state, version)
        self.samples: dict[str, Any] = {}
        self.approver_load: Counter = Counter()
        self.open_extensions: dict[str, Any] = {}  # extension requests that may still be open
        self.package_weights = [1.0 / (1 + i) ** 0.6 for i in range(len(self.plan.packages))]
        self.package_ids = [p["id"] for p in self.plan.packages]

    # --- scheduling --------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, action))

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        from domain.access_package import AccessPackage
        from domain.assignment_policy import AssignmentPolicy

        for package in self.plan.packages:
            pid = package["id"]
            self.package_aggregates[pid] = self.app.repository.get(AccessPackage.id_for(pid))
            policy_id = self.plan.policies[pid]["id"]
            self.policy_aggregates[pid] = self.app.repository.get(AssignmentPolicy.id_for(policy_id))
        pending = int(self.requests * self.outcomes.pending)
        normal = self.requests - pending
        span = (self.end - self.start).total_seconds()
        for _ in range(normal):
            self.at(self.start + timedelta(seconds=self.rng.random() * span), lambda now: self.submit(now, pending=False))
        for _ in range(pending):
            self.at(self.end - timedelta(seconds=self.rng.random() * 5 * 86400), lambda now: self.submit(now, pending=True))
        last_report = time.monotonic()
        while self._heap:
            when, _, action = heapq.heappop(self._heap)
            if when > self.end:
                break
            action(when)
            if progress and time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                progress(self.request_count, self.sink.count)
        self._heap.clear()
        for request_id, request in self.samples.items():
            self.final[request_id] = (request.state, request.version)

    # --- requests ----------------------------------------------------------------------------

    def _pick(self, now: datetime):
        from domain.assignment import Assignment

        for _ in range(40):
            pid = self.rng.choices(self.package_ids, weights=self.package_weights)[0]
            target = self.rng.choice(self.plan.requestors)
            assignment = self.assignments.get((target, pid))
            if assignment is not None and (assignment.is_active or assignment.open_request_id is not None):
                continue
            if assignment is None:
                assignment = Assignment.create(user_id=target, access_package_id=pid, actor=target, now=now)
                self.assignments[(target, pid)] = assignment
            return pid, target, assignment
        return None

    def submit(self, now: datetime, *, pending: bool) -> None:
        from domain import errors

        picked = self._pick(now)
        if picked is None:
            self.skipped += 1
            return
        pid, target, assignment = picked
        requestor = target
        manager = self.plan.managers.get(target)
        if manager and self.rng.random() < self.outcomes.on_behalf:
            requestor = manager
        policy = self.policy_aggregates[pid]
        try:
            stages = self._stages(policy.stages, requestor, target)
        except errors.NoApprovers:
            self.skipped += 1
            return
        answers = {}
        for question in policy.questions:
            answers[question["id"]] = self.rng.choice(question.get("choices") or ["INC-" + str(self.rng.randrange(10**6))])
        self._open(
            now,
            request_type="user_add",
            requestor=requestor,
            target=target,
            pid=pid,
            assignment=assignment,
            stages=stages,
            justification=f"Needed for project {self.rng.randrange(1000)}" if policy.requestor_justification_required else None,
            answers=answers,
            questions=[{"id": q["id"], "text": q.get("text", "")} for q in policy.questions],
            pending=pending,
        )

    def _stages(self, stages: list[dict], requestor: str, target: str) -> list[dict]:
        return self._resolve_stages(
            stages,
            subject_user_id=target,
            excluded={requestor, target},
            members_of=lambda gid: list(self.plan.groups.get(gid, [])),
            manager_of=lambda uid: self.plan.managers.get(uid),
        )

    def _open(self, now, *, request_type, requestor, target, pid, assignment, stages, justification, answers, questions, pending):
        from domain.access_request import AccessRequest

        package = self.package_aggregates[pid]
        policy = self.policy_aggregates[pid]
        request = AccessRequest.submit(
            request_type=request_type,
            requestor_id=requestor,
            target_user_id=target,
            access_package_id=pid,
            catalog_id=package.catalog_id,
            policy_id=policy.key,
            policy_version=policy.version,
            assignment_id=str(assignment.id),
            justification=justification,
            questions=questions,
            answers=answers,
            start=None,
            end=None,
            stages=stages,
            notifications_enabled=package.notifications_enabled,
            now=now,
        )
        assignment.open_request(request_id=str(request.id), request_type=request_type, actor=requestor, now=now)
        self.request_count += 1
        if request_type == "user_extend":
            self.extension_count += 1
        for stage in stages:
            for person in stage["approvers"]:
                self.approver_load[person] += 1
        if request_type == "user_extend" and request.is_open:
            self.open_extensions[str(request.id)] = request
        if len(self.samples) < 400 and self.rng.random() < 0.01:
            self.samples[str(request.id)] = request
        if request.state == "approved":  # no approval needed
            self._after_decision(request, assignment, now)
            return
        self.sink.emit(request, assignment)
        self._plan_stage(request, assignment, now, pending=pending)

    def _plan_stage(self, request, assignment, now, *, pending: bool) -> None:
        """Decides now what will happen to the current stage, and schedules it."""
        stage = request.stage
        number = request.current_stage
        started = now
        deadline = stage["deadline"]
        reminder_at = stage["reminder_at"]
        escalation_at = stage["escalation_at"] if stage["escalation_enabled"] else None
        o = self.outcomes
        roll = self.rng.random()
        if pending:
            fate = "pending"
        elif roll < o.cancel:
            fate = "cancel"
        elif roll < o.cancel + o.expire:
            fate = "expire"
        elif roll < o.cancel + o.expire + o.deny:
            fate = "deny"
        else:
            fate = "approve"
        if fate in ("approve", "deny"):
            # most decisions within hours, a long tail over days (but before the deadline)
            hours = min(self.rng.lognormvariate(1.2, 1.4), (deadline - started).total_seconds() / 3600 * 0.97)
            decided_at = started + timedelta(hours=max(hours, 0.02))
        elif fate == "cancel":
            decided_at = started + timedelta(hours=self.rng.uniform(0.1, 30))
        elif fate == "expire":
            decided_at = deadline
        else:
            decided_at = self.end + timedelta(days=365)
        if reminder_at is not None and reminder_at < decided_at:
            self.at(reminder_at, lambda t: self._remind(request, number, t))
        if escalation_at is not None and escalation_at < decided_at:
            self.at(escalation_at, lambda t: self._escalate(request, number, t))
        if fate == "pending":
            return
        if fate == "expire":
            self.at(deadline, lambda t: self._expire(request, assignment, number, t))
        elif fate == "cancel":
            self.at(decided_at, lambda t: self._cancel(request, assignment, number, t))
        else:
            self.at(decided_at, lambda t: self._decide(request, assignment, number, fate, t))

    def _still_at(self, request, number: int) -> bool:
        return request.state == "pending_approval" and request.current_stage == number

    def _remind(self, request, number, now) -> None:
        if self._still_at(request, number) and request.stage["reminded_at"] is None and now < request.deadline:
            request.remind(now=now)
            self.sink.emit(request)

    def _escalate(self, request, number, now) -> None:
        if self._still_at(request, number) and request.stage["escalated_at"] is None and now < request.deadline:
            request.escalate(now=now)
            self.sink.emit(request)

    def _expire(self, request, assignment, number, now) -> None:
        if self._still_at(request, number):
            request.expire(now=now)
            assignment.close_request(request_id=str(request.id), outcome=request.state, actor="system", now=now)
            self.sink.emit(request, assignment)

    def _cancel(self, request, assignment, number, now) -> None:
        if self._still_at(request, number):
            request.cancel(actor=request.requestor_id, reason=self.rng.choice([None, "no longer needed"]), now=now)
            assignment.close_request(request_id=str(request.id), outcome=request.state, actor=request.requestor_id, now=now)
            self.sink.emit(request, assignment)

    def _decide(self, request, assignment, number, fate, now) -> None:
        if not self._still_at(request, number):
            return
        stage = request.stage
        people = list(stage["approvers"])
        if stage["escalated_at"] is not None and stage["alternate_approvers"] and self.rng.random() < 0.5:
            people = list(stage["alternate_approvers"])
        approver = self.rng.choice(people)
        reason = self.rng.choice(["ok", "approved for the project", "as discussed"]) if stage["approver_justification_required"] or self.rng.random() < 0.3 else None
        if fate == "deny":
            reason = reason or "not justified"
        request.decide(approver_id=approver, decision="approve" if fate == "approve" else "deny", reason=reason, now=now)
        if request.state == "pending_approval":  # the next stage started
            self.sink.emit(request)
            self._plan_stage(request, assignment, now, pending=False)
            return
        if request.state == "approved":
            self._after_decision(request, assignment, now)
        else:
            assignment.close_request(request_id=str(request.id), outcome=request.state, actor="system", now=now)
            self.sink.emit(request, assignment)

    # --- approval and delivery ---------------------------------------------------------------

    def _after_decision(self, request, assignment, now) -> None:
        """What ``EntitlementsApplication._after_decision`` and ``deliver`` do, in the same
        transactions: close the request on the assignment and start delivery (or extend), then
        one transaction per resource, then Delivered / Partially Delivered."""
        from domain.assignment_policy import access_end, extended_end

        pid = request.access_package_id
        policy = self.policy_aggregates[pid]
        assignment.close_request(request_id=str(request.id), outcome=request.state, actor="system", now=now)
        if request.request_type == "user_extend":
            self.open_extensions.pop(str(request.id), None)
            assignment.extend(request_id=str(request.id), end=extended_end(policy.expiration, assignment.end), actor="system", now=now)
            self.sink.emit(request, assignment)
            self._plan_grant(request, assignment, now)
            return
        end = access_end(policy.expiration, now, None)
        package = self.package_aggregates[pid]
        assignment.start_delivery(
            request_id=str(request.id),
            policy_id=policy.key,
            policy_version=policy.version,
            resources=package.resources,
            start=now,
            end=end,
            expiration=policy.expiration,
            extension=policy.extension,
            actor="system",
            now=now,
        )
        self.sink.emit(request, assignment)
        failed_once = None
        for resource_ in package.resources:
            if failed_once is None and self.rng.random() < self.outcomes.resource_failure:
                failed_once = resource_["id"]
                assignment.record_resource_failed(resource_["id"], error="connector timed out", actor="system", now=now)
                self.sink.emit(assignment)
                continue
            membership = self._membership(resource_["id"], request.target_user_id, now)
            membership.grant(assignment_id=str(assignment.id), actor="delivery", now=now)
            assignment.record_resource_delivered(resource_["id"], actor="system", now=now)
            self.sink.emit(assignment, membership)
        assignment.complete_delivery(actor="system", now=now)
        self.sink.emit(assignment)
        if failed_once is not None:
            retry_at = now + timedelta(minutes=self.rng.uniform(5, 120))
            self.at(retry_at, lambda t: self._retry(request, assignment, failed_once, t))
        self._plan_grant(request, assignment, now)

    def _retry(self, request, assignment, resource_id, now) -> None:
        if not assignment.grants_from(str(request.id)):
            return
        membership = self._membership(resource_id, assignment.user_id, now)
        membership.grant(assignment_id=str(assignment.id), actor="delivery", now=now)
        assignment.record_resource_delivered(resource_id, actor="system", now=now)
        self.sink.emit(assignment, membership)
        assignment.complete_delivery(actor="system", now=now)
        self.sink.emit(assignment)

    def _plan_grant(self, request, assignment, now) -> None:
        """Schedules what happens to access once granted: revocation, the expiry reminder, an
        extension request, and the end of access."""
        end = assignment.end
        if end is None:
            return
        if request.request_type == "user_add" and request.stages and self.rng.random() < self.outcomes.revoke:
            when = now + (end - now) * self.rng.uniform(0.05, 0.8)
            self.at(when, lambda t: self._revoke(request, assignment, t))
        reminder_at = assignment.expiry_reminder_at
        if reminder_at is not None and reminder_at > now:
            self.at(reminder_at, lambda t: self._remind_expiry(assignment, end, t))
        self.at(end, lambda t: self._expire_access(assignment, end, t))

    def _remind_expiry(self, assignment, end, now) -> None:
        if not assignment.is_active or assignment.end != end or assignment.expiry_reminded_for == end:
            return
        assignment.remind_expiry(now=now)
        self.sink.emit(assignment)
        if assignment.open_request_id is None and self.rng.random() < self.outcomes.extend:
            self.at(now + timedelta(hours=self.rng.uniform(1, 72)), lambda t: self._request_extension(assignment, end, t))

    def _request_extension(self, assignment, end, now) -> None:
        from domain import errors

        if not assignment.is_active or assignment.end != end or now >= end or assignment.open_request_id is not None:
            return
        pid = assignment.access_package_id
        policy = self.policy_aggregates[pid]
        stages = []
        if policy.extension.get("approval_required", False):
            try:
                stages = self._stages(policy.approval_stages, assignment.user_id, assignment.user_id)
            except errors.NoApprovers:
                return
        self._open(
            now,
            request_type="user_extend",
            requestor=assignment.user_id,
            target=assignment.user_id,
            pid=pid,
            assignment=assignment,
            stages=stages,
            justification="still needed",
            answers={},
            questions=[],
            pending=False,
        )

    def _end_open_extension(self, assignment, reason: str, now) -> list:
        """``EntitlementsApplication._end_open_extension``: a pending extension is withdrawn."""
        request_id = assignment.open_request_id
        if request_id is None:
            return []
        request = self.open_extensions.pop(request_id, None)
        if request is None or not request.is_open:
            return []
        request.withdraw(reason=reason, now=now)
        assignment.close_request(request_id=str(request.id), outcome=request.state, actor="system", now=now)
        return [request]

    def _expire_access(self, assignment, end, now) -> None:
        if not assignment.is_active or assignment.end != end:
            return
        assignment.expire(now=now)
        ended = self._end_open_extension(assignment, "access ended before the extension was decided", now)
        groups = self._withdraw(assignment, now)
        self.sink.emit(assignment, *ended, *groups)

    def _revoke(self, request, assignment, now) -> None:
        if request.state != "approved" or not assignment.grants_from(str(request.id)):
            return
        approved = request.approvers_who_approved()
        if not approved:
            return
        actor = sorted(approved)[0]
        request.revoke(actor=actor, reason="access no longer justified", now=now)
        groups = self._withdraw(assignment, now)
        assignment.remove(reason="access no longer justified", request_id=str(request.id), actor=actor, now=now)
        ended = self._end_open_extension(assignment, "access was revoked before the extension was decided", now)
        self.sink.emit(request, assignment, *groups, *ended)

    def _withdraw(self, assignment, now) -> list:
        changed = []
        for resource_ in assignment.delivered_resources():
            membership = self._membership(resource_["id"], assignment.user_id, now)
            if membership.withdraw(assignment_id=str(assignment.id), actor="delivery", now=now):
                changed.append(membership)
        return changed

    def _membership(self, group_id: str, user_id: str, now) -> Any:
        from domain.membership import Membership

        key = (group_id, user_id)
        if key not in self.memberships:
            self.memberships[key] = Membership.create(group_id=group_id, user_id=user_id, actor="system", now=now)
        return self.memberships[key]


# =============================================================================================
# Writing the history
# =============================================================================================


class PostgresCopySink(EventSink):
    """One COPY into the library's events table, in log order, under the library's table lock.

    The columns are those the library's ``insert_events`` writes (``originator_id``,
    ``originator_version``, ``topic``, ``state``); ``notification_id`` is left to the column's
    default, the table's own sequence, exactly as the library's INSERT leaves it, so the ids are
    those the library would have assigned to the same events in the same order."""

    def __init__(self, mapper, conninfo: str, table: str) -> None:
        import psycopg

        super().__init__(mapper)
        self.connection = psycopg.connect(conninfo)
        self.cursor = self.connection.cursor()
        self.cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        self._copy_cm = self.cursor.copy(f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)")
        self.copy = self._copy_cm.__enter__()
        self.copy.set_types(["uuid", "int8", "text", "bytea"])

    def write(self, stored) -> None:
        self.copy.write_row((stored.originator_id, stored.originator_version, stored.topic, stored.state))

    def close(self) -> None:
        self._copy_cm.__exit__(None, None, None)
        self.connection.commit()
        self.cursor.close()
        self.connection.close()


class RecorderSink(EventSink):
    """Through the library's own ``recorder.insert_events``, several thousand events a call."""

    def __init__(self, mapper, recorder, batch: int = 5000) -> None:
        super().__init__(mapper)
        self.recorder = recorder
        self.batch = batch
        self.buffer: list = []

    def write(self, stored) -> None:
        self.buffer.append(stored)
        if len(self.buffer) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.recorder.insert_events(self.buffer)
            self.buffer = []

    def close(self) -> None:
        self.flush()


# =============================================================================================
# Databases
# =============================================================================================


def pg_conninfo(url: str) -> str:
    from entitlements.persistence import database_from_url

    env = database_from_url(url).library_env
    parts = [f"dbname={env['POSTGRES_DBNAME']}", f"host={env['POSTGRES_HOST']}", f"port={env['POSTGRES_PORT']}", f"user={env['POSTGRES_USER']}"]
    if env.get("POSTGRES_PASSWORD"):
        parts.append(f"password={env['POSTGRES_PASSWORD']}")
    return " ".join(parts)


def with_dbname(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, "", ""))


class Databases:
    """Creates the benchmark's databases (or SQLite files) and drops them at the end."""

    def __init__(self, *, sqlite: bool, admin_url: str, keep: bool) -> None:
        self.sqlite = sqlite
        self.admin_url = admin_url
        self.keep = keep
        self.created: list[str] = []
        self.tmpdir: str | None = None
        self.tag = uuid.uuid4().hex[:8]

    def create(self, label: str) -> str:
        if self.sqlite:
            if self.tmpdir is None:
                self.tmpdir = tempfile.mkdtemp(prefix="entitlements_bench_", dir="/tmp")
            path = os.path.join(self.tmpdir, f"{label}.db")
            return f"sqlite:///{path}"
        import psycopg

        name = f"entitlements_bench_{self.tag}_{label}"
        with psycopg.connect(pg_conninfo(self.admin_url), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        self.created.append(name)
        return with_dbname(self.admin_url, name)

    def drop_all(self) -> None:
        if self.keep:
            if self.created or self.tmpdir:
                note(f"--keep: leaving {', '.join(self.created) or self.tmpdir}")
            return
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self.created:
            import psycopg

            with psycopg.connect(pg_conninfo(self.admin_url), autocommit=True) as connection:
                for name in self.created:
                    connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            note(f"dropped {', '.join(self.created)}")
        self.created = []


# =============================================================================================
# Step 1: load a history
# =============================================================================================


@dataclass
class LoadResult:
    url: str
    requests: int  # all requests, extension requests included
    extensions: int
    skipped: int
    events: int
    head: int
    seconds: float
    topics: Counter
    approvers: list[str]
    approver_load: Counter
    verified: int


def load_history(url: str, *, requests: int, users: int, packages: int, seed: int, days: int, loader: str) -> LoadResult:
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings
    from entitlements.tenant import load_tenant_data

    rng = random.Random(seed)
    services = build_services(Settings(database_url=url))
    try:
        app = services.app
        started = time.perf_counter()
        plan = make_tenant(users, packages, rng)
        load_tenant_data(app, plan.data, source="<bench tenant>", actor="bench")
        tenant_events = app.recorder.max_notification_id() or 0
        note(f"tenant: {len(plan.users)} users, {len(plan.groups)} groups, {len(plan.packages)} packages ({tenant_events} events)")
        backend = services.store.backend
        if backend == "postgresql" and loader == "copy":
            sink: EventSink = PostgresCopySink(app.mapper, pg_conninfo(url), app.recorder.events_table_name)
        else:
            sink = RecorderSink(app.mapper, app.recorder)
        end = datetime.now(timezone.utc).replace(microsecond=0)
        sim = Simulation(app=app, plan=plan, sink=sink, requests=requests, rng=rng, end=end, days=days)
        sim.run(progress=lambda r, e: note(f"  generated {r:,} requests, {e:,} events"))
        sink.close()
        seconds = time.perf_counter() - started
        head = app.recorder.max_notification_id() or 0
        # readable through the library: the aggregates come back in the state the simulation left them
        verified = 0
        for request_id, (state, version) in sim.final.items():
            request = app.repository.get(uuid.UUID(request_id))
            if (request.state, request.version) != (state, version):
                raise SystemExit(f"verification failed: request {request_id} reads back as {request.state} v{request.version}, expected {state} v{version}")
            verified += 1
        some = next(iter(sim.assignments.values()))
        again = app.repository.get(some.id)
        if (again.version, again.state) != (some.version, some.state):
            raise SystemExit(f"verification failed: assignment {some.id} reads back differently")
        if head != tenant_events + sink.count:
            raise SystemExit(f"verification failed: the log head is {head}, expected {tenant_events + sink.count}")
        gaps = count_gaps(url, app.recorder.events_table_name) if backend == "postgresql" else 0
        if gaps:
            raise SystemExit(f"verification failed: {gaps} gaps in notification ids")
        approvers = sorted(sim.approver_load)
        return LoadResult(
            url=url,
            requests=sim.request_count,
            extensions=sim.extension_count,
            skipped=sim.skipped,
            events=head,
            head=head,
            seconds=seconds,
            topics=sink.topics,
            approvers=approvers,
            approver_load=sim.approver_load,
            verified=verified + 1,
        )
    finally:
        services.close()


def count_gaps(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(pg_conninfo(url)) as connection:
        low, high, count = connection.execute(f"SELECT MIN(notification_id), MAX(notification_id), COUNT(*) FROM {table}").fetchone()
    return (high - low + 1) - count


def autovacuum_on(url: str) -> bool:
    import psycopg

    with psycopg.connect(pg_conninfo(url)) as connection:
        return connection.execute("SHOW autovacuum").fetchone()[0] == "on"


def vacuum_analyze(url: str) -> float:
    """``VACUUM (ANALYZE)`` of the whole database: what autovacuum does on a server with default
    settings (statistics for the planner, dead rows of the previous rebuild reclaimed)."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(pg_conninfo(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


def source_version() -> str:
    """The commit measured (read-only git commands), and whether projections/ has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "projections", "entitlements", "domain"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    changed = sorted({line[3:] for line in status.splitlines() if len(line) > 3})
    return f"{head} + local changes to {', '.join(changed)}" if changed else head


def describe_load(result: LoadResult) -> None:
    loads = sorted(result.approver_load.values())
    q = lambda f: loads[min(len(loads) - 1, int(f * len(loads)))]  # noqa: E731
    note(
        f"loaded {result.requests - result.extensions:,} new requests + {result.extensions:,} extension requests "
        f"({result.skipped} arrivals found no free user x package) = {result.events:,} events in {result.seconds:.1f} s "
        f"({result.events / result.seconds:,.0f} events/s, generation and writing together); "
        f"verified {result.verified} aggregates read back through app.repository"
    )
    note(
        f"  {len(loads)} approvers; requests per approver (stages they are primary for): "
        f"median {q(0.5)}, p90 {q(0.9)}, max {loads[-1]}"
    )
    top = ", ".join(f"{k} {v:,}" for k, v in result.topics.most_common())
    note(f"  events by type: {top}")


# =============================================================================================
# Children: one rebuild, the read ceiling, the web server
# =============================================================================================


def memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in kB. VmHWM is the peak RSS of this process image only;
    ``getrusage().ru_maxrss`` would also carry the parent's peak across fork+exec on Linux."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    if "VmHWM" not in found:  # not Linux: the best there is
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak // 1024 if sys.platform == "darwin" else peak
        return peak, peak
    return found["VmRSS"], found["VmHWM"]


def child_rebuild(url: str, names: list[str], profile: str | None) -> None:
    from entitlements.bootstrap import build_services
    from entitlements.settings import DEFAULT_NOTIFIER_HORIZON, Settings

    horizon = os.environ.get(HORIZON_ENV) or DEFAULT_NOTIFIER_HORIZON  # --notifier-horizon
    services = build_services(Settings(database_url=url, notifier_horizon=horizon))
    before, _ = memory_kb()
    last = [time.monotonic()]

    def progress(passed: int, position: int) -> None:
        if time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            note(f"    {'+'.join(names) or 'all'}: position {position:,}")

    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        result = services.read_models.rebuild(names, progress)
        profiler.disable()
        profiler.dump_stats(profile)
    else:
        result = services.read_models.rebuild(names, progress)
    _, peak = memory_kb()
    with services.store.transaction(write=False) as tx:  # what the notifier wrote: skipped, rendered
        outbox = dict(tx.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")) if "notifier" in result.names else {}
    services.close()
    print(json.dumps({"names": result.names, "events": result.events, "seconds": result.seconds, "events_per_second": result.events_per_second, "rss_before_kb": before, "peak_rss_kb": peak, "outbox": outbox}))


def child_read(url: str) -> None:
    """The read ceiling: pages of the log as the projector reads them (the topics every read
    model together needs, the projector's page size, bounded by the head), with and without the decode."""
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    services = build_services(Settings(database_url=url))
    projector = services.read_models.projector
    topics = projector.topics
    head = projector.head()
    size = getattr(projector, "batch_size", 1000)
    figures = {}
    reader = getattr(projector, "log", None)
    if reader is not None and hasattr(reader, "read"):
        # the projector's own reader (projections.event_log): rows only, then rows + decode
        import projections.event_log as event_log

        make_event = event_log.make_event

        def page(after: int) -> list:
            return reader.read(after, stop=head, limit=size, topics=topics)

        def position_of(item) -> int:
            return item.position if hasattr(item, "position") else item[0]

        runs = (("read", lambda *row: row), ("read+decode", make_event))
    else:  # the library's select_notifications and the engine's decode
        from projections.engine import decode

        app = services.app

        def page(after: int) -> list:
            notifications = app.recorder.select_notifications(after + 1, size, stop=head, topics=topics)
            return [decode(n) for n in notifications] if decoding[0] else notifications

        def position_of(item) -> int:
            return item.position if hasattr(item, "position") else item.id

        decoding = [False]
        runs = (("read", None), ("read+decode", None))
    for label, maker in runs:
        if reader is not None and hasattr(reader, "read"):
            event_log.make_event = maker
        else:
            decoding[0] = label == "read+decode"
        started = time.perf_counter()
        position = 0
        while position < head:
            items = page(position)
            position = position_of(items[-1]) if len(items) == size else head
        figures[label] = head / (time.perf_counter() - started)
    services.close()
    print(json.dumps(figures))


def run_child(args: list[str], *, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=str(ROOT))
    if completed.returncode != 0:
        raise RuntimeError(f"child {' '.join(args[:2])} failed with exit code {completed.returncode}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"child {' '.join(args[:2])} printed no result")
    return json.loads(lines[-1])


# =============================================================================================
# Step 2b: the raw PostgreSQL ceiling
# =============================================================================================


def copy_ceiling(url: str, table: str, rows: int) -> float:
    """COPYs ``rows`` rows (the log's own rows, in order) into a scratch table shaped like the
    library's events table (same columns, primary key, bigserial and unique index); only the
    COPY is timed, the rows are read from the log in chunks outside the timing."""
    import psycopg

    scratch = "bench_copy_scratch"
    conninfo = pg_conninfo(url)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {scratch}")
        admin.execute(
            f"CREATE TABLE {scratch} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            f"state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        admin.execute(f"CREATE UNIQUE INDEX {scratch}_notification_id_idx ON {scratch} (notification_id ASC)")
    timed = 0.0
    written = 0
    with psycopg.connect(conninfo) as reader, psycopg.connect(conninfo) as writer:
        with reader.cursor(name="bench_reader", binary=True) as source, writer.cursor() as target:
            source.itersize = 20000
            source.execute(f"SELECT originator_id, originator_version, topic, state FROM {table} ORDER BY notification_id LIMIT %s", (rows,))
            with target.copy(f"COPY {scratch} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                while True:
                    chunk = source.fetchmany(20000)
                    if not chunk:
                        break
                    started = time.perf_counter()
                    for row in chunk:
                        copy.write_row(row)
                    timed += time.perf_counter() - started
                    written += len(chunk)
                started = time.perf_counter()
            writer.commit()
            timed += time.perf_counter() - started
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"DROP TABLE IF EXISTS {scratch}")
    return written / timed


# =============================================================================================
# Step 2c: read latency through the production WSGI server
# =============================================================================================


@dataclass
class Latency:
    endpoint: str
    clients: int
    count: int
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int


def wait_for_web(seconds: float) -> bool:
    path = ROOT / "web" / "app.py"
    deadline = time.monotonic() + seconds
    announced = False
    while True:
        if path.is_file():
            return True
        if time.monotonic() >= deadline:
            return False
        if not announced:
            note(f"waiting up to {seconds:.0f} s for {path} (the web layer) to appear")
            announced = True
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_latency(
    url: str, approvers: list[str], *, per_endpoint: int, clients: int, workers: int, server_threads: int, rng: random.Random
) -> list[Latency]:
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    services = build_services(Settings(database_url=url))
    try:
        chosen = rng.sample(approvers, min(200, len(approvers)))
        now = datetime.now(timezone.utc)
        tokens = [services.tokens.create(user, now=now) for user in chosen]
    finally:
        services.close()
    port = free_port()
    # the production scale-out server: `entitlements web` (granian worker processes with threads)
    server = subprocess.Popen(
        [sys.executable, "-m", "entitlements.cli", "web", "--port", str(port), "--workers", str(workers), "--threads", str(server_threads)],
        cwd=str(ROOT),
        env={**os.environ, "ENTITLEMENTS_DATABASE_URL": url},
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the web server exited with code {server.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the web server did not start listening within 60 s")
                time.sleep(0.2)
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path in ("/api/v1/approvals/pending", "/api/v1/approvals/history"):
            probe.request("GET", path, headers={"Authorization": f"Bearer {tokens[0]}"})
            response = probe.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
            note(f"  GET {path} -> 200, {len(json.loads(body).get('items', []))} items for one approver")
        probe.close()
        results = []
        for path in ("/api/v1/approvals/pending", "/api/v1/approvals/history"):
            run_clients(port, path, tokens, count=min(200, per_endpoint), clients=clients, seed=rng.random())  # warm-up
            for n, count in ((clients, per_endpoint), (1, max(1, per_endpoint // 4))):
                r = run_clients(port, path, tokens, count=count, clients=n, seed=rng.random())
                results.append(r)
                note(f"  {path}, {n} client(s): p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {r.rps:,.0f} requests/s, {r.errors} errors")
        return results
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_clients(port: int, path: str, tokens: list[str], *, count: int, clients: int, seed: float) -> Latency:
    lock = threading.Lock()
    remaining = [count]
    latencies: list[float] = []
    errors = [0]

    def worker(index: int) -> None:
        local_rng = random.Random(f"{seed}-{index}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        try:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        break
                    remaining[0] -= 1
                token = local_rng.choice(tokens)
                started = time.perf_counter()
                try:
                    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                elapsed = time.perf_counter() - started
                if ok:
                    mine.append(elapsed)
                else:
                    with lock:
                        errors[0] += 1
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    pick = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return Latency(path.rsplit("/", 1)[-1], clients, len(latencies), pick(0.50), pick(0.99), len(latencies) / wall, errors[0])


# =============================================================================================
# Step 2a: rebuilds, and the report
# =============================================================================================


@dataclass
class Rebuild:
    label: str
    events: int
    seconds: float
    eps: float
    rss_before_mb: float
    peak_rss_mb: float
    outbox: dict = field(default_factory=dict)  # the notifier's rows by status after the rebuild


def rebuild(url: str, names: list[str], label: str, timeout: float, *, maintain: bool = False) -> Rebuild:
    if maintain:
        note(f"VACUUM (ANALYZE) before the rebuild (untimed): {vacuum_analyze(url):.1f} s")
    note(f"rebuilding {label} ...")
    result = run_child(["_rebuild", url, *names], timeout=timeout)
    r = Rebuild(label, result["events"], result["seconds"], result["events_per_second"], result["rss_before_kb"] / 1024, result["peak_rss_kb"] / 1024, result.get("outbox") or {})
    note(f"  {label}: {r.events:,} log events in {r.seconds:.1f} s = {r.eps:,.0f} events/s, peak RSS {r.peak_rss_mb:.0f} MB (before the rebuild {r.rss_before_mb:.0f} MB)")
    if r.outbox:
        note(f"  outbox: {', '.join(f'{count:,} {status}' for status, count in sorted(r.outbox.items()))}")
    return r


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


def prepare_outbox(url: str, timeout: float, maintain: bool) -> None:
    """A deployment's rebuild always finds its outbox in place: the notifier renders no email twice.
    Measure "all together" that way, after a first, untimed projection of the notifier."""
    note("projecting the notifier once first (untimed): a rebuild keeps the outbox and renders nothing again")
    rebuild(url, ["notifier"], "notifier (preparation)", timeout, maintain=maintain)


def print_report(*, version: str, maintenance: str, backend: str, big: LoadResult, small: LoadResult | None, rebuilds: list[Rebuild], all_big: Rebuild | None,
                 all_small: Rebuild | None, ceiling: float | None, reads: dict | None, latency: list[Latency] | None,
                 latency_note: str | None, horizon: str = "") -> None:
    out = sys.stdout
    facts_eps = next((r.eps for r in rebuilds if r.label == "facts"), None)
    line = "-" * 100
    print(file=out)
    print(f"Read-model benchmark ({backend}): {big.requests - big.extensions:,} requests + {big.extensions:,} extension requests = {big.events:,} log events "
          f"(loaded in {big.seconds:.1f} s, {big.events / big.seconds:,.0f} events/s)", file=out)
    print(f"projections at {version}; {maintenance}", file=out)
    print(line, file=out)
    print(f"{'(a) rebuild':<26}{'log events/s':>14}{'target':>12}{'':>8}{'/ COPY':>9}{'seconds':>9}{'peak RSS':>11}", file=out)
    for r in rebuilds + ([all_big] if all_big else []):
        together = r.label == "all together"
        target = TARGET_ALL if together else TARGET_SINGLE
        ok = None if r.label == "notifier" else r.eps >= target
        shown_target = "-" if ok is None else ">= " + format(target, ",")
        if r.label == "notifier" and facts_eps:  # its first projection, with the horizon: as fast as the facts
            ok, shown_target = r.eps >= facts_eps, ">= facts"
        ratio = f"{r.eps / ceiling:8.0%}" if ceiling else f"{'-':>8}"
        print(f"{r.label:<26}{r.eps:>14,.0f}{shown_target:>12}{verdict(ok):>8} {ratio}{r.seconds:>9.1f}{r.peak_rss_mb:>8.0f} MB", file=out)
    if any(r.label not in ("facts", "directory", "all together") for r in rebuilds):
        print("(a read model alone is rebuilt from the facts at the head; 'facts' folds them from the log,"
              " 'all together' does both)", file=out)
    notifier = next((r for r in rebuilds if r.label == "notifier"), None)
    if notifier and notifier.outbox:
        written = ", ".join(f"{count:,} {status}" for status, count in sorted(notifier.outbox.items()))
        print(f"(notifier: its first projection into an empty outbox with the horizon {horizon}: {written};"
              " skipped emails are recorded, never rendered nor sent; a rebuild keeps the outbox and renders none again)", file=out)
    elif notifier:
        print("(notifier: its first projection, which renders every email of the history into an empty outbox;"
              " a rebuild keeps the outbox and renders none again, as in 'all together')", file=out)
    if backend != "postgresql":
        print("(the targets are stated for PostgreSQL; shown here for comparison)", file=out)
    print(line, file=out)
    if all_big and all_small and small:
        flat = all_big.peak_rss_mb <= all_small.peak_rss_mb * RSS_FLAT_TOLERANCE
        print(f"{'peak RSS, all together':<26}{small.events:>12,} events: {all_small.peak_rss_mb:.0f} MB   "
              f"{big.events:,} events: {all_big.peak_rss_mb:.0f} MB   (x{all_big.peak_rss_mb / all_small.peak_rss_mb:.2f}; "
              f"target: flat, within {RSS_FLAT_TOLERANCE - 1:.0%})  {verdict(flat)}", file=out)
        print(f"{'':<26}(RSS before the rebuild, imports and connections: {all_small.rss_before_mb:.0f} / {all_big.rss_before_mb:.0f} MB)", file=out)
        print(line, file=out)
    if ceiling:
        print(f"{'(b) raw COPY ceiling':<26}{ceiling:>14,.0f} rows/s into a table shaped like the events table ({big.events:,} rows)", file=out)
    if reads:
        if not ceiling:
            print("log read ceiling (no writes; the projector's own reader):", file=out)
        for label, value in reads.items():
            shown = f"{value:,.0f} events/s" + (f"  ({value / ceiling:.0%} of COPY)" if ceiling else "")
            print(f"{'    log ' + label + ' only':<26}{shown:>14}", file=out)
    if ceiling or reads:
        print(line, file=out)
    if latency:
        print(f"{'(c) read latency':<26}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'target p99':>12}{'':>8}{'requests/s':>12}{'requests':>10}{'errors':>8}", file=out)
        most = max(r.clients for r in latency)
        for r in latency:
            ok = (r.p99_ms < TARGET_P99_MS and r.errors == 0) if r.clients == most else None
            target = f"< {TARGET_P99_MS:.0f} ms" if r.clients == most else "(unloaded)"
            print(f"{'GET /approvals/' + r.endpoint:<26}{r.clients:>8}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{target:>12}{verdict(ok):>8}{r.rps:>12,.0f}{r.count:>10,}{r.errors:>8}", file=out)
        print(line, file=out)
    elif latency_note:
        print(f"(c) read latency: {latency_note}", file=out)
        print(line, file=out)
    out.flush()


# =============================================================================================
# Main
# =============================================================================================


def parse_args(argv: list[str]) -> argparse.Namespace:
    from projections.read_models import READ_MODELS

    parser = argparse.ArgumentParser(
        prog="scripts/bench_readmodels",
        description=(
            "Measures the read models: loads a synthetic history into a fresh database, then (a) rebuild "
            "throughput and peak RSS of each read model alone and all together (each in a fresh process; the "
            "all-together rebuild also on a smaller history), (b) the raw PostgreSQL COPY ceiling and the log "
            "read/decode ceiling, (c) p50/p99 latency of GET /approvals/pending and /history through `entitlements web` (granian). "
            "Prints a table with the targets; exits 0 when targets are missed, non-zero on errors. "
            "The databases it creates (entitlements_bench_*) are dropped at the end."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=100_000, help="requests in the main history")
    parser.add_argument("--small-requests", type=int, default=20_000, help="requests in the second history (RSS comparison); 0 skips it")
    parser.add_argument("--users", type=int, default=600, help="users in the generated tenant")
    parser.add_argument("--packages", type=int, default=50, help="access packages in the generated tenant")
    parser.add_argument("--days", type=int, default=730, help="days of history the requests are spread over")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the history")
    parser.add_argument("--sqlite", action="store_true", help="run (a) on SQLite (temporary files under /tmp); skips (b) and (c)")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL), help="PostgreSQL server to create the benchmark databases on (env BENCH_POSTGRES_URL)")
    parser.add_argument("--loader", choices=("copy", "recorder"), default="copy", help="PostgreSQL: one COPY into the events table, or the library's recorder.insert_events in batches")
    parser.add_argument("--models", default=",".join(READ_MODELS), help="read models to rebuild alone (comma-separated; empty: none)")
    parser.add_argument("--latency-requests", type=int, default=4000, help="requests per endpoint in (c)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads in (c)")
    parser.add_argument("--web-workers", type=int, default=2, help="`entitlements web` worker processes in (c)")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per web worker in (c)")
    parser.add_argument("--web-wait", type=float, default=120, help="seconds to wait for web/app.py to appear before skipping (c)")
    parser.add_argument("--skip-ceiling", action="store_true", help="skip (b)")
    parser.add_argument("--no-vacuum", action="store_true", help="PostgreSQL: never VACUUM (ANALYZE) (by default the benchmark analyzes after loading, and, when the server's autovacuum is off, vacuums before each rebuild)")
    parser.add_argument("--skip-latency", action="store_true", help="skip (c)")
    parser.add_argument("--profile", metavar="MODEL", help="also rebuild MODEL under cProfile and print where the time goes")
    parser.add_argument("--notifier-horizon", default=None, metavar="DURATION", help="ENTITLEMENTS_NOTIFIER_HORIZON of the rebuilds: the notifier's first projection skips (records, never renders) the emails older than this before it starts; the history ends now, so P36500D renders every email, as before the horizon (default: the setting's default, PT24H)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (their URLs are printed)")
    parser.add_argument("--child-timeout", type=float, default=1800, help="seconds any one rebuild may take")
    args = parser.parse_args(argv)
    from entitlements.settings import DEFAULT_NOTIFIER_HORIZON, ConfigurationError, notifier_horizon

    args.notifier_horizon = args.notifier_horizon or DEFAULT_NOTIFIER_HORIZON
    try:
        notifier_horizon(args.notifier_horizon)
    except ConfigurationError as error:
        parser.error(f"--notifier-horizon: {error}")
    os.environ[HORIZON_ENV] = args.notifier_horizon  # the rebuilds run in child processes
    args.models = [m for m in args.models.split(",") if m]
    unknown = [m for m in args.models + ([args.profile] if args.profile else []) if m not in READ_MODELS]
    if unknown:
        parser.error(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    if args.requests < 100:
        parser.error("--requests must be at least 100")
    return args


def print_profile(path: str, model: str) -> None:
    import pstats

    print(f"\ncProfile of rebuilding {model!r} alone (top functions by own time, then by cumulative time):")
    stats = pstats.Stats(path, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_rebuild"]:
        profile = None
        if "--profile" in argv:
            i = argv.index("--profile")
            profile = argv[i + 1]
            argv = argv[:i] + argv[i + 2 :]
        child_rebuild(argv[1], argv[2:], profile)
        return 0
    if argv[:1] == ["_read"]:
        child_read(argv[1])
        return 0
        return 0
    args = parse_args(argv)
    run_started = time.perf_counter()
    version = source_version()
    note(f"measuring the code at {version}")
    backend = "sqlite" if args.sqlite else "postgresql"
    databases = Databases(sqlite=args.sqlite, admin_url=args.admin_url, keep=args.keep)
    errors = []
    try:
        big_url = databases.create("main")
        note(f"step 1: loading {args.requests:,} requests into {big_url}")
        big = load_history(big_url, requests=args.requests, users=args.users, packages=args.packages, seed=args.seed, days=args.days, loader=args.loader)
        describe_load(big)
        maintain = False
        if not args.sqlite:
            vacuum_on = autovacuum_on(big_url)
            maintain = not vacuum_on and not args.no_vacuum
            if not vacuum_on:
                note("autovacuum is OFF on this server: nothing would ever ANALYZE or VACUUM the tables; " + (
                    "the benchmark runs VACUUM (ANALYZE) after loading and before each rebuild, untimed, as autovacuum would"
                    if maintain else "--no-vacuum: measuring without statistics or vacuuming"))
            if not args.no_vacuum:
                note(f"VACUUM (ANALYZE) after loading (untimed): {vacuum_analyze(big_url):.1f} s")

        ceiling = reads = None
        if not args.sqlite and not args.skip_ceiling:
            note("step 2b: raw COPY ceiling and the log read ceiling")
            ceiling = copy_ceiling(big_url, "entitlements_events", big.events)
            note(f"  COPY: {ceiling:,.0f} rows/s")
        if not args.skip_ceiling:
            reads = run_child(["_read", big_url], timeout=args.child_timeout)
            note("  " + ", ".join(f"{k}: {v:,.0f} events/s" for k, v in reads.items()))

        note("step 2a: rebuilds, each in a fresh process")
        models = sorted(args.models, key=lambda name: name != "facts")
        if models and "facts" not in models:
            note("bringing the facts to the head first (untimed): the other read models derive from them")
            rebuild(big_url, ["facts"], "facts (preparation)", args.child_timeout, maintain=maintain)
        rebuilds = [rebuild(big_url, [name], name, args.child_timeout, maintain=maintain) for name in models]
        if "notifier" not in models:
            prepare_outbox(big_url, args.child_timeout, maintain)
        all_big = rebuild(big_url, [], "all together", args.child_timeout, maintain=maintain)
        if args.profile:
            path = os.path.join(tempfile.gettempdir(), f"bench_readmodels_{databases.tag}.prof")
            note(f"profiling a rebuild of {args.profile} (cProfile slows it down)")
            run_child(["_rebuild", big_url, args.profile, "--profile", path], timeout=args.child_timeout)

        small = all_small = None
        if args.small_requests:
            small_url = databases.create("small")
            note(f"loading the smaller history: {args.small_requests:,} requests into {small_url}")
            small = load_history(small_url, requests=args.small_requests, users=args.users, packages=args.packages, seed=args.seed + 1, days=max(30, args.days * args.small_requests // args.requests), loader=args.loader)
            describe_load(small)
            if not args.sqlite and not args.no_vacuum:
                note(f"VACUUM (ANALYZE) after loading (untimed): {vacuum_analyze(small_url):.1f} s")
            prepare_outbox(small_url, args.child_timeout, maintain)
            all_small = rebuild(small_url, [], "all together (small)", args.child_timeout, maintain=maintain)

        latency = None
        latency_note = None
        if args.sqlite:
            latency_note = "skipped (--sqlite)"
        elif args.skip_latency:
            latency_note = "skipped (--skip-latency)"
        elif not wait_for_web(args.web_wait):
            latency_note = "skipped: web/app.py does not exist (yet)"
        else:
            note("step 2c: read latency through entitlements web (granian)")
            try:
                latency = measure_latency(big_url, big.approvers, per_endpoint=args.latency_requests, clients=args.clients, workers=args.web_workers, server_threads=args.server_threads, rng=random.Random(args.seed))
            except (RuntimeError, ImportError, AttributeError, TypeError) as error:
                latency_note = f"FAILED: {error}"
                errors.append(str(error))
                note(f"  (c) failed: {error}")

        if args.sqlite:
            maintenance = "SQLite: no ANALYZE"
        elif args.no_vacuum:
            maintenance = "no VACUUM/ANALYZE (--no-vacuum)"
        elif maintain:
            maintenance = "server autovacuum off: VACUUM (ANALYZE) after loading and before each rebuild, untimed"
        else:
            maintenance = "ANALYZE after loading; autovacuum on"
        finished_version = source_version()
        if finished_version != version:
            version = f"{version} at the start, {finished_version} at the end (the code changed during the run)"
        print_report(version=version, maintenance=maintenance, backend=backend, big=big, small=small, rebuilds=rebuilds, all_big=all_big, all_small=all_small,
                     ceiling=ceiling, reads=reads, latency=latency, latency_note=latency_note, horizon=args.notifier_horizon)
        if args.profile:
            print_profile(path, args.profile)
        print(f"\nthe whole run took {time.perf_counter() - run_started:.0f} s")
    finally:
        databases.drop_all()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
