"""``Authorization: Bearer TOKEN`` on every call but liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from tests.e2e.conftest import START


def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_calls_without_a_bearer_token_are_401(api, client):
    assert_unauthorized(client.get("/api/v1/me/requests"))
    assert_unauthorized(client.post("/api/v1/requests", json={"access_package_id": "dual-1"}))
    assert_unauthorized(client.get("/api/v1/me/requests", headers={"Authorization": f"Basic {api.token('requester')}"}))


def test_unknown_token_is_401(client):
    assert_unauthorized(client.get("/api/v1/me/requests", headers={"Authorization": "Bearer ent_not-a-token"}))


def test_token_of_a_user_not_in_the_directory_is_401(client, services):
    token = services.tokens.create("ghost", now=START)

    assert_unauthorized(client.get("/api/v1/me/requests", headers={"Authorization": f"Bearer {token}"}))


def test_liveness_readiness_and_openapi_need_no_token(client):
    for path in ("/api/v1/healthz", "/api/v1/readyz", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 200, path
