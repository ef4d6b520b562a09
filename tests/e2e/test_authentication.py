"""``Authorization: Bearer TOKEN`` on every call but liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from tests.e2e.conftest import START

DAY = timedelta(days=1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


def test_token_works_until_the_moment_it_expires(client, services, clock):
    issued = services.tokens.issue("requester", now=START, expires_in=DAY)
    clock.advance(DAY - timedelta(seconds=1))

    assert client.get("/api/v1/me/requests", headers=bearer(issued.token)).status_code == 200


def test_expired_token_is_401_saying_when_it_expired(api, client, services):
    issued = services.tokens.issue("requester", now=START, expires_in=DAY)
    assert client.get("/api/v1/me/requests", headers=bearer(issued.token)).status_code == 200
    assert api.post("admin", "/admin/clock", {"now": (START + DAY).isoformat()}).status_code == 200

    response = client.get("/api/v1/me/requests", headers=bearer(issued.token))

    assert_unauthorized(response)
    assert response.json["error"]["message"].startswith(f"this API token ({issued.info.id}) expired at {(START + DAY).isoformat()}")
    assert response.json["error"]["details"] == {"reason": "expired", "token_id": issued.info.id, "expired_at": (START + DAY).isoformat()}


def test_revoked_token_is_401_at_once_although_its_caller_was_just_seen(client, services, clock):
    issued = services.tokens.issue("requester", now=START, expires_in=None)
    assert client.get("/api/v1/me/requests", headers=bearer(issued.token)).status_code == 200
    services.tokens.revoke([issued.info.id], now=clock.now())

    response = client.get("/api/v1/me/requests", headers=bearer(issued.token))

    assert_unauthorized(response)
    assert response.json["error"]["message"].startswith(f"this API token ({issued.info.id}) was revoked at {START.isoformat()}")
    assert response.json["error"]["details"] == {"reason": "revoked", "token_id": issued.info.id, "revoked_at": START.isoformat()}


def test_token_revoked_by_another_process_of_the_deployment_is_401_at_once(database_url, client, services):
    issued = services.tokens.issue("requester", now=START, expires_in=None)
    assert client.get("/api/v1/me/requests", headers=bearer(issued.token)).status_code == 200
    other = build_services(Settings(database_url=database_url))  # its own connections, as another process has
    try:
        other.tokens.revoke([issued.info.id], now=START)
    finally:
        other.close()

    response = client.get("/api/v1/me/requests", headers=bearer(issued.token))

    assert_unauthorized(response)
    assert response.json["error"]["details"]["reason"] == "revoked"


def test_other_tokens_of_the_user_keep_working_when_one_is_revoked(client, services):
    revoked = services.tokens.issue("requester", now=START, expires_in=None)
    kept = services.tokens.issue("requester", now=START, expires_in=None)
    services.tokens.revoke([revoked.info.id], now=START)

    assert client.get("/api/v1/me/requests", headers=bearer(kept.token)).status_code == 200


def test_liveness_readiness_and_openapi_need_no_token(client):
    for path in ("/api/v1/healthz", "/api/v1/readyz", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 200, path
