"""The notifier: whole flows through the application with a test clock, the numbered emails they
cause (number, recipient) in order, and their delivery to a real SMTP server on loopback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from notifier.sender import Sender, SmtpServer
from tests.mailbox import free_port

TENANT = Path(__file__).parent.parent / "data" / "notifications.yaml"


@pytest.fixture
def services(database_url, clock, mailbox):
    settings = Settings(
        database_url=database_url, smtp_url=mailbox.url, base_url="https://access.contoso.example"
    )
    built = build_services(settings, clock=clock)
    load_tenant(built.app, TENANT)
    yield built
    built.close()


@pytest.fixture
def app(services):
    return services.app


def outbox(services) -> list[dict]:
    """Every email, oldest first."""
    services.read_models.catch_up()
    items, cursor = [], None
    while True:
        page = services.read_models.notifications(limit=200, cursor=cursor)
        items += page.items
        if not page.next_cursor:
            return list(reversed(items))
        cursor = page.next_cursor


def sequence(services, mailbox) -> list[tuple[int, str]]:
    """(number, recipient) of the emails the flow caused, as the SMTP server received them, after
    checking that they are the outbox's, in its order."""
    written = [(email["number"], email["recipient_id"]) for email in outbox(services)]
    sender(services).send_due()
    received = [(int(message["X-Entitlements-Email"]), to.split("@")[0]) for (to,), message in mailbox.messages]
    assert received == written
    return received


def submit(app, package, requestor="rita"):
    return app.submit_request(requestor_id=requestor, access_package_id=package, justification="for the launch")


# --- the flows ---------------------------------------------------------------------------------


def test_single_stage_approval_tells_the_approvers_and_then_the_user_has_access(app, services, mailbox):
    request = submit(app, "wiki")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    assert sequence(services, mailbox) == [(2, "amy"), (2, "bob"), (7, "amy"), (7, "bob"), (18, "rita")]


def test_a_denial_tells_the_requestor(app, services, mailbox):
    request = submit(app, "wiki")
    app.decide(request_id=request.id, approver_id="bob", decision="deny", reason="not this quarter")
    assert sequence(services, mailbox) == [(2, "amy"), (2, "bob"), (9, "rita")]


def test_two_stages_with_escalation_in_both_forward_each_stage_to_its_alternates(app, services, clock, mailbox):
    request = submit(app, "vault-escalating")
    clock.advance(timedelta(days=3))
    app.escalate(request.id)
    app.decide(request_id=request.id, approver_id="eve", decision="approve")
    clock.advance(timedelta(days=3))
    app.escalate(request.id)  # stage 2's clock started at stage 2
    app.decide(request_id=request.id, approver_id="fay", decision="approve")
    assert sequence(services, mailbox) == [
        (4, "amy"), (4, "bob"),
        (1, "eve"),
        (8, "amy"), (8, "bob"), (8, "eve"),
        (13, "cyd"), (13, "dee"),
        (15, "fay"),
        (16, "cyd"), (16, "dee"), (16, "fay"),
        (18, "rita"),
    ]  # fmt: skip


def test_expiry_at_stage_one_tells_its_approvers_and_the_requestor(app, services, clock, mailbox):
    request = submit(app, "wiki")
    clock.advance(timedelta(days=14, seconds=1))
    app.expire_request(request.id)
    assert sequence(services, mailbox) == [(2, "amy"), (2, "bob"), (6, "amy"), (6, "bob"), (10, "rita")]


def test_expiry_at_stage_two_tells_its_approvers_and_the_requestor(app, services, clock, mailbox):
    request = submit(app, "vault")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    clock.advance(timedelta(days=14, seconds=1))
    app.expire_request(request.id)
    assert sequence(services, mailbox) == [
        (2, "amy"), (2, "bob"),
        (8, "amy"), (8, "bob"),
        (11, "cyd"), (11, "dee"),
        (17, "cyd"), (17, "dee"),
        (10, "rita"),
    ]  # fmt: skip


def later(services, clock, **delta):
    """The scheduler walks the clock forward, running each deadline at its time."""
    services.scheduler.advance(clock, clock.now() + timedelta(**delta))


def test_reminders_follow_whether_the_stage_escalates(app, services, clock, mailbox):
    submit(app, "wiki")  # reminded on day 7
    submit(app, "wiki-escalating", requestor="mona")  # reminded on day 2
    later(services, clock, days=7)
    numbers = [(n, who) for n, who in sequence(services, mailbox) if n in (3, 5)]
    assert numbers == [(5, "amy"), (5, "bob"), (3, "amy"), (3, "bob")]


def test_stage_two_reminders_use_the_stage_two_emails(app, services, clock, mailbox):
    plain = submit(app, "vault")
    escalating = submit(app, "vault-escalating", requestor="mona")
    for request in (plain, escalating):
        app.decide(request_id=request.id, approver_id="bob", decision="approve")
    later(services, clock, days=7)  # stage 2 reminders: day 2 (escalating), day 7 (plain)
    numbers = [(n, who) for n, who in sequence(services, mailbox) if n in (12, 14)]
    assert numbers == [(14, "cyd"), (14, "dee"), (12, "cyd"), (12, "dee")]


def test_access_ending_soon_and_ended_tell_the_user(app, services, clock, mailbox):
    request = submit(app, "wiki")
    receipt = app.decide(request_id=request.id, approver_id="amy", decision="approve")
    later(services, clock, days=31)  # reminded on day 23, ended on day 30
    assert receipt.state == "delivered"
    assert app.request_state(request.id) == "access_expired"
    assert sequence(services, mailbox)[-3:] == [(18, "rita"), (19, "rita"), (20, "rita")]


def test_an_administrators_direct_assignment_sends_no_email_even_when_the_access_ends(app, services, mailbox, clock):
    app.assign_directly(admin_id="adm", target_user_id="rita", access_package_id="wiki")
    later(services, clock, days=31)
    assert app.find_assignment("rita", "wiki").state == "access_expired"
    assert sequence(services, mailbox) == []


def test_a_package_with_notifications_disabled_sends_no_email(app, services, mailbox):
    request = submit(app, "quiet")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    assert sequence(services, mailbox) == []


def test_subjects_name_the_date_the_requestor_and_the_package(app, services, clock):
    request = submit(app, "wiki-escalating")
    clock.advance(timedelta(days=2))
    app.remind_approvers(request.id)
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    subjects = {email["number"]: email["subject"] for email in outbox(services)}
    assert subjects[4] == "Approve or deny the request by 09:00 UTC on March 16, 2026"
    assert subjects[5] == "Action required reminder: Approve or deny the request by March 16, 2026 for Rita Requestor"
    assert subjects[7] == "Request approved for Rita Requestor to Escalating wiki"
    assert subjects[18] == "You now have access to Escalating wiki"


def test_approver_emails_carry_the_request_details_and_a_link_to_it(app, services):
    request = submit(app, "wiki")
    services.read_models.catch_up()
    with services.store.transaction(write=False) as tx:
        text, html = tx.fetchone("SELECT text_body, html_body FROM outbox WHERE number = 2 AND recipient_id = 'amy'")
    for body in (text, html):
        assert "Rita Requestor" in body and "Contoso" in body and "for the launch" in body
        assert f"https://access.contoso.example/requests/{request.id}" in body


# --- delivery --------------------------------------------------------------------------------


def sender(services, **options) -> Sender:
    return Sender(services.store, SmtpServer.from_url(services.settings.smtp_url), services.app.clock,
                  mail_from=services.settings.mail_from, **options)


def test_the_sender_delivers_each_email_once_with_its_message_id(app, services, mailbox):
    request = submit(app, "wiki")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    emails = outbox(services)
    report = sender(services).send_due()
    assert (report.sent, report.retried, report.failed) == (5, 0, 0)
    assert sender(services).send_due().handled == 0
    received = [(to, message["Message-ID"], message["Subject"]) for to, message in mailbox.messages]
    assert received == [([e["to"]], e["message_id"], e["subject"]) for e in emails]
    assert all(e["status"] == "sent" and e["sent_at"] and e["attempts"] == 1 for e in outbox(services))
    plain, html = mailbox.messages[0][1].get_payload()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")


def test_a_temporary_failure_is_retried_after_a_backoff(app, services, mailbox, clock):
    submit(app, "quiet")  # nothing
    app.assign_directly(admin_id="adm", target_user_id="mona", access_package_id="wiki")  # nothing
    request = submit(app, "lonely", requestor="mona")  # one email, to nan, who has no address
    submit(app, "wiki")
    outbox(services)
    mailbox.refusals = 1
    first = sender(services).send_due()
    assert (first.sent, first.retried, first.failed) == (1, 1, 0)  # bob sent, amy later
    by_recipient = {e["recipient_id"]: e for e in outbox(services)}
    assert by_recipient["amy"]["status"] == "pending" and by_recipient["amy"]["last_error"].startswith("451")
    assert by_recipient["nan"]["status"] == "failed" and "no email address" in by_recipient["nan"]["last_error"]
    assert sender(services).send_due().handled == 0  # not before the backoff
    clock.advance(timedelta(seconds=30))
    assert sender(services).send_due().sent == 1
    amy = {e["recipient_id"]: e for e in outbox(services)}["amy"]
    assert (amy["status"], amy["attempts"], amy["last_error"]) == ("sent", 2, None)
    assert request.id


def test_a_permanent_refusal_fails_the_email_with_the_servers_reply(app, services, mailbox):
    submit(app, "wiki")
    outbox(services)
    mailbox.refusals, mailbox.reply = 1, "550 5.1.1 no such mailbox"
    report = sender(services).send_due()
    assert (report.sent, report.failed) == (1, 1)
    failed = [e for e in outbox(services) if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["last_error"] == "550 5.1.1 no such mailbox"


def test_an_unreachable_server_leaves_the_emails_for_later(app, services, clock, mailbox):
    submit(app, "wiki")
    outbox(services)
    down = Sender(services.store, SmtpServer.from_url(f"smtp://127.0.0.1:{free_port()}"), clock, mail_from="x@y.example")
    report = down.send_due()
    assert (report.sent, report.failed) == (0, 0)
    emails = outbox(services)
    assert {(e["status"], e["attempts"]) for e in emails} == {("pending", 0)}
    assert all(e["last_error"].startswith("cannot connect to 127.0.0.1") for e in emails)
    assert down.send_due().handled == 0  # they wait for the next round
    clock.advance(timedelta(seconds=30))
    assert sender(services).send_due().sent == 2


def test_an_email_interrupted_before_it_was_marked_sent_is_sent_again_with_the_same_message_id(
    app, services, mailbox, clock, monkeypatch
):
    submit(app, "quiet")
    request = submit(app, "lonely")
    assert request.id
    submit(app, "wiki", requestor="mona")
    outbox(services)
    crashing = sender(services, batch=1)
    monkeypatch.setattr(crashing, "_sent", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        crashing.send_due()
    assert len(mailbox.messages) == 1
    assert sender(services).send_due().sent == 1  # the other one; the interrupted one is leased
    clock.advance(timedelta(minutes=5))
    assert sender(services).send_due().sent == 1
    ids = [message["Message-ID"] for _, message in mailbox.messages]
    assert len(ids) == 3 and ids[0] == ids[2] and ids[1] != ids[0]


def test_an_email_whose_every_try_ends_the_sender_fails_after_the_last_attempt(app, services, mailbox, clock, monkeypatch):
    submit(app, "wiki")  # two emails: to amy and to bob
    outbox(services)
    for _ in range(6):  # each round hands one email to the server, then the sender dies
        crashing = sender(services, max_attempts=3, batch=1)
        monkeypatch.setattr(crashing, "_sent", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
        with pytest.raises(SystemExit):
            crashing.send_due()
        clock.advance(timedelta(minutes=5))
    report = sender(services, max_attempts=3).send_due()
    assert (report.sent, report.failed, len(mailbox.messages)) == (0, 2, 6)
    for email in outbox(services):
        assert (email["status"], email["attempts"]) == ("failed", 3)
        assert "stopped while handing it to the server 3 times" in email["last_error"]


def test_rebuilding_the_notifier_adds_no_email_and_sends_none_again(app, services, mailbox, clock):
    request = submit(app, "vault-escalating")
    clock.advance(timedelta(days=3))
    app.escalate(request.id)
    app.decide(request_id=request.id, approver_id="amy", decision="deny")
    before = outbox(services)
    sender(services).send_due()
    sent = outbox(services)
    assert len(mailbox.messages) == len(before) == 4
    for names in (["notifier"], None):
        services.read_models.rebuild(names)
        assert outbox(services) == sent
        assert sender(services).send_due().handled == 0
    assert len(mailbox.messages) == 4


# --- an outbox written before the request index by position ---------------------------------------


def by_request(services, request_id) -> list[tuple[int, str]]:
    services.read_models.catch_up()
    page = services.read_models.notifications(request_id=str(request_id), limit=50)
    return [(email["number"], email["recipient_id"]) for email in reversed(page.items)]


def test_an_outbox_written_before_the_request_position_keeps_finding_its_emails_by_request(
    database_url, clock, mailbox, services, app
):
    request, other = submit(app, "wiki"), submit(app, "vault", requestor="mona")
    assert by_request(services, request.id) == [(2, "amy"), (2, "bob")]
    with services.store.transaction() as tx:  # the outbox as the commit before wrote it
        tx.execute("DROP INDEX outbox_by_request_position")
        tx.execute("ALTER TABLE outbox DROP COLUMN request_position")
        tx.execute("CREATE INDEX outbox_by_request ON outbox (request_id, position, seq)")
    services.close()
    upgraded = build_services(Settings(database_url=database_url, smtp_url=mailbox.url), clock=clock)
    try:
        upgraded.app.decide(request_id=request.id, approver_id="amy", decision="approve")
        assert by_request(upgraded, request.id) == [(2, "amy"), (2, "bob"), (7, "amy"), (7, "bob"), (18, "rita")]
        assert by_request(upgraded, other.id) == [(2, "amy"), (2, "bob")]
        assert by_request(upgraded, "no-such-request") == []
        with upgraded.store.transaction(write=False) as tx:
            positions = tx.fetchall("SELECT number, request_position FROM outbox WHERE request_id = ? ORDER BY position, seq", (str(request.id),))
            assert [position is None for _, position in positions] == [True, True, False, False, False]
            assert not tx.table_exists("no_such_table") and tx.table_exists("outbox")
    finally:
        upgraded.close()
