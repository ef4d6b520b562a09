"""All read models of entitlements, and the queries the web layer asks of them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Callable, Sequence

from eventsourcing.application import Application

from domain.user import User
from projections.configuration import DEFAULT_BASE_URL, DEFAULT_NOTIFIER_HORIZON, notifier_horizon
from notifier.projection import HorizonSetting, NotifierReadModel

from projections.access_history import AccessHistoryReadModel
from projections.assignments import AssignmentsReadModel
from projections.audit_log import AuditLog, EventFilter
from projections.catalog import CatalogReadModel, Requestor
from projections.explanations import Explainer
from projections.deadlines import DeadlinesReadModel
from projections.directory import DirectoryReadModel
from projections.engine import BATCH_SIZE, Failure, Projector, ReadModel, with_sources
from projections.event_log import EventLog
from projections.facts import FactsModel
from projections.history import HistoryReadModel
from projections.paging import Page
from projections.rebuild import rebuild_beside
from projections.pending import PendingReadModel
from projections.requests import RequestsReadModel
from projections.store import ViewStore

READ_MODELS: dict[str, type[ReadModel]] = {
    "facts": FactsModel,
    "pending": PendingReadModel,
    "history": HistoryReadModel,
    "requests": RequestsReadModel,
    "assignments": AssignmentsReadModel,
    "deadlines": DeadlinesReadModel,
    "directory": DirectoryReadModel,
    "notifier": NotifierReadModel,
    "access_history": AccessHistoryReadModel,
    "catalog": CatalogReadModel,
}


class UnknownReadModel(ValueError):
    pass


def check_names(names: Sequence[str]) -> list[str]:
    unknown = [name for name in names if name not in READ_MODELS]
    if unknown:
        raise UnknownReadModel(
            f"no read model named {', '.join(map(repr, unknown))}; the read models are: {', '.join(READ_MODELS)}"
        )
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class RebuildResult:
    names: list[str]
    events: int  # log positions passed
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


class ReadModels:
    """The read models over one application's log, kept in ``store``."""

    def __init__(
        self,
        app: Application,
        store: ViewStore,
        *,
        batch_size: int = BATCH_SIZE,
        base_url: str = DEFAULT_BASE_URL,
        mail_domain: str = "localhost",
        notifier_horizon: str = DEFAULT_NOTIFIER_HORIZON,
    ) -> None:
        self.app = app
        self.store = store
        self.batch_size = batch_size
        self.base_url = base_url
        self.mail_domain = mail_domain
        self.notifier_horizon = notifier_horizon  # ENTITLEMENTS_NOTIFIER_HORIZON
        self.models = self._new_models()
        self.projector = Projector(app, store, list(self.models.values()), batch_size=batch_size)
        self.audit_log = AuditLog(EventLog(app, store))

    def _new_models(self) -> dict[str, Any]:
        """One instance of every read model, sharing one facts and one directory instance."""
        facts, directory = FactsModel(), DirectoryReadModel()
        models: dict[str, Any] = {}
        for name, kind in READ_MODELS.items():
            if kind is FactsModel:
                models[name] = facts
            elif kind is DirectoryReadModel:
                models[name] = directory
            elif kind is CatalogReadModel:  # reads the configuration events alone
                models[name] = kind()
            elif kind is NotifierReadModel:
                horizon = HorizonSetting(  # the application's clock (manual or not), read when a projection begins
                    self.notifier_horizon, notifier_horizon(self.notifier_horizon),
                    now=lambda: self.app.clock.now(), log_head=EventLog(self.app, self.store).head_in,
                )
                models[name] = kind(facts, directory, base_url=self.base_url, mail_domain=self.mail_domain, horizon=horizon)
            else:
                models[name] = kind(facts)
        return models

    # --- running -----------------------------------------------------------------------------

    def projector_for(self, names: Sequence[str]) -> Projector:
        return Projector(
            self.app, self.store, [self.models[name] for name in check_names(names)], batch_size=self.batch_size
        )

    def deadlines_projector(self) -> Projector:
        """A projector of the deadlines (and the facts they derive from) with read-model instances
        of its own, for the scheduler's thread: it never shares in-memory state with
        :attr:`projector`, and the two take turns on the positions in the database as two
        processes would."""
        return Projector(self.app, self.store, [DeadlinesReadModel(FactsModel())], batch_size=self.batch_size)

    def catch_up(self) -> int:
        return self.projector.catch_up()

    def rebuild(
        self, names: Sequence[str] | None = None, progress: Callable[[int, int], None] | None = None
    ) -> RebuildResult:
        """Projects the whole log again into new rows for ``names`` (all when None), built beside
        the current ones, which go on answering every read, then swapped in in one transaction
        (:mod:`projections.rebuild`). A read model derived from the facts is rebuilt from the
        facts as they are (brought up to the head first when behind); name ``facts`` too, or
        none, to fold the facts again from the log. Raises :class:`RebuildFailed` (the current
        rows untouched) when a read model fails on an event."""
        names = check_names(names) if names else list(self.models)
        started = time.perf_counter()
        fresh = self._new_models()  # no in-memory state shared with the projector that serves
        group = with_sources([fresh[name] for name in names])
        kept = [model for model in group if model.name not in names]
        if kept:
            Projector(self.app, self.store, kept, batch_size=self.batch_size).catch_up()
        moved = rebuild_beside(self.app, self.store.database, group, rebuilt=names, batch_size=self.batch_size, progress=progress)
        return RebuildResult(names=names, events=moved, seconds=time.perf_counter() - started)

    def failures(self) -> dict[str, Failure]:
        """The read models stuck on an event (``/readyz`` reports them), by name."""
        return self.projector.failures()

    def retry_failed(self) -> None:
        """Tries the failing read models again at the next batch, without waiting for their backoff."""
        self.projector.retry_failed()

    def positions(self) -> dict[str, int]:
        return self.projector.positions()

    def head(self) -> int:
        return self.projector.head()

    def wait_for(self, position: int, timeout: float = 5.0, names: Sequence[str] | None = None) -> bool:
        return self.projector.wait_for(position, timeout, names)

    def dump(self, name: str) -> list[tuple]:
        with self.store.transaction(write=False) as tx:
            return self.models[name].dump(tx)

    # --- queries -----------------------------------------------------------------------------

    def pending(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page:
        with self.store.transaction(write=False) as tx:
            return self.models["pending"].of_approver(tx, user_id, limit=limit, cursor=cursor)

    def history(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page:
        with self.store.transaction(write=False) as tx:
            return self.models["history"].of_approver(tx, user_id, limit=limit, cursor=cursor)

    def request(self, request_id: str) -> dict[str, Any] | None:
        with self.store.transaction(write=False) as tx:
            return self.models["requests"].get(tx, request_id)

    def requests_of(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page:
        with self.store.transaction(write=False) as tx:
            return self.models["requests"].of_user(tx, user_id, limit=limit, cursor=cursor)

    def assignments_of(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page:
        with self.store.transaction(write=False) as tx:
            return self.models["assignments"].of_user(tx, user_id, limit=limit, cursor=cursor)

    def assignment(self, assignment_id: str) -> dict[str, Any] | None:
        with self.store.transaction(write=False) as tx:
            return self.models["assignments"].get(tx, assignment_id)

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self.store.transaction(write=False) as tx:
            return self.models["directory"].get(tx, user_id)

    def users(self, user_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The directory entries of those of ``user_ids`` that are known, by id."""
        with self.store.transaction(write=False) as tx:
            return self.models["directory"].get_many(tx, user_ids)

    def reports_of(self, manager_id: str) -> list[dict[str, Any]]:
        """The directory entries of ``manager_id``'s direct reports, by name."""
        with self.store.transaction(write=False) as tx:
            return self.models["directory"].reports_of(tx, manager_id)

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """The directory entries with this email address (case aside): one, or none, or (a
        directory that repeats an address) several."""
        with self.store.transaction(write=False) as tx:
            return self.models["directory"].by_email(tx, email)

    def awaits_decision(self, user_id: str, request_id: str) -> bool:
        """Whether the request awaits this user's decision now (it is on their Pending list)."""
        with self.store.transaction(write=False) as tx:
            return self.models["pending"].awaits(tx, user_id, request_id)

    def requestable_packages(
        self, user_id: str, *, search: str | None = None, limit: int, cursor: str | None = None
    ) -> Page:
        """The access packages ``user_id`` may request (``GET /access-packages``), hidden ones left
        out, by name (letter case aside) then id; ``search``: only those whose name or description
        holds it, letter case aside. Items: ``{id, name, description, catalog_id, catalog_name,
        policies: [{id, name, description, questions: [{id, text, required, choices}],
        requestor_justification_required, approval_required, expiration}]}``, with only the
        policies this user may request under, in the package's order (the first is the one a
        request naming no policy is made under)."""
        requestor = self._requestor(user_id)
        with self.store.transaction(write=False) as tx:
            return self.models["catalog"].requestable(tx, requestor, search=search, limit=limit, cursor=cursor)

    def requestable_package(self, user_id: str, package_id: str) -> dict[str, Any] | None:
        """One access package, hidden ones too (they open by link), shaped as an item of
        :meth:`requestable_packages` plus ``hidden``, with only the policies ``user_id`` may
        request under (none when the package's catalog is closed to them); None when there is
        no such package."""
        requestor = self._requestor(user_id)
        with self.store.transaction(write=False) as tx:
            return self.models["catalog"].requestable_package(tx, requestor, package_id)

    def _requestor(self, user_id: str) -> Requestor | None:
        """The user as the domain sees them now (the directory and group membership of the
        application, not of a read model): what the policies' rules are asked about."""
        user = self.app.find(User, User.id_for(user_id))
        if user is None:
            return None
        app = self.app
        return Requestor(user.key, user.is_external, cache(lambda group_id: app.is_member(group_id, user.key)))

    def due_deadlines(self, now: datetime, *, limit: int = 1000, after: tuple[str, str, str] | None = None) -> list[dict]:
        with self.store.transaction(write=False) as tx:
            return self.models["deadlines"].due(tx, now, limit=limit, after=after)

    def deadlines_of(self, subject_ids: set[str]) -> list[dict]:
        """The deadlines of these requests and assignments, whenever due."""
        with self.store.transaction(write=False) as tx:
            return self.models["deadlines"].of_subjects(tx, subject_ids)

    def notifications(
        self, *, request_id: str | None = None, to: str | None = None, limit: int, cursor: str | None = None
    ) -> Page:
        with self.store.transaction(write=False) as tx:
            return self.models["notifier"].outbox(tx, request_id=request_id, to=to, limit=limit, cursor=cursor)

    def audit_events(self, *, after: int, limit: int, where: EventFilter, topics: Sequence[str] = ()):
        """A page of the whole log after position ``after`` (``/audit/events``)."""
        return self.audit_log.page(after=after, limit=limit, topics=topics, where=where)

    def trail(self, request_id: str) -> list[dict[str, Any]] | None:
        """A request's events and its assignment's that belong to it, in log order."""
        return self.audit_log.trail(request_id)

    def explanation(self, request_id: str) -> dict[str, Any] | None:
        """Who could decide each stage of a request and why, what happened and what was shown."""
        return Explainer(self.audit_log).explain(request_id)

    def access_at(
        self,
        *,
        at: str,
        access_package_id: str | None = None,
        user_id: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """Who held a package (or what a user held) at the moment ``at``, each period with who
        approved the request that granted it, stage by stage (``/audit/access``)."""
        with self.store.transaction(write=False) as tx:
            return self.models["access_history"].held_at(
                tx, at=at, access_package_id=access_package_id, user_id=user_id, limit=limit, cursor=cursor
            )
