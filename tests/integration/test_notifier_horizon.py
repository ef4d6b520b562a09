"""The notifier's horizon (``ENTITLEMENTS_NOTIFIER_HORIZON``): a first projection over an existing
history records the emails older than the horizon as ``skipped``, with the reason, and never renders
nor sends them; what is within the horizon, and everything that happens once the notifier runs, is
mailed (through a real SMTP server on loopback). Rebuilds keep what the outbox holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from entitlements.bootstrap import build_application, build_services
from entitlements.cli import main
from entitlements.settings import ConfigurationError, Settings
from entitlements.tenant import load_tenant
from notifier.projection import HORIZON
from notifier.sender import Sender, SmtpServer
from tests.integration.conftest import START
from tests.integration.test_notifier import outbox

TENANT = Path(__file__).parent.parent / "data" / "notifications.yaml"
DAY = timedelta(days=1)


@pytest.fixture
def open_notifier(database_url, clock, mailbox):
    """Opens (another) set of services, as a process of the deployment starting now would."""
    opened = []

    def open_(**settings):
        settings = {"smtp_url": mailbox.url, "base_url": "https://access.contoso.example", **settings}
        opened.append(build_services(Settings(database_url=database_url, **settings), clock=clock))
        return opened[-1]

    yield open_
    for services in opened:
        services.close()


@pytest.fixture
def history(database_url, clock):
    """The log before the notifier ever ran: only the application writes to it."""
    app = build_application(Settings(database_url=database_url), clock=clock)
    load_tenant(app, TENANT)
    yield app
    app.close()


def submit(app, package, requestor="rita"):
    return app.submit_request(requestor_id=requestor, access_package_id=package, justification="for the launch")




def summary(services) -> list[tuple]:
    return [(email["number"], email["recipient_id"], email["status"]) for email in outbox(services)]


def send(services):
    return Sender(services.store, SmtpServer.from_url(services.settings.smtp_url), services.app.clock,
                  mail_from=services.settings.mail_from).send_due()


def received(mailbox) -> list[tuple[int, str]]:
    return [(int(message["X-Entitlements-Email"]), to.split("@")[0]) for (to,), message in mailbox.messages]


def old_and_recent(app, clock):
    """Rita's wiki request approved on day 0 (#2 x2, #7 x2, #18), then Mona's vault request on day 10
    (#2 x2)."""
    request = submit(app, "wiki")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    clock.advance(10 * DAY)
    return submit(app, "vault", requestor="mona")


OLD = [(2, "amy"), (2, "bob"), (7, "amy"), (7, "bob"), (18, "rita")]
RECENT = [(2, "amy"), (2, "bob")]


# --- a first projection over an old history -----------------------------------------------------


def test_a_first_projection_skips_the_emails_older_than_the_horizon_and_sends_only_the_rest(
    history, clock, open_notifier, mailbox
):
    recent = old_and_recent(history, clock)
    services = open_notifier()  # day 10: the notifier starts; its horizon reaches back to day 9
    emails = outbox(services)
    assert [(e["number"], e["recipient_id"], e["status"]) for e in emails] == [
        *((number, who, "skipped") for number, who in OLD),
        *((number, who, "pending") for number, who in RECENT),
    ]
    reason = "older than the notifier horizon (PT24H before 2026-03-12T09:00:00Z)"
    for email in emails[:5]:
        assert (email["last_error"], email["attempts"], email["sent_at"]) == (reason, 0, None)
        assert email["to"] == f"{email['recipient_id']}@contoso.example"
    assert emails[0]["subject"] == "Action required: Approve or deny request by March 16, 2026"
    assert emails[4]["subject"] == "You now have access to Team wiki"
    with services.store.transaction(write=False) as tx:  # never rendered
        bodies = tx.fetchall("SELECT status, text_body, html_body FROM outbox ORDER BY position, seq")
    assert [body[1:] for body in bodies if body[0] == "skipped"] == [("", "")] * 5
    assert all(text and html for status, text, html in bodies if status == "pending")
    assert [e["request_id"] for e in emails[5:]] == [str(recent.id)] * 2

    report = send(services)
    assert (report.sent, report.failed, report.retried) == (2, 0, 0)
    assert received(mailbox) == RECENT  # nothing older than the horizon is ever sent
    clock.advance(30 * DAY)  # a skipped email never falls due
    assert send(services).handled == 0
    assert summary(services) == [*((n, w, "skipped") for n, w in OLD), *((n, w, "sent") for n, w in RECENT)]


def test_an_email_exactly_at_the_cutoff_is_sent_and_one_a_second_before_is_skipped(history, clock, open_notifier):
    submit(history, "wiki")  # a second before the cutoff
    clock.advance(timedelta(seconds=1))
    submit(history, "vault", requestor="mona")  # exactly the cutoff
    clock.advance(DAY)  # the notifier starts a day after the second request
    services = open_notifier()
    assert summary(services) == [(2, "amy", "skipped"), (2, "bob", "skipped"), (2, "amy", "pending"), (2, "bob", "pending")]


@pytest.mark.parametrize("horizon, skipped", [("PT1S", 5), ("P9DT23H59M59S", 5), ("P10D", 0), ("P30D", 0)])
def test_the_horizon_is_a_setting(history, clock, open_notifier, horizon, skipped):
    old_and_recent(history, clock)  # emails on day 0 and on day 10, when the notifier starts
    services = open_notifier(notifier_horizon=horizon)
    statuses = [status for _, _, status in summary(services)]
    assert (statuses.count("skipped"), statuses.count("pending")) == (skipped, 7 - skipped)


def test_a_first_projection_stopped_half_way_keeps_the_horizon_it_began_with(history, clock, open_notifier, mailbox):
    old_and_recent(history, clock)
    first = open_notifier()
    first.read_models.projector.batch_size = 3
    while not first.read_models.notifications(limit=10).items:
        first.read_models.projector.run_once()
    assert len(first.read_models.notifications(limit=10).items) < 7  # stopped half-way
    clock.advance(30 * DAY)  # the deployment starts again a month later, on day 40
    again = open_notifier()
    assert summary(again) == [*((n, w, "skipped") for n, w in OLD), *((n, w, "pending") for n, w in RECENT)]
    assert send(again).sent == 2 and received(mailbox) == RECENT


# --- once the notifier runs, nothing is ever skipped ------------------------------------------------


def test_events_after_the_notifier_started_are_mailed_however_late_it_catches_up(database_url, clock, open_notifier):
    services = open_notifier()  # the deployment starts: an empty log, the notifier's horizon begins
    load_tenant(services.app, TENANT)
    request = submit(services.app, "wiki")  # reminded on day 7, expires on day 14
    services.scheduler.advance(clock, clock.now() + 40 * DAY)
    assert services.app.request_state(request.id) == "expired"
    # the notifier had not caught up once: its first batch is 40 days after these events
    assert summary(services) == [
        (2, "amy", "pending"), (2, "bob", "pending"),
        (3, "amy", "pending"), (3, "bob", "pending"),
        (6, "amy", "pending"), (6, "bob", "pending"), (10, "rita", "pending"),
    ]  # fmt: skip


def test_a_jump_of_the_manual_clock_of_400_days_skips_none_of_the_emails_it_causes(database_url, mailbox):
    # ENTITLEMENTS_CLOCK=manual: the application's clock is the deployment's, kept in the database
    settings = Settings(database_url=database_url, clock="manual", smtp_url=mailbox.url)
    services = build_services(settings)
    try:
        clock = services.app.clock
        load_tenant(services.app, TENANT)
        waiting = submit(services.app, "wiki")  # will be reminded on day 7 and expire on day 14
        granted = submit(services.app, "vault-escalating", requestor="mona")
        services.app.decide(request_id=granted.id, approver_id="amy", decision="approve")
        outbox(services)
        report = services.scheduler.advance(clock, clock.now() + 400 * DAY)  # what POST /admin/clock does
        assert services.app.request_state(waiting.id) == "expired" and report.outcomes
        emails = outbox(services)
        assert emails and {email["status"] for email in emails} == {"pending"}
        # the jump's emails carry the times of their deadlines, up to 400 days before the clock's
        assert {email["number"] for email in emails} >= {3, 6, 10, 15, 17}
        assert send(services).sent == len(emails) == len(mailbox.messages)
        # a rebuild now, 400 days on, skips none of them either: they are in the outbox
        services.read_models.rebuild(["notifier"])
        assert {email["status"] for email in outbox(services)} == {"sent"}
    finally:
        services.close()


def test_the_horizon_is_measured_on_the_applications_clock_not_the_wall_clock(database_url, clock):
    # a history made with a manual clock moved 400 days on (past today's wall-clock time): only
    # what is older than a day before the application's time is skipped
    app = build_application(Settings(database_url=database_url), clock=clock)
    load_tenant(app, TENANT)
    clock.advance(400 * DAY)
    submit(app, "wiki")
    clock.advance(2 * DAY)
    submit(app, "vault", requestor="mona")
    app.close()
    services = build_services(Settings(database_url=database_url), clock=clock)
    try:
        assert summary(services) == [(2, "amy", "skipped"), (2, "bob", "skipped"), (2, "amy", "pending"), (2, "bob", "pending")]
    finally:
        services.close()


def test_events_recorded_after_the_notifier_started_are_mailed_even_when_stamped_before_its_cutoff(
    database_url, clock, open_notifier
):
    # the notifier started while a manual clock was 400 days ahead; then the deployment went back
    # to a clock 400 days behind it (the system clock): what happens from then on is still mailed
    clock.advance(400 * DAY)
    services = open_notifier()
    load_tenant(services.app, TENANT)
    outbox(services)
    behind = build_application(Settings(database_url=database_url), clock=type(clock)(START))
    try:
        submit(behind, "wiki")
    finally:
        behind.close()
    assert summary(services) == [(2, "amy", "pending"), (2, "bob", "pending")]


# --- rebuilds ---------------------------------------------------------------------------------------


def test_a_rebuild_neither_sends_again_nor_skips_what_the_outbox_holds(history, clock, open_notifier, mailbox):
    old_and_recent(history, clock)
    services = open_notifier()
    outbox(services)
    send(services)
    before = outbox(services)
    clock.advance(5 * DAY)  # the rebuild's own horizon would skip every one of them
    for names, horizon in ((["notifier"], "PT24H"), (None, "PT24H"), (["notifier"], "P30D")):
        rebuilt = open_notifier(notifier_horizon=horizon)
        rebuilt.read_models.rebuild(names)
        assert outbox(rebuilt) == before  # skipped ones stay skipped, sent ones sent
        assert send(rebuilt).handled == 0
    assert received(mailbox) == RECENT


def test_a_rebuild_that_meets_another_email_in_the_place_of_a_skipped_one_leaves_it_and_writes_the_rest(
    history, clock, open_notifier
):
    old_and_recent(history, clock)
    services = open_notifier()
    before = outbox(services)
    with services.store.transaction() as tx:  # another writer's email in the place of the first one
        tx.execute("DELETE FROM outbox WHERE status = 'skipped' AND NOT (position = ? AND seq = 0)", (min_position(tx),))
        tx.execute("UPDATE outbox SET id = 'written-by-another' WHERE status = 'skipped'")
    services.read_models.rebuild(["notifier"])  # on PostgreSQL its COPY meets that place, and it inserts instead
    after = outbox(services)
    assert after[0]["id"] == "written-by-another"
    assert [{**e, "id": None} for e in after] == [{**e, "id": None} for e in before]


def min_position(tx) -> int:
    return tx.fetchone("SELECT MIN(position) FROM outbox")[0]


def test_a_lost_outbox_is_written_again_by_a_rebuild_that_mails_only_what_is_within_its_horizon(
    database_url, clock, open_notifier, mailbox
):
    services = open_notifier()
    load_tenant(services.app, TENANT)
    submit(services.app, "wiki")
    outbox(services)
    assert send(services).sent == 2
    clock.advance(10 * DAY)
    submit(services.app, "vault", requestor="mona")
    outbox(services)
    with services.store.transaction() as tx:
        tx.execute("DELETE FROM outbox")  # lost, along with what the sender did
    services.read_models.rebuild(["notifier"])
    assert summary(services) == [(2, "amy", "skipped"), (2, "bob", "skipped"), (2, "amy", "pending"), (2, "bob", "pending")]
    assert outbox(services)[0]["last_error"] == "older than the notifier horizon (PT24H before 2026-03-12T09:00:00Z)"
    assert send(services).sent == 2 and len(mailbox.messages) == 4  # day 0's emails were not sent again
    # the notifier goes on after the rebuild: its horizon is behind it
    clock.advance(3 * DAY)
    submit(services.app, "wiki-escalating", requestor="mona")
    assert summary(services)[-2:] == [(4, "amy", "pending"), (4, "bob", "pending")]


def test_the_horizon_is_recorded_beside_the_notifiers_rows_and_not_compared_between_rebuilds(
    history, clock, open_notifier
):
    old_and_recent(history, clock)
    services = open_notifier()
    outbox(services)
    with services.store.transaction(write=False) as tx:
        assert tx.fetchall(f"SELECT horizon, started_at, cutoff FROM {HORIZON}") == [
            ("PT24H", "2026-03-12T09:00:00.000000Z", "2026-03-11T09:00:00.000000Z")
        ]
    live = services.read_models.dump("notifier")
    clock.advance(DAY)
    services.read_models.rebuild(["notifier"])
    assert services.read_models.dump("notifier") == live
    with services.store.transaction(write=False) as tx:
        assert tx.fetchall(f"SELECT started_at FROM {HORIZON}") == [("2026-03-13T09:00:00.000000Z",)]


# --- the setting -----------------------------------------------------------------------------------


def test_the_horizon_defaults_to_a_day_and_is_read_from_the_environment():
    assert Settings.from_env({}, env_file=None).notifier_horizon == "PT24H"
    settings = Settings.from_env({"ENTITLEMENTS_NOTIFIER_HORIZON": "P7D"}, env_file=None)
    assert settings.notifier_horizon_duration == 7 * DAY


@pytest.mark.parametrize(
    "value, why",
    [
        ("P1Y", "'P1Y' uses years or months; state it in weeks, days or hours (e.g. P365D)"),
        ("24 hours", "'24 hours' is not an ISO 8601 duration such as P14D or PT12H"),
        ("PT0S", "'PT0S' is shorter than a second"),
        ("P36501D", "'P36501D' is longer than 100 years (P36500D)"),
    ],
)
def test_a_horizon_that_is_not_a_duration_is_refused_saying_why(value, why):
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"ENTITLEMENTS_NOTIFIER_HORIZON": value}, env_file=None)
    assert str(refused.value) == (
        "ENTITLEMENTS_NOTIFIER_HORIZON must be an ISO 8601 duration without years or months, from one second"
        f" to 100 years, such as PT24H or P7D: {why}"
    )


def test_the_command_line_refuses_a_bad_horizon_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENTITLEMENTS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("ENTITLEMENTS_NOTIFIER_HORIZON", "1d")
    assert main(["rebuild", "notifier"]) == 1
    err = capsys.readouterr().err
    assert "ENTITLEMENTS_NOTIFIER_HORIZON must be an ISO 8601 duration" in err and "'1d'" in err
    assert "Traceback" not in err
