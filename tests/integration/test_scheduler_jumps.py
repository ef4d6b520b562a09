"""Long jumps of the manual clock (``Scheduler.advance``, what ``POST /admin/clock`` runs): every
deadline at its own time and in time order, those the jump's own commands create included, with
work bounded by the deadlines run (spies count the catch-ups and reads; no timing).

Tenant: ``tests/data/timelines.yaml`` (``wiki``: one stage, reminder P7D, timeout P14D, access for
P30D reminded P7D before the end; ``vault``: two stages, each escalating after P3D (to eve, then
fay), timeout P14D; ``badge``: no approval, access for P30D)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from entitlements import scheduler as scheduler_module
from projections.deadlines import ONLY_REMOVE, affected, fixed
from domain.resources import DeliveryFailed, GroupMembership
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant, load_tenant_data
from projections.read_models import ReadModels
from tests.integration.conftest import START

TENANT = Path(__file__).parent.parent / "data" / "timelines.yaml"
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
USERS = [f"user-{n:02d}" for n in range(20)]


@pytest.fixture
def services(open_services):
    services = open_services()
    load_tenant(services.app, TENANT)
    return services


def submit(services, package, requestor, **fields):
    return services.app.submit_request(requestor_id=requestor, access_package_id=package, justification="for the launch", **fields)


def ran(report) -> list[tuple]:
    return [(item.kind, item.stage, item.due_at, item.outcome) for item in report.outcomes]


class Spy:
    """Counts the catch-ups of the scheduler's deadlines projection and its reads of the deadlines."""

    def __init__(self, services, monkeypatch) -> None:
        self.calls: Counter = Counter()
        self._wrap(monkeypatch, services.scheduler._deadlines, "catch_up", "catch-ups")
        self._wrap(monkeypatch, services.read_models, "due_deadlines", "reads")
        self._wrap(monkeypatch, services.read_models, "deadlines_of", "reads")

    def _wrap(self, monkeypatch, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls[label] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    def take(self) -> dict:
        calls, self.calls = dict(self.calls), Counter()
        return calls


# --- in order, at their own times ------------------------------------------------------------------


def test_a_jump_runs_the_deadlines_its_own_deadlines_create_in_order_and_at_their_own_times(services, clock):
    vault = submit(services, "vault", "rita")  # stage 1 escalates at day 3, expires at day 14
    clock.set(START + HOUR)
    wiki = submit(services, "wiki", "cyd")  # reminded at day 7 + 1 h, expires at day 14 + 1 h
    clock.set(START + DAY)
    badge = submit(services, "badge", "dee")  # access ends at day 31
    clock.set(START + 2 * DAY)
    escalate = services.scheduler.commands["request_escalation"]

    def escalate_and_the_alternate_approves(request_id):
        """An escalation whose alternate approves at once: stage 2 starts at day 3, escalating at
        day 6 and expiring at day 17, both between deadlines the jump has already read."""
        receipt = escalate(request_id)
        if services.app.request(request_id).current_stage == 1:
            services.app.decide(request_id=request_id, approver_id="eve", decision="approve")
        return receipt

    services.scheduler.commands["request_escalation"] = escalate_and_the_alternate_approves

    report = services.scheduler.advance(clock, START + 40 * DAY)

    assert ran(report) == [
        ("request_escalation", 1, fixed(START + 3 * DAY), "done"),
        ("request_escalation", 2, fixed(START + 6 * DAY), "done"),  # created on day 3
        ("request_reminder", 1, fixed(START + 7 * DAY + HOUR), "done"),
        ("request_expiry", 1, fixed(START + 14 * DAY + HOUR), "done"),  # vault's stage 1 expiry is gone
        ("request_expiry", 2, fixed(START + 17 * DAY), "done"),  # created on day 3
        ("access_expiry", None, fixed(START + 31 * DAY), "done"),
    ]
    request = services.app.request(vault.id)
    assert [stage["escalated_at"] for stage in request.progress] == [START + 3 * DAY, START + 6 * DAY]
    assert (request.state, request.modified_on) == ("expired", START + 17 * DAY)
    assert services.app.request(wiki.id).modified_on == START + 14 * DAY + HOUR
    assert services.app.request_state(badge.id) == "access_expired"
    assert clock.now() == START + 40 * DAY


def test_deadlines_due_at_one_time_run_expiries_first(services, clock):
    access = submit(services, "wiki", "cyd")
    services.app.decide(request_id=access.id, approver_id="amy", decision="approve")  # ends day 30, reminded day 23
    clock.set(START + 9 * DAY)
    submit(services, "wiki", "rita")  # reminded day 16, expires day 23

    report = services.scheduler.advance(clock, START + 24 * DAY)

    assert ran(report) == [
        ("request_reminder", 1, fixed(START + 16 * DAY), "done"),
        ("request_expiry", 1, fixed(START + 23 * DAY), "done"),
        ("access_expiry_reminder", None, fixed(START + 23 * DAY), "done"),
    ]


# --- the work of a jump ----------------------------------------------------------------------------


def test_the_catch_ups_and_reads_of_a_jump_do_not_grow_with_its_deadlines(services, clock, monkeypatch):
    load_tenant_data(services.app, {"users": [{"id": user, "email": f"{user}@contoso.example"} for user in USERS]})
    spy = Spy(services, monkeypatch)
    counts = []
    for requests in (5, 20):
        start = clock.now()
        for n in range(requests):  # each at a time of its own: a reminder and an expiry each
            clock.set(start + n * MINUTE)
            submit(services, "wiki", USERS[n])
        spy.take()
        report = services.scheduler.advance(clock, start + 20 * DAY)
        assert report.count("done") == len({item.due_at for item in report.outcomes}) == 2 * requests
        counts.append(spy.take())

    assert counts[0] == counts[1]  # 10 or 40 deadlines, at as many times
    assert counts[0]["catch-ups"] <= 3 and counts[0]["reads"] <= 3


def test_deadlines_that_fail_stay_behind_the_cursor_and_are_not_read_again(services, clock, monkeypatch):
    """The old jump read the due deadlines from the start at every due time, passing over the
    failed ones each time: 10 failed reminders made it read about 100 pages of 2."""
    monkeypatch.setattr(scheduler_module, "BATCH", 2)
    load_tenant_data(services.app, {"users": [{"id": user, "email": f"{user}@contoso.example"} for user in USERS]})
    for n, user in enumerate(USERS[:10]):
        clock.set(START + n * MINUTE)
        submit(services, "wiki", user)

    def broken(request_id):
        raise RuntimeError("the mail relay is down")

    services.scheduler.commands["request_reminder"] = broken
    spy = Spy(services, monkeypatch)

    report = services.scheduler.advance(clock, START + 20 * DAY)

    assert Counter(item.outcome for item in report.outcomes) == {"failed": 10, "done": 10}
    assert [item.kind for item in report.outcomes] == ["request_reminder"] * 10 + ["request_expiry"] * 10
    assert spy.take() == {"catch-ups": 1, "reads": 20 // 2 + 1}  # the start; each page once


# --- what the scheduler assumes of the deadlines read model -----------------------------------------


class GroupsBut(GroupMembership):
    """Group membership, except for one group, whose grants fail (a partial delivery)."""

    def __init__(self, broken: str) -> None:
        self.broken = broken

    def grant(self, directory, *, user_id, resource_id, assignment_id, now):
        if resource_id == self.broken:
            raise DeliveryFailed(f"{resource_id} is read-only today")
        return super().grant(directory, user_id=user_id, resource_id=resource_id, assignment_id=assignment_id, now=now)


PAIR = {  # a package of two groups, one of which cannot be granted
    "access_packages": [{"id": "pair", "catalog": "tools", "resources": [{"id": "pair-a", "kind": "group"}, {"id": "pair-b", "kind": "group"}]}],
    "policies": [{"id": "pair-at-once", "access_package": "pair", "requestors": {"scope": "all_members"},
                  "approval": {"required": False}, "expiration": {"after": "P30D"}}],
}


def walk_every_kind_of_event(services, clock):
    """Requests and access through every path that records an event of a request or an
    assignment: reminders, escalations, both stages, denial, expiry, cancellation, revocation,
    delivery later, partial delivery, an extension approved, an extension withdrawn when access
    ends, removal."""
    app = services.app
    reminded = submit(services, "wiki", "rita")
    two_stages = submit(services, "vault", "cyd")
    denied = submit(services, "vault", "dee")
    cancelled = submit(services, "wiki", "dee")
    later = submit(services, "badge", "rita", start=START + 2 * DAY)
    revoked = submit(services, "wiki", "eve")
    partial = submit(services, "pair", "fay")
    assert app.request_state(partial.id) == "partially_delivered"
    app.decide(request_id=revoked.id, approver_id="amy", decision="approve")
    app.revoke_approval(request_id=revoked.id, approver_id="amy", reason="not needed")
    app.cancel_request(request_id=cancelled.id, actor_id="dee")
    clock.set(START + 2 * DAY)
    app.deliver(app.request_and_assignment(later.id)[1].id)
    clock.set(START + 3 * DAY)
    app.escalate(two_stages.id)
    app.escalate(denied.id)
    app.decide(request_id=two_stages.id, approver_id="eve", decision="approve")
    app.decide(request_id=denied.id, approver_id="amy", decision="deny", reason="no")
    clock.set(START + 6 * DAY)
    app.escalate(two_stages.id)
    app.decide(request_id=two_stages.id, approver_id="fay", decision="approve")
    clock.set(START + 7 * DAY)
    app.remind_approvers(reminded.id)
    app.decide(request_id=reminded.id, approver_id="bob", decision="approve")  # ends day 37
    expired = submit(services, "wiki", "fay")
    clock.set(START + 30 * DAY)
    assignment = app.request_and_assignment(reminded.id)[1].id
    app.remind_access_expiry(assignment)  # day 30: an extension may be asked for
    extension = app.request_extension(user_id="rita", assignment_id=assignment)
    app.decide(request_id=extension.id, approver_id="amy", decision="approve")  # ends day 67
    app.expire_request(expired.id)
    clock.set(START + 60 * DAY)
    app.expire_access(app.request_and_assignment(later.id)[1].id)  # the badge ended on day 32
    app.remind_access_expiry(assignment)
    withdrawn = app.request_extension(user_id="rita", assignment_id=assignment)
    clock.set(START + 67 * DAY)
    app.expire_access(assignment)  # the pending extension is withdrawn
    assert app.request_state(withdrawn.id) == "cancelled"
    removed = submit(services, "badge", "cyd")
    app.remove_access(assignment_id=app.request_and_assignment(removed.id)[1].id, admin_id="adm", reason="left")


def test_events_said_to_only_take_deadlines_away_never_add_or_move_one(database_url, clock):
    """The scheduler's jumps rely on :func:`projections.deadlines.affected`: an event changes the
    deadlines of the subjects it names only, and one of ``ONLY_REMOVE`` only takes rows away. The
    log of every path is projected again one event at a time, checking both after each event."""
    services = build_services(Settings(database_url=database_url), clock=clock, resource_kinds={"group": GroupsBut("pair-b")})
    try:
        load_tenant(services.app, TENANT)
        load_tenant_data(services.app, PAIR)
        walk_every_kind_of_event(services, clock)
        projector = ReadModels(services.app, services.store, batch_size=1).deadlines_projector()
        projector.reset()
        walked: Counter = Counter()

        def rows() -> set[tuple]:
            with services.store.transaction(write=False) as tx:
                return set(tx.fetchall("SELECT kind, subject_id, stage, due_at FROM deadlines"))

        while True:
            position = projector.positions()["deadlines"]
            (event,) = projector.log.read(position, stop=2**62, limit=1, topics=projector.topics) or [None]
            if event is None:
                break
            before = rows()
            projector.run_once()
            after = rows()
            subjects, may_add = affected(event)
            assert {row for row in before ^ after if row[1] not in subjects} == set(), event.kind
            if not may_add:
                assert after <= before, f"{event.kind} added or moved deadlines: {after - before}"
            walked[event.kind] += 1
    finally:
        services.close()

    assert ONLY_REMOVE <= set(walked), f"not walked: {ONLY_REMOVE - set(walked)}"
