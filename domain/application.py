"""The application service: the commands of entitlements.

Each command loads what it needs, checks the rules (the aggregates raise named domain errors),
triggers events and saves everything it changed in one ``save()``, which is one transaction.
Primitives go in; a :class:`Receipt` (id, state, log position) comes out, never an aggregate.
Concurrent writers are kept apart by optimistic concurrency on aggregate versions: the loser of a
race reloads and re-checks, so it gets the rule's answer (``AlreadyDecided``,
``OpenRequestExists``) rather than a storage error.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.utils import Environment
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import PersistenceError, RecordConflictError

from domain import errors, limits
from domain.access_package import AccessPackage
from domain.access_request import (
    ADMIN_ADD,
    APPROVED,
    EXPIRED,
    SYSTEM,
    USER_ADD,
    USER_EXTEND,
    AccessRequest,
)
from domain.approvers import resolve_stages
from domain.assignment import DELIVERING, RESOURCE_DELIVERED, Assignment
from domain.assignment_policy import AssignmentPolicy, access_end, extended_end
from domain.catalog import Catalog
from domain.clock import Clock, SystemClock
from domain.configuration import ConfigurationItem
from domain.group import Group
from domain.membership import LogMemberIndex, MemberIndex, Membership
from domain.resources import DeliveryFailed, ResourceKind, default_resource_kinds
from domain.user import User

log = logging.getLogger(__name__)

T = TypeVar("T")
ADMIN = "admin"
MAX_ATTEMPTS = 25

# Aggregates whose history grows with use (an assignment with every request of its user for its
# package, a membership with every grant, a group with every change of its directory members, and
# with the grants old logs recorded on it) are loaded from their latest snapshot (see _get): a
# load replays at most SNAPSHOT_AFTER events, but for the first one after more were recorded
# since the latest snapshot, which writes a new one.
SNAPSHOTTED = (Assignment, Membership, Group)
SNAPSHOT_AFTER = 32
# The latest state of that many SNAPSHOTTED aggregates is kept in memory: a load then reads only
# the events recorded since (by any process), usually none.
KEPT_IN_MEMORY = 10_000


@dataclass(frozen=True)
class Receipt:
    """What a command answers: the id and state of what it changed, and the log position of its
    last event (for read-your-writes)."""

    id: str
    state: str
    position: int | None


class EntitlementsApplication(Application):
    """Requests, approvals and delivery of access packages."""

    name = "entitlements"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock | None = None,
        resource_kinds: dict[str, ResourceKind] | None = None,
        member_index: MemberIndex | None = None,
    ) -> None:
        super().__init__(env)
        self.clock = clock or SystemClock()
        self.resource_kinds = resource_kinds if resource_kinds is not None else default_resource_kinds()
        self.members: MemberIndex = member_index or LogMemberIndex(self)
        # aggregates that do not grow are replayed in one query (the library's own repository would
        # first look for a snapshot of each)
        self._replaying = Repository(event_store=self.events)
        # aggregate id -> (its latest state, the version of its latest snapshot), least recently used first
        self._kept: OrderedDict[UUID, tuple[Aggregate, int]] = OrderedDict()
        self._kept_lock = threading.Lock()
        self._random = random.Random()

    # --- plumbing ----------------------------------------------------------------------------

    def construct_env(self, name: str, env: dict[str, str] | None = None) -> Environment:
        """Only the settings given: the library would also read ``os.environ``, where a stray
        ``ENTITLEMENTS_SQLITE_DBNAME`` or ``PERSISTENCE_MODULE`` would silently pick another store
        than ``ENTITLEMENTS_DATABASE_URL`` names."""
        return Environment(name, {"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})})

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Runs ``attempt`` again when another writer changed one of its aggregates first, after a
        short random pause that grows with each try, so that many writers do not collide again."""
        for tries in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except RecordConflictError:
                time.sleep(self._random.uniform(0, 0.002 * (tries + 1)))
        raise errors.ConcurrentModification("others kept changing the same records; try again")

    def _save(self, *aggregates: Aggregate | None) -> int | None:
        recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else None

    def _get(self, cls: type, aggregate_id: UUID) -> Aggregate:
        """The aggregate ``aggregate_id``, expected to be a ``cls``; raises ``AggregateNotFoundError``.

        A SNAPSHOTTED aggregate kept in memory (KEPT_IN_MEMORY) is brought up to date with the
        events recorded since it was kept, in one query; others are read as
        :meth:`_load_snapshotted` says. Either way, once SNAPSHOT_AFTER events have been recorded
        since its latest snapshot, a new one is written, so that another process (or this one,
        after a restart) never replays more. A kept state is never changed: the command gets a copy."""
        if not issubclass(cls, SNAPSHOTTED):
            return self._replaying.get(aggregate_id)
        with self._kept_lock:
            kept, snapshot_version = self._kept.get(aggregate_id, (None, 0))
        newer = list(self.events.get(aggregate_id, gt=kept.version)) if kept is not None else []
        if kept is None or len(newer) > SNAPSHOT_AFTER:
            kept, snapshot_version = self._load_snapshotted(aggregate_id)
        elif newer:
            kept = copy.deepcopy(kept)
            for event in newer:
                kept = event.mutate(kept)
        if kept.version - snapshot_version >= SNAPSHOT_AFTER:
            self._put_snapshot(kept)
            snapshot_version = kept.version
        with self._kept_lock:
            self._kept[aggregate_id] = (kept, snapshot_version)
            self._kept.move_to_end(aggregate_id)
            if len(self._kept) > KEPT_IN_MEMORY:
                self._kept.popitem(last=False)
        return copy.deepcopy(kept)  # the command changes its copy; the kept state changes by events only

    def _load_snapshotted(self, aggregate_id: UUID) -> tuple[Aggregate, int]:
        """Reads the newest SNAPSHOT_AFTER events first. When they reach back to the creation (most
        aggregates), that is the whole history, read in one query as for any other aggregate; when
        they reach back to the latest snapshot, it starts from there. Otherwise it is replayed from
        its latest snapshot (or from the start). Answers the aggregate and the version of its
        latest snapshot (0: none)."""
        recent = list(self.events.get(aggregate_id, desc=True, limit=SNAPSHOT_AFTER))[::-1]
        if not recent:
            raise AggregateNotFoundError(aggregate_id)
        history, after = recent, 0
        if recent[0].originator_version > 1:
            snapshots = list(self.snapshots.get(aggregate_id, desc=True, limit=1))
            after = snapshots[0].originator_version if snapshots else 0
            if after < recent[0].originator_version - 1:  # the snapshot is older than the newest events
                events = list(self.events.get(aggregate_id, gt=after or None))
            else:
                events = [event for event in recent if event.originator_version > after]
            history = [*snapshots, *events]
        aggregate = None
        for event in history:
            aggregate = event.mutate(aggregate)
        return aggregate, after

    def _put_snapshot(self, aggregate: Aggregate) -> None:
        """Snapshots are a cache beside the log: one that cannot be written (another process wrote
        the same one first, the database is busy) is simply not written."""
        try:
            self.snapshots.put([Snapshot.take(aggregate)])
        except (PersistenceError, RecordConflictError) as error:
            log.debug("snapshot of %s at version %s not written: %s", aggregate.id, aggregate.version, error)

    def _load(self, cls: type[T], aggregate_id: UUID, error: errors.NotFound) -> T:
        try:
            aggregate = self._get(cls, aggregate_id)
        except AggregateNotFoundError:
            raise error from None
        if not isinstance(aggregate, cls):
            raise error
        return aggregate

    def find(self, cls: type[T], aggregate_id: UUID) -> T | None:
        try:
            aggregate = self._get(cls, aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    @staticmethod
    def _uuid(value: str | UUID, error: errors.NotFound) -> UUID:
        if isinstance(value, UUID):
            return value
        try:
            return UUID(str(value))
        except ValueError:
            raise error from None

    # --- reading the configuration -----------------------------------------------------------

    def user(self, user_id: str) -> User:
        return self._load(User, User.id_for(user_id), errors.UnknownUser(f"no user {user_id!r}", user_id=user_id))

    def group(self, group_id: str) -> Group:
        return self._load(Group, Group.id_for(group_id), errors.UnknownGroup(f"no group {group_id!r}", group_id=group_id))

    def catalog(self, catalog_id: str) -> Catalog:
        return self._load(
            Catalog, Catalog.id_for(catalog_id), errors.UnknownCatalog(f"no catalog {catalog_id!r}", catalog_id=catalog_id)
        )

    def access_package(self, package_id: str) -> AccessPackage:
        return self._load(
            AccessPackage,
            AccessPackage.id_for(package_id),
            errors.UnknownAccessPackage(f"no access package {package_id!r}", access_package_id=package_id),
        )

    def policy_version(self, policy_id: str, version: int) -> AssignmentPolicy:
        """The policy as it was at ``version``: decisions follow the version a request was made under."""
        try:
            policy = self._replaying.get(AssignmentPolicy.id_for(policy_id), version=version)
        except AggregateNotFoundError:
            raise errors.UnknownPolicy(f"no policy {policy_id!r} at version {version}", policy_id=policy_id) from None
        return policy

    def policy(self, policy_id: str) -> AssignmentPolicy:
        return self._load(
            AssignmentPolicy,
            AssignmentPolicy.id_for(policy_id),
            errors.UnknownPolicy(f"no policy {policy_id!r}", policy_id=policy_id),
        )

    def request(self, request_id: str | UUID) -> AccessRequest:
        error = errors.UnknownRequest(f"no request {request_id}", request_id=str(request_id))
        return self._load(AccessRequest, self._uuid(request_id, error), error)

    def assignment(self, assignment_id: str | UUID) -> Assignment:
        error = errors.UnknownAssignment(f"no assignment {assignment_id}", assignment_id=str(assignment_id))
        return self._load(Assignment, self._uuid(assignment_id, error), error)

    def request_and_assignment(self, request_id: str | UUID) -> tuple[AccessRequest, Assignment]:
        """A request and its assignment, as one consistent pair.

        Commands write the two together, so the request is read again after its assignment: a
        request read later is at least as new, and a fresh assignment is never paired with a
        stale request (which would, for instance, start a second delivery)."""
        request = self.request(request_id)
        assignment = self.assignment(request.assignment_id)
        return self.request(request.id), assignment

    def find_assignment(self, user_id: str, package_id: str) -> Assignment | None:
        return self.find(Assignment, Assignment.id_for(user_id, package_id))

    def request_state(self, request_id: str | UUID) -> str:
        request = self.request(request_id)
        return self._request_state(request, self.find(Assignment, UUID(request.assignment_id)))

    def _request_state(self, request: AccessRequest, assignment: Assignment | None) -> str:
        """The state a person sees for a request (DESIGN.md, "Request states"): once approved, it
        follows the access the request granted (delivering, delivered, partially delivered,
        extended, expired)."""
        if request.state != APPROVED or assignment is None:
            return request.state
        request_id = str(request.id)
        if request_id == assignment.request_id or request_id in assignment.extension_request_ids:
            return assignment.state or APPROVED
        return self._past_grant_state(assignment.id, request_id)

    def _past_grant_state(self, assignment_id: UUID, request_id: str) -> str:
        """How the grant period of an earlier request ended (expired, removed...): the state the
        assignment was in when its next grant period began. Read from the assignment's history,
        which only questions about old requests need (the assignment keeps its current period)."""
        state = None
        for event in self.events.get(assignment_id):
            if isinstance(event, Assignment.Delivering) and state is not None:
                if request_id in (state.request_id, *state.extension_request_ids):
                    return state.state or APPROVED
            state = event.mutate(state)
        return APPROVED

    # --- group membership --------------------------------------------------------------------

    def group_exists(self, group_id: str) -> bool:
        return bool(list(self.events.get(Group.id_for(group_id), limit=1)))

    def membership(self, group_id: str, user_id: str, *, now: datetime) -> Membership:
        """``user_id``'s membership of ``group_id``: recorded, or new (carrying over the grants an
        old log recorded on the group itself)."""
        membership = self.find(Membership, Membership.id_for(group_id, user_id))
        if membership is not None:
            return membership
        if not self.group_exists(group_id):
            raise errors.UnknownGroup(f"no group {group_id!r}", group_id=group_id)
        return Membership.create(
            group_id=group_id, user_id=user_id, carried_over=self.members.sources(group_id, user_id),
            actor=SYSTEM, now=now,
        )

    def is_member(self, group_id: str, user_id: str) -> bool:
        """Is ``user_id`` in ``group_id`` now, from the directory or through access?"""
        group = self.find(Group, Group.id_for(group_id))
        if group is None:
            return False
        if user_id in group.directory_members:
            return True
        membership = self.find(Membership, Membership.id_for(group_id, user_id))
        if membership is not None:
            return membership.is_member
        return bool(self.members.sources(group_id, user_id))  # granted on the group by an old log

    def group_members(self, group_id: str, at: datetime | None = None) -> list[str]:
        """Who is in ``group_id`` now, or at the moment ``at``: directory members first, then
        members through access, no repeats."""
        group = self.group(group_id)
        if at is None:
            directory, granted = group.directory_members, self.members.granted_members(group_id)
        else:
            state = None
            for event in self.events.get(group.id):  # the group's settings, as they were then
                if event.timestamp > at:
                    break
                state = event.mutate(state)
            directory = state.directory_members if state is not None else []
            granted = self.members.granted_members_at(group_id, at) if state is not None else []
        return list(dict.fromkeys([*directory, *granted]))

    def policies_of(self, package: AccessPackage) -> list[AssignmentPolicy]:
        return [self.policy(policy_id) for policy_id in package.settings.get("policies", [])]

    # --- configuration -----------------------------------------------------------------------

    def configure(self, items: Iterable[tuple[type[ConfigurationItem], str, dict]], *, actor: str) -> list[str]:
        """Registers or updates configuration items, all in one transaction.

        Unchanged items record nothing, so applying the same configuration twice changes nothing.
        Returns the ``kind:key`` of every item that changed.
        """
        items = list(items)

        def attempt() -> list[str]:
            now = self.clock.now()
            changed: list[Aggregate] = []
            names: list[str] = []
            for cls, key, settings in items:
                existing = self.find(cls, cls.id_for(key))
                if existing is None:
                    changed.append(cls.register(key, settings, actor=actor, now=now))
                    names.append(f"{cls.KIND}:{key}")
                elif existing.reconfigure(settings, actor=actor, now=now):
                    changed.append(existing)
                    names.append(f"{cls.KIND}:{key}")
            if changed:
                self.save(*changed)
            return names

        return self._retrying(attempt)

    # --- submitting --------------------------------------------------------------------------

    def submit_request(
        self,
        *,
        requestor_id: str,
        access_package_id: str,
        policy_id: str | None = None,
        target_user_id: str | None = None,
        justification: str | None = None,
        answers: dict[str, Any] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Receipt:
        """A user asks for an access package, for themselves or on behalf of ``target_user_id``."""
        limits.check_input(access_package_id=access_package_id, policy_id=policy_id, target_user_id=target_user_id,
                           justification=justification, answers=answers)

        def attempt() -> tuple[AccessRequest, Assignment, int | None]:
            now = self.clock.now()
            requestor = self.user(requestor_id)
            target = self.user(target_user_id) if target_user_id and target_user_id != requestor_id else requestor
            package = self.access_package(access_package_id)
            self.catalog(package.catalog_id).check_open_to(external=requestor.is_external or target.is_external)
            if target is not requestor and not (requestor.has_role(ADMIN) or target.manager_id == requestor.key):
                raise errors.OnBehalfNotAllowed(
                    f"{requestor.key} may not request on behalf of {target.key}: only their manager may",
                    target_user_id=target.key,
                )
            policy = self._policy_for_request(package, policy_id, target)
            if policy.requestor_justification_required and not (justification or "").strip():
                raise errors.JustificationRequired(f"policy {policy.key!r} requires a business justification")
            policy.check_answers(answers or {})
            self._check_schedule(start, end, now)
            granted_end = access_end(policy.expiration, start or now, end)
            if granted_end is not None and granted_end <= (start or now):
                raise errors.InvalidSchedule(
                    f"access under policy {policy.key!r} would already have ended ({granted_end.isoformat()})", field="end"
                )
            self._check_compatible(package, target.key)
            assignment = self._assignment_for(target.key, package.key, actor=requestor.key, now=now)
            if assignment.is_active:
                raise errors.AlreadyAssigned(
                    f"{target.key} already holds {package.key}", assignment_id=str(assignment.id)
                )
            stages = self._resolve_stages(policy, requestor=requestor, target=target)
            return self._open_request(
                request_type=USER_ADD,
                requestor=requestor,
                target=target,
                package=package,
                policy=policy,
                assignment=assignment,
                stages=stages,
                justification=justification,
                answers=answers,
                start=start,
                end=end,
                now=now,
            )

        request, assignment, position = self._retrying(attempt)
        return self._finish(request, assignment, position)

    def assign_directly(
        self,
        *,
        admin_id: str,
        target_user_id: str,
        access_package_id: str,
        policy_id: str | None = None,
        justification: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Receipt:
        """An administrator gives a user a package: no approval, and no request emails."""

        def attempt() -> tuple[AccessRequest, Assignment, int | None]:
            now = self.clock.now()
            admin = self._administrator(admin_id)
            target = self.user(target_user_id)
            package = self.access_package(access_package_id)
            policies = self.policies_of(package)
            if policy_id is not None:
                policy = self.policy(policy_id)
                if policy.access_package_id != package.key:
                    raise errors.UnknownPolicy(f"policy {policy_id!r} is not a policy of {package.key!r}", policy_id=policy_id)
            elif policies:
                policy = policies[0]
            else:
                raise errors.UnknownPolicy(f"access package {package.key!r} has no policy", access_package_id=package.key)
            self._check_schedule(start, end, now)
            self._check_compatible(package, target.key)
            assignment = self._assignment_for(target.key, package.key, actor=admin.key, now=now)
            if assignment.is_active:
                raise errors.AlreadyAssigned(f"{target.key} already holds {package.key}", assignment_id=str(assignment.id))
            return self._open_request(
                request_type=ADMIN_ADD,
                requestor=admin,
                target=target,
                package=package,
                policy=policy,
                assignment=assignment,
                stages=[],
                justification=justification,
                start=start,
                end=end,
                now=now,
            )

        request, assignment, position = self._retrying(attempt)
        return self._finish(request, assignment, position)

    def request_extension(self, *, user_id: str, assignment_id: str | UUID, justification: str | None = None) -> Receipt:
        """The holder of an assignment asks to keep it longer (a ``user_extend`` request)."""

        def attempt() -> tuple[AccessRequest, Assignment, int | None]:
            now = self.clock.now()
            assignment = self.assignment(assignment_id)
            user = self.user(user_id)
            if assignment.user_id != user.key:
                raise errors.NotTheAssignee(f"{user.key} does not hold this assignment", user_id=assignment.user_id)
            if not assignment.is_active or (assignment.end is not None and now >= assignment.end):
                raise errors.AccessNotActive(
                    "access has ended; submit a new request instead of an extension", state=assignment.state
                )
            policy = self.policy(assignment.policy_id)
            if not policy.extension_allowed:
                raise errors.ExtensionNotAllowed(f"policy {policy.key!r} does not allow extensions", policy_id=policy.key)
            if assignment.end is None:
                raise errors.ExtensionNotAllowed("this access never ends; there is nothing to extend")
            extended_end(policy.expiration, assignment.end)  # raises where the policy cannot extend
            assignment.check_no_pending_extension()
            policy.check_extension_window(assignment.end, now)
            package = self.access_package(assignment.access_package_id)
            stages = []
            if policy.extension.get("approval_required", False):
                stages = self._resolve_stages(policy, requestor=user, target=user, stages=policy.approval_stages)
            return self._open_request(
                request_type=USER_EXTEND,
                requestor=user,
                target=user,
                package=package,
                policy=policy,
                assignment=assignment,
                stages=stages,
                justification=justification,
                now=now,
            )

        request, assignment, position = self._retrying(attempt)
        return self._finish(request, assignment, position)

    def _open_request(
        self,
        *,
        request_type: str,
        requestor: User,
        target: User,
        package: AccessPackage,
        policy: AssignmentPolicy,
        assignment: Assignment,
        stages: list[dict],
        justification: str | None,
        answers: dict[str, Any] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        now: datetime,
    ) -> tuple[AccessRequest, Assignment, int | None]:
        """Records a new request and its claim on the assignment, in one transaction; a request
        needing no approval is approved (and its delivery started) in the same transaction."""
        request = AccessRequest.submit(
            request_type=request_type,
            requestor_id=requestor.key,
            target_user_id=target.key,
            access_package_id=package.key,
            catalog_id=package.catalog_id,
            policy_id=policy.key,
            policy_version=policy.version,
            assignment_id=str(assignment.id),
            justification=(justification or "").strip() or None,
            questions=[{"id": q["id"], "text": q.get("text", "")} for q in policy.questions] if request_type == USER_ADD else [],
            answers=dict(answers or {}),
            start=start,
            end=end,
            stages=stages,
            notifications_enabled=package.notifications_enabled,
            now=now,
        )
        assignment.open_request(request_id=str(request.id), request_type=request_type, actor=requestor.key, now=now)
        self._after_decision(request, assignment, now=now)
        return request, assignment, self._save(request, assignment)

    def _policy_for_request(self, package: AccessPackage, policy_id: str | None, target: User) -> AssignmentPolicy:
        policies = self.policies_of(package)
        if policy_id is not None:
            policy = self.policy(policy_id)
            if policy.access_package_id != package.key:
                raise errors.UnknownPolicy(f"policy {policy_id!r} is not a policy of {package.key!r}", policy_id=policy_id)
            candidates = [policy]
        else:
            candidates = policies
        accepting = [p for p in candidates if p.accepts_requests()]
        if not accepting:
            raise errors.RequestsNotAccepted(
                f"access package {package.key!r} has no policy that accepts requests; only an administrator can assign it",
                access_package_id=package.key,
            )
        for policy in accepting:
            if policy.allows_requestor(target.key, is_external=target.is_external, is_in_group=self._member_check(target.key)):
                return policy
        raise errors.RequestorNotAllowed(
            f"no policy of {package.key!r} allows {target.key} to request it", access_package_id=package.key
        )

    def _member_check(self, user_id: str) -> Callable[[str], bool]:
        return lambda group_id: self.is_member(group_id, user_id)

    @staticmethod
    def _check_schedule(start: datetime | None, end: datetime | None, now: datetime) -> None:
        for name, moment in (("start", start), ("end", end)):
            if moment is not None and not isinstance(moment, datetime):
                raise errors.InvalidSchedule(f"{name} must be a date and time", field=name)
            if moment is not None and moment.tzinfo is None:
                raise errors.InvalidSchedule(f"{name} must include a timezone", field=name)
            limits.check_moment(name, moment)  # before any arithmetic: 1970 to 8999 in UTC
        if end is not None and end <= now:
            raise errors.InvalidSchedule("the requested end is in the past", field="end")
        if start is not None and end is not None and end <= start:
            raise errors.InvalidSchedule("the requested end must come after the requested start", field="end")

    def _check_compatible(self, package: AccessPackage, user_id: str, *, pending_counts: bool = True) -> None:
        """The user holds (or, with ``pending_counts``, has asked for) no incompatible package and
        is in no incompatible group. Checked at submission and again at approval."""
        for other in package.incompatible_packages:
            held = self.find_assignment(user_id, other)
            if held is not None and held.is_active:
                raise errors.IncompatibleAccess(
                    f"{user_id} holds {other!r}, which is incompatible with {package.key!r}",
                    incompatible_package=other,
                )
            if pending_counts and held is not None and held.open_request_id is not None:
                raise errors.IncompatibleAccess(
                    f"{user_id} has a pending request for {other!r}, which is incompatible with {package.key!r}",
                    incompatible_package=other,
                    request_id=held.open_request_id,
                )
        for group_id in package.incompatible_groups:
            if self._member_check(user_id)(group_id):
                raise errors.IncompatibleAccess(
                    f"{user_id} is in group {group_id!r}, which is incompatible with {package.key!r}",
                    incompatible_group=group_id,
                )

    def _assignment_for(self, user_id: str, package_id: str, *, actor: str, now: datetime) -> Assignment:
        assignment = self.find_assignment(user_id, package_id)
        if assignment is None:
            assignment = Assignment.create(user_id=user_id, access_package_id=package_id, actor=actor, now=now)
        assignment.check_no_open_request()
        return assignment

    def _resolve_stages(
        self, policy: AssignmentPolicy, *, requestor: User, target: User, stages: list[dict] | None = None
    ) -> list[dict]:
        def members_of(group_id: str) -> list[str]:
            try:
                return self.group_members(group_id)
            except errors.UnknownGroup:
                return []

        def manager_of(user_id: str) -> str | None:
            user = self.find(User, User.id_for(user_id))
            return user.manager_id if user is not None else None

        return resolve_stages(
            policy.stages if stages is None else stages,
            subject_user_id=target.key,
            excluded={requestor.key, target.key},
            members_of=members_of,
            manager_of=manager_of,
            requestor_id=requestor.key,
            package_name=self.access_package(policy.access_package_id).name,
        )

    def _administrator(self, user_id: str) -> User:
        user = self.user(user_id)
        if not user.has_role(ADMIN):
            raise errors.AdministratorRequired(f"{user_id} is not an administrator", user_id=user_id)
        return user

    # --- deciding ----------------------------------------------------------------------------

    def decide(self, *, request_id: str | UUID, approver_id: str, decision: str, reason: str | None = None) -> Receipt:
        """An approver of the current stage approves or denies; the first decision wins."""

        def attempt() -> tuple[AccessRequest, Assignment, int | None, bool]:
            now = self.clock.now()
            request, assignment = self.request_and_assignment(request_id)
            if self._expire_if_overdue(request, assignment, now=now):
                return request, assignment, self._save(request, assignment), True
            self.user(approver_id)
            if request.escalation_due(now):
                request.escalate(now=now)  # recorded now if the scheduler has not yet: alternates may decide
            request.decide(approver_id=approver_id, decision=decision, reason=reason, now=now)
            self._after_decision(request, assignment, now=now)
            return request, assignment, self._save(request, assignment), False

        request, assignment, position, expired = self._retrying(attempt)
        if expired:
            raise self._expired_error(request)
        return self._finish(request, assignment, position)

    def _after_decision(self, request: AccessRequest, assignment: Assignment, *, now: datetime) -> None:
        """Applies a request's outcome to its assignment: close the open request, and on approval
        start delivery (or move the end date, for an extension)."""
        if request.is_open:
            return
        assignment.close_request(request_id=str(request.id), outcome=request.state, actor=SYSTEM, now=now)
        if request.state != APPROVED:
            return
        policy = self.policy_version(request.policy_id, request.policy_version)
        if request.request_type == USER_EXTEND:
            assignment.extend(
                request_id=str(request.id),
                end=extended_end(policy.expiration, assignment.end),
                actor=SYSTEM,
                now=now,
            )
            return
        package = self.access_package(request.access_package_id)
        self._check_compatible(package, request.target_user_id, pending_counts=False)
        start = max(request.start, now) if request.start else now
        end = access_end(policy.expiration, start, request.end)
        if end is not None and end <= start:
            raise errors.InvalidSchedule(
                f"the access asked for would already have ended ({end.isoformat()}); deny the request instead",
                field="end",
            )
        assignment.start_delivery(
            request_id=str(request.id),
            policy_id=policy.key,
            policy_version=policy.version,
            resources=package.resources,
            start=start,
            end=end,
            expiration=policy.expiration,
            extension=policy.extension,
            actor=SYSTEM,
            now=now,
        )

    def _finish(self, request: AccessRequest, assignment: Assignment, position: int | None) -> Receipt:
        """Runs delivery if the command started it, and answers the request's receipt."""
        starts_now = assignment.start is None or assignment.start <= self.clock.now()
        if assignment.state == DELIVERING and assignment.request_id == str(request.id) and starts_now:
            try:
                delivery = self.deliver(assignment.id)
            except errors.DomainError as error:
                # The command itself is recorded; delivery is resumed by running ``deliver`` again.
                log.warning("delivery of %s after request %s stopped: %s", assignment.id, request.id, error)
            else:
                position = delivery.position or position
            assignment = self.assignment(assignment.id)
        return Receipt(id=str(request.id), state=self._request_state(request, assignment), position=position)

    # --- time-driven commands on requests ----------------------------------------------------

    def _on_request(
        self, request_id: str | UUID, change: Callable[[AccessRequest, datetime], None], *, catch_up: bool = True
    ) -> Receipt:
        """Loads a request and its assignment, records what time has made due (``catch_up``), applies
        ``change`` and the outcome to the assignment, and saves both in one transaction."""

        def attempt() -> tuple[AccessRequest, Assignment, int | None, bool]:
            now = self.clock.now()
            request, assignment = self.request_and_assignment(request_id)
            if catch_up and self._expire_if_overdue(request, assignment, now=now):
                return request, assignment, self._save(request, assignment), True
            change(request, now)
            self._after_decision(request, assignment, now=now)
            return request, assignment, self._save(request, assignment), False

        request, assignment, position, expired = self._retrying(attempt)
        if expired:
            raise self._expired_error(request)
        return Receipt(id=str(request.id), state=self._request_state(request, assignment), position=position)

    def _expire_if_overdue(self, request: AccessRequest, assignment: Assignment, *, now: datetime) -> bool:
        """Time drives requests even when no scheduler ran: a stage whose deadline passed
        undecided is recorded as expired before anything else is done to the request."""
        if not request.is_overdue(now):
            return False
        request.expire(now=now)
        self._after_decision(request, assignment, now=now)
        return True

    @staticmethod
    def _expired_error(request: AccessRequest) -> errors.RequestExpired:
        deadline = request.progress[request.current_stage - 1]["deadline"]
        return errors.RequestExpired(
            f"this request expired at {deadline.isoformat()}: nobody decided stage {request.current_stage} in time,"
            " so it can no longer be decided, reminded, escalated or cancelled",
            state=EXPIRED,
            deadline=deadline.isoformat(),
        )

    def remind_approvers(self, request_id: str | UUID) -> Receipt:
        """Reminds the undecided approvers of the current stage (once per stage, when due)."""
        return self._on_request(request_id, lambda request, now: request.remind(now=now))

    def escalate(self, request_id: str | UUID) -> Receipt:
        """Forwards the current stage to its alternate approvers (when escalation is due)."""
        return self._on_request(request_id, lambda request, now: request.escalate(now=now))

    def expire_request(self, request_id: str | UUID) -> Receipt:
        """Ends a request nobody decided before its stage's deadline."""
        return self._on_request(request_id, lambda request, now: request.expire(now=now), catch_up=False)

    def cancel_request(self, *, request_id: str | UUID, actor_id: str, reason: str | None = None) -> Receipt:
        """The requestor withdraws a pending request."""
        return self._on_request(request_id, lambda request, now: request.cancel(actor=actor_id, reason=reason, now=now))

    def revoke_approval(self, *, request_id: str | UUID, approver_id: str, reason: str | None) -> Receipt:
        """The approver who approved undoes it; the access it granted is removed."""

        def attempt() -> tuple[AccessRequest, Assignment, int | None]:
            now = self.clock.now()
            request, assignment = self.request_and_assignment(request_id)
            request.revoke(actor=approver_id, reason=reason, now=now)
            changed: list[Aggregate] = [request, assignment]
            if assignment.grants_from(str(request.id)):
                changed += self._withdraw_resources(assignment, now=now)
                assignment.remove(reason=reason, request_id=str(request.id), actor=approver_id, now=now)
                changed += self._end_open_extension(
                    assignment, reason="access was revoked before the extension was decided", now=now
                )
            return request, assignment, self._save(*changed)

        request, assignment, position = self._retrying(attempt)
        return Receipt(id=str(request.id), state=self._request_state(request, assignment), position=position)

    # --- delivery ----------------------------------------------------------------------------

    def deliver_resource(self, assignment_id: str | UUID, resource_id: str) -> Receipt:
        """Grants one resource of an assignment being delivered and records the outcome."""

        def attempt() -> tuple[Assignment, int | None]:
            now = self.clock.now()
            assignment = self.assignment(assignment_id)
            assignment.check_started(now)
            resource = assignment.resource(resource_id)
            if assignment.resource_status[resource_id] == RESOURCE_DELIVERED:
                return assignment, None
            kind = self.resource_kinds.get(resource["kind"])
            changed: Sequence[Aggregate] = []
            try:
                if kind is None:
                    raise DeliveryFailed(f"no connector for resource kind {resource['kind']!r}")
                changed = kind.grant(
                    self, user_id=assignment.user_id, resource_id=resource_id, assignment_id=str(assignment.id), now=now
                )
            except DeliveryFailed as failure:
                assignment.record_resource_failed(resource_id, error=str(failure), actor=SYSTEM, now=now)
            else:
                assignment.record_resource_delivered(resource_id, actor=SYSTEM, now=now)
            return assignment, self._save(assignment, *changed)

        assignment, position = self._retrying(attempt)
        return Receipt(id=str(assignment.id), state=assignment.state, position=position)

    def deliver(self, assignment_id: str | UUID) -> Receipt:
        """Grants every resource not yet delivered, then records Delivered or Partially Delivered.

        Safe to run again: after a crash, or to retry the resources that failed. Access requested
        to start later is refused with ``NotYetDue`` until its start."""
        assignment = self.assignment(assignment_id)
        assignment.check_started(self.clock.now())
        position = None
        for resource in assignment.pending_resources():
            receipt = self.deliver_resource(assignment.id, resource["id"])
            position = receipt.position or position

        def complete() -> tuple[Assignment, int | None]:
            current = self.assignment(assignment_id)
            current.complete_delivery(actor=SYSTEM, now=self.clock.now())
            return current, self._save(current)

        assignment, completed_at = self._retrying(complete)
        return Receipt(id=str(assignment.id), state=assignment.state, position=completed_at or position)

    def _end_open_extension(self, assignment: Assignment, *, reason: str, now: datetime) -> list[Aggregate]:
        """An extension still pending when access ends can no longer succeed: it is withdrawn, so
        the user may request the package again."""
        if assignment.open_request_id is None:
            return []
        request = self.request(assignment.open_request_id)
        if request.request_type != USER_EXTEND or not request.is_open:
            return []
        request.withdraw(reason=reason, now=now)
        assignment.close_request(request_id=str(request.id), outcome=request.state, actor=SYSTEM, now=now)
        return [request]

    def _withdraw_resources(self, assignment: Assignment, *, now: datetime) -> list[Aggregate]:
        changed: list[Aggregate] = []
        for resource in assignment.delivered_resources():
            kind = self.resource_kinds.get(resource["kind"])
            if kind is None:
                continue
            try:
                changed += kind.withdraw(
                    self, user_id=assignment.user_id, resource_id=resource["id"], assignment_id=str(assignment.id), now=now
                )
            except DeliveryFailed as failure:
                log.warning("could not withdraw %s from %s: %s", resource["id"], assignment.user_id, failure)
        return changed

    # --- access over time --------------------------------------------------------------------

    def _on_assignment(self, assignment_id: str | UUID, change: Callable[[Assignment, datetime], list[Aggregate]]) -> Receipt:
        def attempt() -> tuple[Assignment, int | None]:
            now = self.clock.now()
            assignment = self.assignment(assignment_id)
            changed = change(assignment, now)
            return assignment, self._save(assignment, *changed)

        assignment, position = self._retrying(attempt)
        return Receipt(id=str(assignment.id), state=assignment.state, position=position)

    def remind_access_expiry(self, assignment_id: str | UUID) -> Receipt:
        """Tells the user their access ends soon (where the policy allows an extension)."""

        def change(assignment: Assignment, now: datetime) -> list[Aggregate]:
            assignment.remind_expiry(now=now)
            return []

        return self._on_assignment(assignment_id, change)

    def expire_access(self, assignment_id: str | UUID) -> Receipt:
        """Ends access whose end date has passed, withdrawing every resource."""

        def change(assignment: Assignment, now: datetime) -> list[Aggregate]:
            assignment.expire(now=now)
            ended = self._end_open_extension(assignment, reason="access ended before the extension was decided", now=now)
            return ended + self._withdraw_resources(assignment, now=now)

        return self._on_assignment(assignment_id, change)

    def remove_access(self, *, assignment_id: str | UUID, admin_id: str, reason: str | None = None) -> Receipt:
        """An administrator takes access away."""

        def change(assignment: Assignment, now: datetime) -> list[Aggregate]:
            self._administrator(admin_id)
            if not (reason or "").strip():
                raise errors.ReasonRequired("a reason is required to remove access")
            withdrawn = self._withdraw_resources(assignment, now=now) if assignment.is_active else []
            assignment.remove(reason=reason.strip(), request_id=None, actor=admin_id, now=now)
            ended = self._end_open_extension(assignment, reason="access was removed before the extension was decided", now=now)
            return ended + withdrawn

        return self._on_assignment(assignment_id, change)
