"""The access history read model (``projections/access_history.py``) answers "who held package X"
and "what did user U hold" at an instant T exactly as replaying the event log up to T says.

Histories are random (hypothesis) and made through the real application with a manual clock, on
both backends: requests approved (some to start later), denied, cancelled; extensions; approvals
revoked; administrators' direct assignments and removals; time running on (the scheduler's tick
after a move of the clock, or its jump that stops at each deadline: delayed starts, expiries); the
read models caught up now and then in the middle of a history as well as at its end. Each example
runs on a database of its own (a new SQLite file; on PostgreSQL the test database's tables dropped
and made again).

The replay is written here from the raw log (``ReadModels.audit_log``), independently of the read
model: of the events recorded at or before T, an assignment's latest ``Delivering`` grants its
user the package from its ``start`` unless an ``AccessExpired`` or ``Removed`` follows it. It is
asked at every event's time and the microsecond before, every delivery's start and the microsecond
before, and random instants (before the first event and after the last too), in UTC or another
offset, following every page of the answer (limits of 1, 2 and 200).

Each test also runs, first, a history that once failed: access ended after the read model had seen
it begin and was granted again before the read model caught up (the end of the first period was
lost, and both periods were held ever after).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import hypothesis
import psycopg
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from domain.clock import ManualClock
from domain.errors import DomainError
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant_data

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
USERS = ["ann", "bob", "cyd"]
PACKAGES = ["alpha", "beta"]
APPROVER, ADMIN = "judge", "root"
MICROSECOND = timedelta(microseconds=1)
ENDS = ("Assignment.AccessExpired", "Assignment.Removed")

TENANT = {
    "users": [
        {"id": user, "display_name": user.title(), "email": f"{user}@example.test", "roles": ["admin"] if user == ADMIN else []}
        for user in [*USERS, APPROVER, ADMIN]
    ],
    "catalogs": [{"id": "it", "name": "IT"}],
    "access_packages": [
        {"id": package, "catalog": "it", "name": package.title(), "resources": [{"id": f"{package}-group", "kind": "group"}]}
        for package in PACKAGES
    ],
    "policies": [
        {
            "id": f"{package}-policy",
            "access_package": package,
            "approval": {"required": True, "stages": [{"approvers": [{"user": APPROVER}], "timeout": "P14D"}]},
            "expiration": {"after": "P3D"},
            "extension": {"allowed": True, "approval_required": False},
        }
        for package in PACKAGES
    ],
}

# --- histories ---------------------------------------------------------------------------------

users = st.sampled_from(USERS)
packages = st.sampled_from(PACKAGES)
# a later start: none (half the time), or some hours (up to four days) ahead, at times to the microsecond
later_start = st.one_of(
    st.none(),
    st.none(),
    st.builds(timedelta, hours=st.integers(1, 96)),
    st.builds(timedelta, hours=st.integers(0, 96), microseconds=st.integers(1, 10**6 - 1)),
)
# how long time runs on: not at all, a moment, hours, or days (often enough to reach the P3D expiry)
days = st.builds(timedelta, days=st.integers(1, 5), seconds=st.integers(0, 86399))
delay = st.one_of(
    st.just(timedelta(0)),
    st.builds(timedelta, microseconds=st.integers(1, 10**6)),
    st.builds(timedelta, hours=st.integers(1, 48)),
    days,
    days,
)
GRANT = st.tuples(st.just("grant"), users, packages, later_start)  # submit and approve at once
WAIT = st.one_of(
    st.tuples(st.just("tick"), delay),  # the clock moves, then the scheduler runs what is due
    st.tuples(st.just("jump"), delay),  # the scheduler moves the clock, stopping at each deadline
)
which = st.integers(0, 5)  # which open request, access held or pair (see play)
CHANGE = st.one_of(
    st.tuples(st.just("extend"), which),
    st.tuples(st.just("remove"), which),  # by an administrator
    st.tuples(st.just("revoke"), which, st.integers(0, 3)),  # the latest request of a pair, or one before
)
OTHER = st.one_of(
    st.tuples(st.just("submit"), users, packages, later_start),
    st.tuples(st.just("approve"), which),
    st.tuples(st.just("deny"), which),
    st.tuples(st.just("cancel"), which),
    st.tuples(st.just("assign"), users, packages, later_start),  # an administrator's direct assignment
    st.tuples(st.just("project"),),  # the read models catch up in the middle of the history
)
STEP = st.one_of(GRANT, WAIT, CHANGE, OTHER)
HISTORIES = st.lists(STEP, min_size=8, max_size=40)
# instants between (and around) the first and the last event, as fractions of that span
FRACTIONS = st.lists(st.floats(min_value=-0.25, max_value=1.25), max_size=8)
LIMITS = st.sampled_from([1, 2, 200])


def play(services, clock: ManualClock, steps) -> None:
    """Runs ``steps`` through the application; a command the domain refuses is simply refused.

    A step about something that exists (an open request, access held, a request made) names it by
    a number: the n-th (modulo how many there are) in a fixed order, so that most steps do
    something."""
    app = services.app
    requested: dict[tuple[str, str], list[str]] = {}  # (user, package) -> its requests, oldest first
    pairs = [(user, package) for user in USERS for package in PACKAGES]

    def nth(candidates: list, n: int):
        return candidates[n % len(candidates)] if candidates else None

    def assignments():
        return [found for found in (app.find_assignment(*pair) for pair in pairs) if found is not None]

    def later(start: timedelta | None) -> datetime | None:
        return clock.now() + start if start is not None else None

    for kind, *args in steps:
        try:
            if kind in ("grant", "submit"):
                user, package, start = args
                receipt = app.submit_request(requestor_id=user, access_package_id=package, start=later(start))
                requested.setdefault((user, package), []).append(receipt.id)
                if kind == "grant":
                    app.decide(request_id=receipt.id, approver_id=APPROVER, decision="approve", reason="needed")
            elif kind == "assign":
                user, package, start = args
                receipt = app.assign_directly(admin_id=ADMIN, target_user_id=user, access_package_id=package, start=later(start))
                requested.setdefault((user, package), []).append(receipt.id)
            elif kind in ("approve", "deny", "cancel"):
                found = nth([found for found in assignments() if found.open_request_id is not None], args[0])
                if found is None:
                    continue
                if kind == "cancel":
                    app.cancel_request(request_id=found.open_request_id, actor_id=found.user_id, reason="not needed")
                else:
                    app.decide(request_id=found.open_request_id, approver_id=APPROVER, decision=kind, reason="decided")
            elif kind in ("extend", "remove"):
                found = nth([found for found in assignments() if found.is_active], args[0])
                if found is None:
                    continue
                if kind == "extend":
                    receipt = app.request_extension(user_id=found.user_id, assignment_id=found.id, justification="longer")
                    requested[(found.user_id, found.access_package_id)].append(receipt.id)
                else:
                    app.remove_access(assignment_id=found.id, admin_id=ADMIN, reason="left the team")
            elif kind == "revoke":  # the latest request of a pair, or one before it
                pair = nth(sorted(requested), args[0])
                if pair is not None:
                    ids = requested[pair]
                    app.revoke_approval(request_id=ids[-1 - args[1] % len(ids)], approver_id=APPROVER, reason="a mistake")
            elif kind == "tick":
                clock.advance(args[0])
                services.scheduler.tick()
            elif kind == "jump":
                services.scheduler.advance(clock, clock.now() + args[0])
            elif kind == "project":
                services.read_models.catch_up()
        except DomainError:
            pass


_numbers = itertools.count()


def fresh_database(database_url: str, tmp_path) -> str:
    """An empty database for one example: a new SQLite file beside the test's, or the test's
    PostgreSQL database with its tables dropped."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/example-{next(_numbers)}.db"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return database_url


def history(database_url: str, tmp_path, steps) -> tuple[list[dict], "Asker"]:
    """Plays ``steps`` on a fresh database; answers the whole log and a way to ask the read model
    (to be closed)."""
    clock = ManualClock(START)
    services = build_services(Settings(database_url=fresh_database(database_url, tmp_path)), clock=clock)
    try:
        load_tenant_data(services.app, TENANT)
        play(services, clock, steps)
        services.read_models.catch_up()
        events, _, more = services.read_models.audit_log.page(after=0, limit=10**9)
        assert not more
    except BaseException:
        services.close()
        raise
    return events, Asker(services)


class Asker:
    """The question, asked of the read model, every page of it."""

    def __init__(self, services) -> None:
        self.services = services

    def held(self, at: str, *, limit: int, **which) -> set[tuple[str, str, str]]:
        found, cursor, pages = [], None, 0
        while True:
            page = self.services.read_models.access_at(at=at, limit=limit, cursor=cursor, **which)
            found += [(item["user_id"], item["access_package_id"], item["request_id"]) for item in page.items]
            pages += 1
            assert pages <= 50, "paging does not end"
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(found) == len(set(found)), f"a period is listed twice at {at}: {found}"
        return set(found)

    def close(self) -> None:
        self.services.close()


# --- the replay --------------------------------------------------------------------------------


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def assignment_events(events: list[dict]) -> list[dict]:
    return [
        {**event, "at": when(event["timestamp"])}
        for event in sorted(events, key=lambda e: e["position"])
        if event["type"].startswith("Assignment.")
    ]


def replay(events: list[dict], at: datetime) -> set[tuple[str, str, str]]:
    """Who held what at ``at``: (user, package, request) replayed from the events recorded up to it."""
    owners: dict[str, tuple[str, str]] = {}
    granted: dict[str, tuple[str, datetime]] = {}  # assignment -> its request and start, while not ended
    for event in events:
        if event["at"] > at:
            continue
        aggregate, kind, data = event["originator_id"], event["type"], event["data"]
        if kind == "Assignment.Created":
            owners[aggregate] = (data["user_id"], data["access_package_id"])
        elif kind == "Assignment.Delivering":
            granted[aggregate] = (data["request_id"], when(data["start"]))
        elif kind in ENDS:
            granted.pop(aggregate, None)
    return {(*owners[aggregate], request) for aggregate, (request, start) in granted.items() if start <= at}


def instants(events: list[dict], fractions: list[float]) -> list[datetime]:
    """Every event's time and the microsecond before it, every delivery's start and the
    microsecond before it, and instants around and between the first and last events."""
    moments = {event["at"] for event in events}
    moments |= {when(event["data"]["start"]) for event in events if event["type"] == "Assignment.Delivering"}
    moments |= {moment - MICROSECOND for moment in moments}
    first, last = min(moments), max(moments)
    moments |= {first - timedelta(days=1), last + timedelta(days=1), last + timedelta(days=400)}
    moments |= {first + (last - first) * fraction for fraction in fractions}
    return sorted(moments)


def as_text(moment: datetime, n: int) -> str:
    """The instant as ISO 8601 text, in UTC or in another offset (the same instant)."""
    if n % 3 == 1:
        return moment.isoformat().replace("+00:00", "Z")
    if n % 3 == 2:
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    return moment.isoformat()


def describe(events: list[dict]) -> str:
    lines = []
    for event in events:
        data = event["data"]
        user = data.get("user_id", "")
        extra = {k: data[k] for k in ("request_id", "start", "end") if data.get(k) is not None}
        lines.append(f"  {event['position']:>4} {event['at'].isoformat()} {event['originator_id'][:8]} {event['type']} {user} {extra}")
    return "\n".join(lines)


def tell(events: list[dict]) -> None:
    """What the history holds, for ``--hypothesis-show-statistics``."""
    kinds = [event["type"] for event in events]
    deliveries = [event for event in events if event["type"] == "Assignment.Delivering"]
    for kind in ("Assignment.Extended", *ENDS):
        if kind in kinds:
            hypothesis.event(f"has {kind}")
    if any(when(event["data"]["start"]) > event["at"] for event in deliveries):
        hypothesis.event("has a delivery that starts later")
    if len(deliveries) > len({event["originator_id"] for event in deliveries}):
        hypothesis.event("has access granted again after it ended")


HYPOTHESIS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Access that ended after the read model had seen it begin, and was granted again before the read
# model caught up: both periods in one batch of the projection.
ENDED_AND_GRANTED_AGAIN = [
    ("grant", "ann", "alpha", None),
    ("project",),
    ("remove", 0),
    ("tick", timedelta(hours=1)),
    ("grant", "ann", "alpha", None),
]


def check(database_url, tmp_path, steps, fractions, limit, question: str, subjects: list[str]) -> None:
    log, asker = history(database_url, tmp_path, steps)
    try:
        events = assignment_events(log)
        note("assignment events:\n" + describe(events))
        tell(events)
        if not events:
            return
        for n, moment in enumerate(instants(events, fractions)):
            expected = replay(events, moment)
            text = as_text(moment, n)
            for subject in subjects:
                wanted = {held for held in expected if held[0 if question == "user_id" else 1] == subject}
                answered = asker.held(text, limit=limit, **{question: subject})
                assert answered == wanted, (
                    f"{question}={subject} at {text}: the read model answers {sorted(answered)},"
                    f" replaying the log says {sorted(wanted)}"
                )
    finally:
        asker.close()


# --- the properties ----------------------------------------------------------------------------


@HYPOTHESIS
@given(steps=HISTORIES, fractions=FRACTIONS, limit=LIMITS)
@example(steps=ENDED_AND_GRANTED_AGAIN, fractions=[], limit=200)
def test_who_held_a_package_at_any_instant_is_what_replaying_the_log_up_to_it_says(
    database_url, tmp_path, steps, fractions, limit
):
    check(database_url, tmp_path, steps, fractions, limit, "access_package_id", PACKAGES)


@HYPOTHESIS
@given(steps=HISTORIES, fractions=FRACTIONS, limit=LIMITS)
@example(steps=ENDED_AND_GRANTED_AGAIN, fractions=[], limit=200)
def test_what_a_user_held_at_any_instant_is_what_replaying_the_log_up_to_it_says(
    database_url, tmp_path, steps, fractions, limit
):
    check(database_url, tmp_path, steps, fractions, limit, "user_id", USERS)
