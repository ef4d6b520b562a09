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
