"""The sender across crashes and beside another sender: ``entitlements send`` killed with SIGKILL
while the SMTP server (real, on loopback) takes an email, then the next rounds; two senders on one
outbox. Each email is claimed only just before it is handed to the server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from notifier.sender import LEASE, Sender, SmtpServer
from tests.mailbox import Mailbox, free_port

TENANT = Path(__file__).parent.parent / "data" / "notifications.yaml"
KILLED_AT = 3  # the email the SMTP server is taking when the sender is killed: sent 2, in flight 1, then 3 more


class KillingMailbox(Mailbox):
    """Keeps what it accepts; while it takes email ``kill_at`` (before replying) it kills the
    sender's process with SIGKILL, so that email is accepted but never marked sent."""

    def __init__(self, kill_at: int) -> None:
        super().__init__()
        self.kill_at = kill_at
        self.victim: subprocess.Popen | None = None
        self.victim_started = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.kill_at:
            assert self.victim_started.wait(30)
            self.victim.kill()
            self.victim.wait(30)
        return reply


class HandingOverMailbox(Mailbox):
    """Keeps what it accepts; while it takes its first email it runs ``meanwhile`` to the end."""

    meanwhile = None

    async def handle_DATA(self, server, session, envelope):
        if not self.messages and self.meanwhile:
            self.meanwhile()
        return await super().handle_DATA(server, session, envelope)


def serving(box: Mailbox):
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.url = f"smtp://127.0.0.1:{controller.port}"
    yield box
    controller.stop()


@pytest.fixture
def killing_mailbox():
    yield from serving(KillingMailbox(kill_at=KILLED_AT))


@pytest.fixture
def services(database_url, killing_mailbox):
    """The application, read models and outbox on the test database, with the deployment's manual
    clock (kept in the database, so that ``entitlements send`` in another process reads the same time)."""
    settings = Settings(database_url=database_url, smtp_url=killing_mailbox.url, clock="manual")
    built = build_services(settings)
    load_tenant(built.app, TENANT)
    for requestor, package in (("rita", "wiki"), ("mona", "wiki"), ("rita", "vault")):  # two emails each
        built.app.submit_request(requestor_id=requestor, access_package_id=package, justification="for the launch")
    built.read_models.catch_up()
    yield built
    built.close()


def emails(services) -> list[dict]:
    """Every email of the outbox, oldest first."""
    services.read_models.catch_up()
    return list(reversed(services.read_models.notifications(limit=200).items))


def sender(services) -> Sender:
    return Sender(services.store, SmtpServer.from_url(services.settings.smtp_url), services.app.clock,
                  mail_from=services.settings.mail_from)


@pytest.fixture
def killed(services, killing_mailbox, database_url, tmp_path):
    """``entitlements send --once`` killed with SIGKILL while the server takes email ``KILLED_AT``."""
    assert len(emails(services)) == 6
    env = {
        **os.environ,
        "ENTITLEMENTS_DATABASE_URL": database_url,
        "ENTITLEMENTS_SMTP_URL": killing_mailbox.url,
        "ENTITLEMENTS_CLOCK": "manual",
    }
    process = subprocess.Popen([sys.executable, "-m", "entitlements.cli", "send", "--once"], env=env,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killing_mailbox.victim = process
    killing_mailbox.victim_started.set()
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -9, err.decode()
    assert len(killing_mailbox.messages) == KILLED_AT
    return killing_mailbox


def test_a_killed_sender_leaves_the_emails_it_had_not_reached_due_for_the_next_round(services, killed):
    assert [(e["status"], e["attempts"]) for e in emails(services)] == [
        ("sent", 1), ("sent", 1), ("sending", 1), ("pending", 0), ("pending", 0), ("pending", 0),
    ]  # fmt: skip
    report = sender(services).send_due()  # at once: the clock has not moved
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    outbox = emails(services)
    assert [e["status"] for e in outbox] == ["sent", "sent", "sending", "sent", "sent", "sent"]
    received = [message["Message-ID"] for _, message in killed.messages]
    assert received == [e["message_id"] for e in outbox]  # the one in flight not again, yet


def test_the_email_in_flight_when_the_sender_was_killed_is_sent_again_after_its_lease_counting_the_attempt(
    services, killed
):
    in_flight = emails(services)[KILLED_AT - 1]
    assert sender(services).send_due().sent == 3  # the others
    killed_at = services.app.clock.now()
    services.app.clock.set(killed_at + LEASE - timedelta(seconds=1))
    assert sender(services).send_due().handled == 0
    services.app.clock.set(killed_at + LEASE)
    assert sender(services).send_due().sent == 1
    again = emails(services)[KILLED_AT - 1]
    assert (again["id"], again["status"], again["attempts"]) == (in_flight["id"], "sent", 2)
    received = Counter(message["Message-ID"] for _, message in killed.messages)
    assert received[in_flight["message_id"]] == 2 and sum(received.values()) == 7  # that one duplicate only


@pytest.fixture
def second_mailbox():
    yield from serving(Mailbox())


@pytest.fixture
def handing_over_mailbox():
    yield from serving(HandingOverMailbox())


def test_a_second_sender_takes_the_emails_a_busy_sender_has_not_reached_and_neither_sends_one_twice(
    services, handing_over_mailbox, second_mailbox
):
    clock, store, mail_from = services.app.clock, services.store, services.settings.mail_from
    first = Sender(store, SmtpServer.from_url(handing_over_mailbox.url), clock, mail_from=mail_from)
    second = Sender(store, SmtpServer.from_url(second_mailbox.url), clock, mail_from=mail_from)
    reports = {}
    handing_over_mailbox.meanwhile = lambda: reports.setdefault("second", second.send_due())
    reports["first"] = first.send_due()  # read all six; the second runs while the server takes its first
    assert (reports["first"].sent, reports["second"].sent) == (1, 5)
    outbox = emails(services)
    assert {(e["status"], e["attempts"]) for e in outbox} == {("sent", 1)}
    received = [m["Message-ID"] for box in (handing_over_mailbox, second_mailbox) for _, m in box.messages]
    assert sorted(received) == sorted(e["message_id"] for e in outbox)
