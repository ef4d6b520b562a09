"""The scheduler over a real database (SQLite and PostgreSQL): what a tick runs, that nothing is
recorded twice however many ticks or schedulers run, and the manual clock kept in the database.

Tenant: ``tests/data/timelines.yaml`` (``wiki``: one stage, reminder P7D, timeout P14D, access for
P30D with an extension reminder P7D before the end; ``badge``: no approval, access for P30D)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from domain import errors
from entitlements import processes
from entitlements import scheduler as scheduler_module
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.stored_clock import StoredClock
from entitlements.tenant import load_tenant
from tests.events import event_counts
from tests.integration.conftest import START

TENANT = Path(__file__).parent.parent / "data" / "timelines.yaml"
DAY = timedelta(days=1)


@pytest.fixture
def services(open_services):
    services = open_services()
    load_tenant(services.app, TENANT)
    return services


def submit(services, package="wiki", requestor="rita", **fields):
    return services.app.submit_request(
        requestor_id=requestor, access_package_id=package, justification="for the launch", **fields
    )


def ran(report) -> list[tuple[str, str]]:
    return [(item.kind, item.outcome) for item in report.outcomes]


def test_a_tick_before_anything_is_due_runs_nothing(services, clock):
    submit(services)
    clock.set(START + 7 * DAY - timedelta(seconds=1))

    report = services.scheduler.tick()

    assert report.outcomes == [] and report.position is None
    assert report.summary() == "ran 0 deadline(s); skipped 0, failed 0"


def test_a_tick_runs_what_is_due_and_a_second_tick_records_nothing(services, clock):
    requests = [submit(services, package) for package in ("wiki", "badge")]
    clock.set(START + 7 * DAY)

    first = services.scheduler.tick()
    counts = event_counts(services.app)
    second = services.scheduler.tick()

    assert ran(first) == [("request_reminder", "done")]
    assert first.outcomes[0].subject_id == requests[0].id and first.outcomes[0].state == "pending_approval"
    assert first.position == services.read_models.head()
    assert counts[(services.app.request(requests[0].id).id, "ApproverReminded")] == 1
    assert second.outcomes == [] and event_counts(services.app) == counts


def test_a_tick_long_after_the_deadlines_expires_the_request_without_reminding_it(services, clock):
    request = submit(services)
    clock.set(START + 20 * DAY)

    report = services.scheduler.tick()

    assert ran(report) == [("request_expiry", "done"), ("request_reminder", "skipped")]
    assert services.app.request_state(request.id) == "expired"
    assert event_counts(services.app)[(services.app.request(request.id).id, "ApproverReminded")] == 0


def test_access_asked_to_start_later_is_delivered_when_its_start_falls_due(services, clock):
    receipt = submit(services, "badge", start=START + 2 * DAY)
    assert receipt.state == "delivering"

    clock.set(START + 2 * DAY)
    report = services.scheduler.tick()

    assert ran(report) == [("access_start", "done")]
    assert report.outcomes[0].state == "delivered"
    assert services.app.request_state(receipt.id) == "delivered"


def test_the_expiry_reminder_goes_only_to_access_that_may_be_extended(services, clock):
    for package in ("wiki", "badge"):
        receipt = submit(services, package)
        if package == "wiki":
            services.app.decide(request_id=receipt.id, approver_id="amy", decision="approve")
    clock.set(START + 23 * DAY)  # 7 days before both end

    report = services.scheduler.tick()

    assert ran(report) == [("access_expiry_reminder", "done")]
    assert report.outcomes[0].subject_id == str(services.app.find_assignment("rita", "wiki").id)


def test_a_failing_deadline_is_reported_and_the_others_still_run(services, clock, caplog):
    broken, fine = submit(services), submit(services, "badge")
    services.app.decide(request_id=broken.id, approver_id="amy", decision="approve")
    clock.set(START + 30 * DAY)
    scheduler = services.scheduler
    expire_access = scheduler.commands["access_expiry"]
    broken_assignment = services.app.request_and_assignment(broken.id)[1].id

    def flaky(assignment_id):
        if assignment_id == str(broken_assignment):
            raise RuntimeError("the directory is down")
        return expire_access(assignment_id)

    scheduler.commands["access_expiry"] = flaky
    report = scheduler.tick()

    failed = [(item.kind, item.detail) for item in report.failed]
    assert failed == [("access_expiry", "RuntimeError: the directory is down")]
    (logged,) = [record for record in caplog.records if record.name == "entitlements.scheduler"]
    assert "failed: RuntimeError: the directory is down" in logged.getMessage()
    assert not logged.exc_info  # a line, not a traceback (unless debugging)
    assert services.app.request_state(fine.id) == "access_expired"
    assert services.app.request_state(broken.id) == "delivered"
    assert "failed 1" in report.summary()


def test_deadlines_that_stay_behind_never_hold_up_the_later_ones(services, clock, monkeypatch):
    monkeypatch.setattr(scheduler_module, "BATCH", 2)  # pages of 2: the stuck ones fill the first page
    monkeypatch.setattr(scheduler_module, "CHUNK", 2)
    requests = [submit(services, "wiki", user) for user in ("rita", "cyd", "dee")]
    stuck = {requests[0].id, requests[1].id}
    remind = services.scheduler.commands["request_reminder"]

    def flaky(request_id):
        if request_id in stuck:
            raise errors.ConcurrentModification("others kept changing the same records; try again")
        return remind(request_id)

    services.scheduler.commands["request_reminder"] = flaky
    clock.set(START + 7 * DAY)
    first = services.scheduler.tick()
    second = services.scheduler.tick()

    stuck_outcomes = {(request_id, "failed") for request_id in stuck}
    assert {(item.subject_id, item.outcome) for item in first.outcomes} == stuck_outcomes | {(requests[2].id, "done")}
    assert {(item.subject_id, item.outcome) for item in second.outcomes} == stuck_outcomes  # tried again
    assert event_counts(services.app)[(services.app.request(requests[2].id).id, "ApproverReminded")] == 1


def test_two_schedulers_ticking_at_once_record_each_event_once(open_services, services, clock):
    requestors = ("rita", "cyd", "dee")
    requests = [submit(services, package, user) for package in ("wiki", "badge") for user in requestors]
    others = [open_services() for _ in range(2)]
    clock.set(START + 7 * DAY)
    reports = []

    def tick(scheduler_services):
        reports.append(scheduler_services.scheduler.tick())

    threads = [threading.Thread(target=tick, args=(other,)) for other in others for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = Counter(item.subject_id for report in reports for item in report.outcomes if item.outcome == "done")
    assert done == {request.id: 1 for request in requests[:3]}
    assert not [item for report in reports for item in report.failed]
    counts = event_counts(services.app)
    assert [counts[(services.app.request(r.id).id, "ApproverReminded")] for r in requests] == [1, 1, 1, 0, 0, 0]


def test_the_scheduler_thread_runs_deadlines_as_the_clock_reaches_them(services, clock):
    request = submit(services)
    with processes.scheduling(services, interval=0.02):
        clock.set(START + 14 * DAY)
        deadline = time.monotonic() + 10
        while services.app.request_state(request.id) != "expired" and time.monotonic() < deadline:
            time.sleep(0.02)

    assert services.app.request_state(request.id) == "expired"


def test_advancing_the_clock_stops_at_each_deadline_on_the_way(services, clock):
    request = submit(services)

    report = services.scheduler.advance(clock, START + 20 * DAY)

    assert ran(report) == [("request_reminder", "done"), ("request_expiry", "done")]
    assert clock.now() == START + 20 * DAY
    expired = services.app.request(request.id)
    assert (expired.state, expired.progress[0]["reminded_at"], expired.modified_on) == (
        "expired", START + 7 * DAY, START + 14 * DAY
    )


def test_advancing_the_clock_back_is_refused_and_leaves_it_where_it_was(services, clock):
    clock.set(START + DAY)

    with pytest.raises(errors.ClockCannotGoBack) as refused:
        services.scheduler.advance(clock, START)

    assert refused.value.details == {"now": (START + DAY).isoformat(), "wanted": START.isoformat()}
    assert clock.now() == START + DAY


# --- the manual clock kept in the database --------------------------------------------------------


def test_the_stored_clock_is_one_time_for_every_process_and_survives_a_restart(database_url):
    settings = Settings(database_url=database_url, clock="manual")
    first, second = build_services(settings), build_services(settings)
    try:
        assert isinstance(first.app.clock, StoredClock)
        first.app.clock.set(first.app.clock.now() + 14 * DAY)
        moved = first.app.clock.now()
        assert second.app.clock.now() == moved
    finally:
        first.close()
        second.close()
    restarted = build_services(settings)
    try:
        assert restarted.app.clock.now() == moved
    finally:
        restarted.close()


def test_the_stored_clock_never_goes_back(database_url):
    services = build_services(Settings(database_url=database_url, clock="manual"))
    try:
        clock = services.app.clock
        now = clock.now()
        clock.set(now)  # standing still is fine

        with pytest.raises(errors.ClockCannotGoBack):
            clock.set(now - timedelta(microseconds=1))

        assert clock.now() == now
    finally:
        services.close()
