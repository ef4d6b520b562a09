"""Liveness and readiness."""

from __future__ import annotations

import sqlite3


def test_liveness_answers_ok(client):
    response = client.get("/api/v1/healthz")

    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readiness_gives_each_read_model_position_and_lag(api, client, services):
    api.submit("requester", "dual-1")  # not projected yet: the read models lag

    response = client.get("/api/v1/readyz")

    assert response.status_code == 200
    body = response.json
    assert body["ready"] is True
    assert body["head"] == services.read_models.head()
    assert set(body["read_models"]) == set(services.read_models.positions())
    for status in body["read_models"].values():
        assert status["lag"] == body["head"] - status["position"] > 0


def test_readiness_is_503_when_the_database_does_not_answer(client, services, monkeypatch):
    def unreachable():
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(services.read_models, "positions", unreachable)

    response = client.get("/api/v1/readyz")

    assert response.status_code == 503
    assert response.json["error"]["code"] == "database_unavailable"


def stuck_notifier(monkeypatch):
    """The notifier fails on every event of requests from now on."""
    from notifier.projection import NotifierReadModel

    def failing(self, tx, events, *, after):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(NotifierReadModel, "apply", failing)


def test_readiness_is_503_naming_a_read_model_stuck_on_an_event(api, client, services, monkeypatch):
    stuck_notifier(monkeypatch)
    receipt = api.submit("requester", "dual-1")
    services.read_models.catch_up()

    response = client.get("/api/v1/readyz")

    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "read_model_failed" and "notifier" in error["message"]
    failure = error["details"]["failures"]["notifier"]
    assert failure["position"] < failure["event_position"] <= receipt["position"]
    assert failure["error"] == "OverflowError: date value out of range" and failure["attempts"] == 1
    assert error["details"]["ready"] is False
    assert error["details"]["read_models"]["pending"]["lag"] == 0


def test_a_read_waiting_for_what_a_stuck_read_model_cannot_reach_is_503_read_model_failed(api, monkeypatch):
    stuck_notifier(monkeypatch)
    receipt = api.submit("requester", "dual-1")

    response = api.get("admin", "/notifications", at=receipt["position"])

    assert response.status_code == 503
    assert response.json["error"]["code"] == "read_model_failed"
    assert response.json["error"]["details"]["failing_read_model"] == "notifier"


def test_reads_of_the_other_read_models_are_answered_while_one_is_stuck(api, monkeypatch):
    stuck_notifier(monkeypatch)
    receipt = api.submit("requester", "dual-1")

    response = api.get("approver-a", "/approvals/pending", at=receipt["position"])

    assert response.status_code == 200
    assert [item["request_id"] for item in response.json["items"]] == [receipt["id"]]
    assert int(response.headers["X-Position"]) >= receipt["position"]
