"""Whole timelines walked over HTTP with the manual clock (``POST /admin/clock``): what each move of
the clock ran, the states people see, the Pending lists, and the emails delivered over SMTP.

Tenant: ``tests/data/timelines.yaml``. ``wiki``: one stage (amy, bob), reminder P7D, timeout P14D,
access for P30D, extension with approval, reminded P7D before the end. ``vault``: two stages
(amy/bob, then cyd/dee), each escalating after P3D (to eve, then fay). ``badge``: no approval,
access for P30D, no extension.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from notifier.sender import Sender, SmtpServer
from tests.e2e.conftest import START

TENANT = Path(__file__).parent.parent / "data" / "timelines.yaml"
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@pytest.fixture
def tenant_file():
    return TENANT


class Timeline:
    """Moves the clock as the admin, and reads what people see and what they were emailed."""

    def __init__(self, api, services, mailbox) -> None:
        self.api = api
        self.services = services
        self.mailbox = mailbox
        self.delivered = 0
        self.sender = Sender(services.store, SmtpServer.from_url(mailbox.url), services.app.clock, mail_from="entitlements@contoso.example")

    def move_to(self, when: datetime) -> list[tuple[str, int | None, str]]:
        """Moves the clock; answers (kind, stage, outcome) of each deadline it ran."""
        response = self.api.post("adm", "/admin/clock", {"now": when.isoformat()})
        assert response.status_code == 200, response.json
        assert response.json["now"] == when.isoformat()
        return [(item["kind"], item["stage"], item["outcome"]) for item in response.json["ran"]]

    def emails(self) -> list[tuple[int, str]]:
        """(number, recipient) of the emails sent since the last look, as the SMTP server got them."""
        self.services.read_models.catch_up()
        self.sender.send_due()
        new = self.mailbox.messages[self.delivered :]
        self.delivered = len(self.mailbox.messages)
        return [(int(message["X-Entitlements-Email"]), to.split("@")[0]) for (to,), message in new]

    def pending(self, approver: str) -> list[str]:
        response = self.api.get(approver, "/approvals/pending", at=self.services.read_models.head())
        assert response.status_code == 200, response.json
        return [item["request_id"] for item in response.json["items"]]

    def request(self, request_id: str) -> dict:
        response = self.api.get("rita", f"/requests/{request_id}", at=self.services.read_models.head())
        assert response.status_code == 200, response.json
        return response.json

    def access(self, package: str) -> dict:
        response = self.api.get("rita", "/me/assignments", at=self.services.read_models.head())
        assert response.status_code == 200, response.json
        (assignment,) = [item for item in response.json["items"] if item["access_package_id"] == package]
        return assignment

    def submit(self, package: str) -> str:
        return self.api.submit("rita", package, justification="for the launch")["id"]

    def decide(self, approver: str, request_id: str, decision: str = "approve") -> dict:
        response = self.api.decide(approver, request_id, decision)
        assert response.status_code == 200, response.json
        return response.json


@pytest.fixture
def timeline(api, services, mailbox) -> Timeline:
    return Timeline(api, services, mailbox)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- a single stage: reminder at P7D, expiry at P14D -------------------------------------------


def test_a_single_stage_request_is_reminded_on_day_7_and_expires_on_day_14(timeline, api):
    request_id = timeline.submit("wiki")
    assert timeline.emails() == [(2, "amy"), (2, "bob")]
    assert timeline.pending("amy") == timeline.pending("bob") == [request_id]

    assert timeline.move_to(START + 7 * DAY - MINUTE) == []
    assert timeline.emails() == []

    assert timeline.move_to(START + 7 * DAY) == [("request_reminder", 1, "done")]
    assert timeline.emails() == [(3, "amy"), (3, "bob")]
    assert timeline.request(request_id)["state"] == "pending_approval"
    assert timeline.pending("amy") == timeline.pending("bob") == [request_id]

    assert timeline.move_to(START + 14 * DAY) == [("request_expiry", 1, "done")]
    assert timeline.emails() == [(6, "amy"), (6, "bob"), (10, "rita")]
    assert timeline.request(request_id)["state"] == "expired"
    assert timeline.pending("amy") == timeline.pending("bob") == []


def test_a_decision_after_the_request_expired_is_refused_and_the_request_stays_expired(timeline, api):
    request_id = timeline.submit("wiki")
    timeline.move_to(START + 15 * DAY)

    response = api.decide("amy", request_id, "approve")

    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "request_expired"
    assert "expired" in error["message"] and "can no longer be decided" in error["message"]
    assert error["details"]["state"] == "expired"
    assert timeline.request(request_id)["state"] == "expired"


def test_one_jump_over_two_weeks_runs_the_reminder_and_the_expiry_each_at_its_own_time(timeline, api, services):
    request_id = timeline.submit("wiki")

    ran = api.post("adm", "/admin/clock", {"now": (START + 20 * DAY).isoformat()}).json["ran"]

    assert [(item["kind"], item["due_at"], item["outcome"]) for item in ran] == [
        ("request_reminder", "2026-03-09T09:00:00.000000Z", "done"),
        ("request_expiry", "2026-03-16T09:00:00.000000Z", "done"),
    ]
    assert timeline.emails() == [(2, "amy"), (2, "bob"), (3, "amy"), (3, "bob"), (6, "amy"), (6, "bob"), (10, "rita")]
    stages = timeline.request(request_id)["stages"]
    assert moment(stages[0]["reminded_at"]) == START + 7 * DAY
    assert services.app.clock.now() == START + 20 * DAY


# --- two stages, escalation at P3D in both ------------------------------------------------------


def test_two_stages_escalate_after_three_days_each_and_stage_2_counts_from_its_own_start(timeline):
    request_id = timeline.submit("vault")
    assert timeline.emails() == [(4, "amy"), (4, "bob")]
    assert timeline.pending("amy") == [request_id]
    assert timeline.pending("eve") == []

    assert timeline.move_to(START + 3 * DAY) == [("request_escalation", 1, "done")]
    assert timeline.emails() == [(1, "eve")]
    assert timeline.pending("eve") == [request_id]

    timeline.move_to(START + 3 * DAY + 2 * HOUR)  # stage 2 starts here
    assert timeline.decide("eve", request_id)["state"] == "pending_approval"
    assert timeline.emails() == [(8, "amy"), (8, "bob"), (8, "eve"), (13, "cyd"), (13, "dee")]
    assert timeline.pending("eve") == timeline.pending("amy") == []
    assert timeline.pending("cyd") == timeline.pending("dee") == [request_id]

    assert timeline.move_to(START + 6 * DAY) == []  # three days after submission: stage 2 is not due
    assert timeline.pending("fay") == []
    assert timeline.move_to(START + 6 * DAY + 2 * HOUR - MINUTE) == []

    assert timeline.move_to(START + 6 * DAY + 2 * HOUR) == [("request_escalation", 2, "done")]
    assert timeline.emails() == [(15, "fay")]
    assert timeline.pending("fay") == [request_id]

    assert timeline.decide("fay", request_id)["state"] == "delivered"
    assert timeline.emails() == [(16, "cyd"), (16, "dee"), (16, "fay"), (18, "rita")]
    assert timeline.pending("cyd") == timeline.pending("dee") == timeline.pending("fay") == []
    assert timeline.request(request_id)["state"] == "delivered"
    assert timeline.access("vault")["state"] == "delivered"


# --- access: expiration.after, an extension approved before the end, and the end ---------------


def test_access_is_extended_by_an_approved_extension_then_ends_with_email_20(timeline, api):
    request_id = timeline.submit("wiki")
    timeline.move_to(START + HOUR)
    assert timeline.decide("amy", request_id)["state"] == "delivered"
    assert timeline.emails() == [(2, "amy"), (2, "bob"), (7, "amy"), (7, "bob"), (18, "rita")]
    access = timeline.access("wiki")
    end = START + HOUR + 30 * DAY
    assert (access["state"], moment(access["end"])) == ("delivered", end)

    assert timeline.move_to(end - 7 * DAY - MINUTE) == []
    assert timeline.move_to(end - 7 * DAY) == [("access_expiry_reminder", None, "done")]
    assert timeline.emails() == [(19, "rita")]

    response = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "one more month"})
    assert response.status_code == 201, response.json
    extension_id = response.json["id"]
    assert response.headers["Location"] == f"/api/v1/requests/{extension_id}"
    assert response.json["state"] == "pending_approval"
    assert timeline.emails() == [(2, "amy"), (2, "bob")]
    assert timeline.pending("amy") == [extension_id]
    assert timeline.request(extension_id)["request_type"] == "user_extend"

    timeline.move_to(end - 2 * DAY)
    assert timeline.decide("bob", extension_id)["state"] == "access_extended"
    assert timeline.emails() == [(7, "amy"), (7, "bob")]
    assert timeline.pending("amy") == []
    access = timeline.access("wiki")
    new_end = end + 30 * DAY
    assert (access["state"], moment(access["end"])) == ("access_extended", new_end)

    assert timeline.move_to(end + DAY) == []  # the old end passes: nothing ends
    assert timeline.access("wiki")["state"] == "access_extended"

    assert timeline.move_to(new_end) == [("access_expiry_reminder", None, "done"), ("access_expiry", None, "done")]
    assert timeline.emails() == [(19, "rita"), (20, "rita")]
    assert timeline.access("wiki")["state"] == "access_expired"
    assert timeline.request(request_id)["state"] == "access_expired"

    refused = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "too late"})
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "access_not_active"


def test_an_extension_is_asked_for_only_from_reminder_before_the_end_and_one_at_a_time(timeline, api):
    request_id = timeline.submit("wiki")
    timeline.decide("amy", request_id)
    access = timeline.access("wiki")
    end = moment(access["end"])
    timeline.move_to(end - 7 * DAY - MINUTE)

    early = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "early"})
    assert (early.status_code, early.json["error"]["code"]) == (422, "extension_too_early")

    timeline.move_to(end - 7 * DAY)
    pending = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "one more month"})
    assert pending.status_code == 201, pending.json
    again = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "and again"})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "extension_already_requested"
    assert again.json["error"]["details"]["request_id"] == pending.json["id"]
    assert "already waiting for approval" in again.json["error"]["message"]
    assert timeline.pending("amy") == [pending.json["id"]]


def test_access_without_extension_ends_at_its_end_with_email_20_and_no_reminder(timeline):
    request_id = timeline.submit("badge")
    assert timeline.request(request_id)["state"] == "delivered"
    assert timeline.emails() == [(18, "rita")]
    end = moment(timeline.access("badge")["end"])
    assert end == START + 30 * DAY

    assert timeline.move_to(end - MINUTE) == []
    assert timeline.emails() == []
    assert timeline.access("badge")["state"] == "delivered"

    assert timeline.move_to(end) == [("access_expiry", None, "done")]
    assert timeline.emails() == [(20, "rita")]
    assert timeline.access("badge")["state"] == "access_expired"
    assert timeline.request(request_id)["state"] == "access_expired"


def test_an_extension_left_undecided_when_access_ends_is_withdrawn(timeline, api):
    request_id = timeline.submit("wiki")
    timeline.decide("amy", request_id)
    access = timeline.access("wiki")
    end = moment(access["end"])
    timeline.move_to(end - 7 * DAY)
    extension = api.post("rita", f"/assignments/{access['id']}/extend", {"justification": "please"}).json
    assert timeline.pending("amy") == [extension["id"]]

    # the extension's reminder falls due at the same moment: the request was withdrawn first
    assert timeline.move_to(end) == [("access_expiry", None, "done"), ("request_reminder", 1, "skipped")]

    assert timeline.access("wiki")["state"] == "access_expired"
    assert timeline.pending("amy") == []
    assert timeline.request(extension["id"])["state"] == "cancelled"
