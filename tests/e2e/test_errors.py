"""Every error is JSON ``{"error": {"code", "message", "details"}}`` with the status API.md gives."""

from __future__ import annotations

import uuid


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_malformed_json_body_is_400_malformed_json(api, client):
    response = client.post(
        "/api/v1/requests", headers=api.headers("requester"), data='{"access_package_id": ', content_type="application/json"
    )

    assert error_of(response, 400)["code"] == "malformed_json"


def test_body_not_sent_as_json_is_400_malformed_json(api, client):
    response = client.post("/api/v1/requests", headers=api.headers("requester"), data="access_package_id=dual-1")

    assert error_of(response, 400)["code"] == "malformed_json"


def test_missing_required_field_is_400_naming_the_field(api):
    receipt = api.submit("requester", "dual-1")

    response = api.post("approver-a", f"/requests/{receipt['id']}/decision", {"reason": "no decision given"})

    error = error_of(response, 400)
    assert error["code"] == "bad_request"
    assert error["details"] == {"fields": {"decision": ["Missing data for required field."]}}


def test_unknown_or_invalid_body_fields_are_400_naming_each(api):
    response = api.post("requester", "/requests", {"access_package_id": 7, "colour": "red"})

    assert sorted(error_of(response, 400)["details"]["fields"]) == ["access_package_id", "colour"]


def test_start_without_timezone_is_400_naming_start(api):
    response = api.post("requester", "/requests", {"access_package_id": "dual-1", "start": "2026-04-01T09:00:00"})

    assert list(error_of(response, 400)["details"]["fields"]) == ["start"]


def test_start_and_end_with_timezones_are_accepted(api):
    response = api.post(
        "requester", "/requests",
        {"access_package_id": "dual-1", "start": "2026-03-03T09:00:00Z", "end": "2026-03-20T09:00:00+01:00"},
    )

    assert response.status_code == 201, response.json
    details = api.get("requester", f"/requests/{response.json['id']}", at=response.json["position"]).json
    assert (details["start"], details["end"]) == ("2026-03-03T09:00:00+00:00", "2026-03-20T09:00:00+01:00")


def test_unknown_ids_are_404_naming_what_is_unknown(api):
    unknown = str(uuid.uuid4())
    cases = [
        (api.get("requester", f"/requests/{unknown}"), "unknown_request"),
        (api.decide("approver-a", unknown), "unknown_request"),
        (api.post("requester", f"/requests/{unknown}/cancel"), "unknown_request"),
        (api.post("report", f"/assignments/{unknown}/extend", {}), "unknown_assignment"),
        (api.post("requester", "/requests", {"access_package_id": "nope"}), "unknown_access_package"),
    ]

    assert [error_of(response, 404)["code"] for response, _ in cases] == [code for _, code in cases]


def test_malformed_request_id_is_404(api):
    assert error_of(api.get("requester", "/requests/not-a-uuid"), 404)["code"] == "unknown_request"
    assert error_of(api.decide("approver-a", "not-a-uuid"), 404)["code"] == "unknown_request"


def test_unknown_route_is_json_404_with_or_without_token(api, client):
    assert error_of(api.get("requester", "/no-such-thing"), 404)["code"] == "not_found"
    assert error_of(api.get(None, "/no-such-thing"), 404)["code"] == "not_found"
    # "/" is the portal's home page (API.md, Portal): see tests/e2e/test_portal.py


def test_wrong_method_is_json_405_with_allow_header(api, client):
    response = client.delete("/api/v1/requests", headers=api.headers("requester"))

    error = error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_request_against_the_policy_is_422_with_the_rule_as_code(api):
    response = api.post("requester", "/requests", {"access_package_id": "staged-1"})  # no justification

    assert error_of(response, 422)["code"] == "justification_required"


def test_revoking_with_a_blank_reason_is_422_reason_required(api):
    receipt = api.submit("requester", "dual-1")
    api.decide("approver-a", receipt["id"])

    error = error_of(api.post("approver-a", f"/requests/{receipt['id']}/revoke", {"reason": "  "}), 422)

    assert error["code"] == "reason_required"


def test_limit_outside_1_to_200_is_400_naming_limit(api):
    for limit in (0, 201, "x"):
        error = error_of(api.get("requester", f"/me/requests?limit={limit}"), 400)
        assert list(error["details"]["fields"]) == ["limit"]


def test_cursor_not_given_by_the_api_is_400(api):
    error = error_of(api.get("requester", "/approvals/pending?cursor=not-ours"), 400)

    assert error["code"] == "invalid_cursor"
    assert list(error["details"]["fields"]) == ["cursor"]


def test_unexpected_exception_is_500_without_its_text(api, services, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services.read_models, "requests_of", broken)

    response = api.get("requester", "/me/requests")

    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
