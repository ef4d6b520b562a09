"""Extensions over HTTP: ``POST /assignments/{id}/extend`` creates a request (201 and its
``Location``), extensions are bounded by the window before the end, and a ``/me/assignments`` item
keeps its size however often access is extended.

Tenant: ``tests/e2e/conftest.py``. ``staged-N``: two stages (``first``, then ``second``), access for
P30D, extension without approval and without ``reminder_before`` (so it may be asked for in the
last 30 days of access); ``manager`` requests on behalf of ``report``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

DAY = timedelta(days=1)


def granted(api, package: str = "staged-1") -> dict:
    """``report``'s access to ``package``, approved by both stages: their ``/me/assignments`` item."""
    receipt = api.submit("manager", package, target_user_id="report", justification="for the launch")
    for approver in ("first", "second"):
        response = api.decide(approver, receipt["id"])
        assert response.status_code == 200, response.json
    return assignment(api, package, at=response.json["position"])


def assignment(api, package: str, *, at: int) -> dict:
    response = api.get("report", "/me/assignments", at=at)
    assert response.status_code == 200, response.json
    (item,) = [item for item in response.json["items"] if item["access_package_id"] == package]
    return item


def extend(api, assignment_id: str):
    return api.post("report", f"/assignments/{assignment_id}/extend", {"justification": "still needed"})


def move_clock(api, when: datetime) -> None:
    response = api.post("admin", "/admin/clock", {"now": when.isoformat()})
    assert response.status_code == 200, response.json


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_asking_for_an_extension_answers_201_with_the_location_of_the_new_request(api):
    access = granted(api)

    response = extend(api, access["id"])

    assert response.status_code == 201, response.json
    assert set(response.json) == {"id", "state", "position"}
    assert response.json["state"] == "access_extended"
    assert response.headers["Location"] == f"/api/v1/requests/{response.json['id']}"
    created = api.get("report", response.headers["Location"].removeprefix("/api/v1"), at=response.json["position"])
    assert (created.status_code, created.json["request_type"]) == (200, "user_extend")


def test_a_second_extension_right_after_an_approved_one_is_refused_as_too_early(api):
    access = granted(api)
    first = extend(api, access["id"])
    assert first.status_code == 201, first.json

    refused = extend(api, access["id"])

    assert refused.status_code == 422
    error = refused.json["error"]
    assert error["code"] == "extension_too_early"
    assert "too early to extend" in error["message"] and "last 30 days" in error["message"]
    extended = assignment(api, "staged-1", at=first.json["position"])
    assert moment(extended["end"]) == moment(access["end"]) + 30 * DAY
    assert moment(error["details"]["extension_opens_at"]) == moment(extended["end"]) - 30 * DAY


def test_an_assignment_item_keeps_its_keys_and_size_after_several_extensions_over_time(api):
    access = granted(api)
    first = extend(api, access["id"])
    assert first.status_code == 201, first.json
    once = assignment(api, "staged-1", at=first.json["position"])

    latest = once
    for _ in range(4):  # each time the window before the new end opens, extend again
        move_clock(api, moment(latest["end"]) - 30 * DAY)
        response = extend(api, access["id"])
        assert response.status_code == 201, response.json
        latest = assignment(api, "staged-1", at=response.json["position"])

    assert moment(latest["end"]) == moment(access["end"]) + 5 * 30 * DAY
    assert (latest["extension_count"], latest["last_extension_request_id"]) == (5, response.json["id"])
    assert set(latest) == set(once)
    assert len(json.dumps(latest, sort_keys=True)) == len(json.dumps(once, sort_keys=True))
