"""``/admin/clock``: the manual clock over HTTP, and its clear refusals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.clock import SystemClock
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from tests.e2e.conftest import START
from web.app import create_app


def test_the_admin_reads_the_manual_clock(api):
    response = api.get("admin", "/admin/clock")

    assert response.status_code == 200
    assert response.json == {"now": START.isoformat(), "clock": "manual"}


def test_moving_the_clock_with_nothing_due_answers_the_new_time_and_runs_nothing(api, services):
    later = START + timedelta(days=1)

    response = api.post("admin", "/admin/clock", {"now": later.isoformat()})

    assert response.status_code == 200
    assert response.json == {
        "now": later.isoformat(),
        "clock": "manual",
        "previous": START.isoformat(),
        "ran": [],
        "position": None,
    }
    assert services.app.clock.now() == later


def test_the_clock_never_goes_back(api, services):
    api.post("admin", "/admin/clock", {"now": (START + timedelta(days=2)).isoformat()})

    response = api.post("admin", "/admin/clock", {"now": (START + timedelta(days=1)).isoformat()})

    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "clock_cannot_go_back"
    assert error["details"] == {
        "now": (START + timedelta(days=2)).isoformat(),
        "wanted": (START + timedelta(days=1)).isoformat(),
    }
    assert services.app.clock.now() == START + timedelta(days=2)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "now"),
        ({"now": "next tuesday"}, "now"),
        ({"now": "2026-03-09T09:00:00"}, "now"),  # no timezone
        ({"now": "9999-12-30T00:00:00Z"}, "now"),  # deadlines after it would not be dates
        ({"now": "0001-01-01T00:00:00+01:00"}, "now"),
    ],
)
def test_a_time_that_is_missing_or_not_an_iso_time_with_timezone_is_a_400_naming_the_field(api, body, field):
    response = api.post("admin", "/admin/clock", body)

    assert response.status_code == 400
    assert list(response.json["error"]["details"]["fields"]) == [field]


def test_only_administrators_may_move_the_clock(api, services):
    response = api.post("auditor", "/admin/clock", {"now": (START + timedelta(days=1)).isoformat()})

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert services.app.clock.now() == START


def test_with_the_system_clock_the_clock_resource_does_not_exist(database_url, tenant_file, api):
    system = build_services(Settings(database_url=database_url), clock=SystemClock())
    try:
        client = create_app(system, project_inline=True).test_client()
        token = system.tokens.create("admin", now=START)
        headers = {"Authorization": f"Bearer {token}"}

        moved = client.post("/api/v1/admin/clock", headers=headers, json={"now": "2030-01-01T00:00:00Z"})
        read = client.get("/api/v1/admin/clock", headers=headers)
    finally:
        system.close()

    assert (moved.status_code, read.status_code) == (404, 404)
    assert "ENTITLEMENTS_CLOCK=manual" in moved.json["error"]["message"]


def test_the_deployments_manual_clock_is_kept_in_the_database_and_never_goes_back(database_url, tenant_file):
    settings = Settings(database_url=database_url, clock="manual")
    first, second = build_services(settings), build_services(settings)  # two workers of one deployment
    try:
        load_tenant(first.app, tenant_file)
        first.read_models.catch_up()
        token = first.tokens.create("admin", now=START)
        headers = {"Authorization": f"Bearer {token}"}
        one, other = (create_app(s, project_inline=True).test_client() for s in (first, second))
        started = datetime.fromisoformat(one.get("/api/v1/admin/clock", headers=headers).json["now"])
        later = started + timedelta(days=14)

        moved = one.post("/api/v1/admin/clock", headers=headers, json={"now": later.isoformat()})
        read = other.get("/api/v1/admin/clock", headers=headers)
        back = other.post("/api/v1/admin/clock", headers=headers, json={"now": started.isoformat()})
    finally:
        first.close()
        second.close()

    assert (moved.status_code, moved.json["previous"], moved.json["now"]) == (200, started.isoformat(), later.isoformat())
    assert read.json == {"now": later.isoformat(), "clock": "manual"}
    assert (back.status_code, back.json["error"]["code"]) == (409, "clock_cannot_go_back")
