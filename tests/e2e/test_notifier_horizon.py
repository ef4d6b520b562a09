"""The notifier's horizon over HTTP: skipped emails in ``GET /notifications`` with their reason, and a
jump of the manual clock (``POST /admin/clock``) that skips nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from entitlements.bootstrap import build_application, build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from tests.e2e.conftest import START, Api
from web.app import create_app


@pytest.fixture
def late_api(database_url, clock, tenant_file):
    """The API of a deployment whose notifier starts 10 days after a request was made and decided."""
    app = build_application(Settings(database_url=database_url), clock=clock)
    load_tenant(app, tenant_file)
    request = app.submit_request(requestor_id="requester", access_package_id="dual-1")
    app.decide(request_id=request.id, approver_id="approver-a", decision="deny", reason="not now")
    app.close()
    clock.advance(timedelta(days=10))
    services = build_services(Settings(database_url=database_url), clock=clock)
    try:
        services.read_models.catch_up()
        api = Api(create_app(services, project_inline=True).test_client(), services)
        api.request_id = str(request.id)
        yield api
    finally:
        services.close()


def test_the_outbox_shows_the_emails_skipped_by_the_horizon_with_the_reason(late_api):
    response = late_api.get("auditor", f"/notifications?request_id={late_api.request_id}")
    assert response.status_code == 200
    items = sorted(response.json["items"], key=lambda item: (item["number"], item["recipient_id"]))
    reason = "older than the notifier horizon (PT24H before 2026-03-12T09:00:00Z)"
    assert [(i["number"], i["recipient_id"], i["status"], i["last_error"], i["attempts"], i["sent_at"]) for i in items] == [
        (2, "approver-a", "skipped", reason, 0, None),
        (2, "approver-b", "skipped", reason, 0, None),
        (9, "requester", "skipped", reason, 0, None),
    ]
    assert items[2]["subject"] == "Request denied to Dual 1" and items[2]["to"] == "requester@example.test"
    assert items[0]["created_at"] == "2026-03-02T09:00:00.000000Z"


def test_a_jump_of_the_manual_clock_by_400_days_mails_everything_it_causes(api, services):
    receipt = api.submit("requester", "dual-1")  # expires on day 14, unanswered
    jump = api.post("admin", "/admin/clock", {"now": (START + timedelta(days=400)).isoformat()})
    assert jump.status_code == 200
    assert [(ran["kind"], ran["outcome"]) for ran in jump.json["ran"]] == [("request_expiry", "done")]
    response = api.get("auditor", f"/notifications?request_id={receipt['id']}", at=jump.json["position"])
    items = sorted((i["number"], i["recipient_id"], i["status"]) for i in response.json["items"])
    assert items == [
        (2, "approver-a", "pending"), (2, "approver-b", "pending"),
        (6, "approver-a", "pending"), (6, "approver-b", "pending"),
        (10, "requester", "pending"),
    ]  # fmt: skip
