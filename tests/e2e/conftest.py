"""End-to-end fixtures: the web app over a fresh database of each backend (``database_url``), with a
manual clock, a small tenant file of our own, and API tokens for its users.

The people of the tenant:
- ``manager`` requests on behalf of ``report`` (their direct report);
- ``staged-N`` packages have two stages: ``first`` approves stage 1, ``second`` stage 2; they
  need a justification and can be extended without approval;
- ``dual-N`` packages have one stage that ``approver-a`` and ``approver-b`` may both decide;
  ``requester`` asks for them;
- ``outsider`` has nothing to do with anything; ``auditor`` and ``admin`` have those roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from domain.clock import ManualClock
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from web.app import create_app

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
API = "/api/v1"
USERS = ["manager", "report", "first", "second", "outsider", "auditor", "admin", "requester", "approver-a", "approver-b"]


def tenant(*, staged: int, dual: int) -> dict[str, Any]:
    roles = {"auditor": ["auditor"], "admin": ["admin"]}
    managers = {"report": "manager"}
    packages, policies = [], []
    for n in range(1, staged + 1):
        packages.append({"id": f"staged-{n}", "catalog": "it", "name": f"Staged {n}", "resources": [{"id": f"staged-{n}-group", "kind": "group"}]})
        policies.append({
            "id": f"staged-{n}-policy",
            "access_package": f"staged-{n}",
            "requestor_justification_required": True,
            "approval": {"required": True, "stages": [
                {"approvers": [{"user": "first"}], "timeout": "P14D"},
                {"approvers": [{"user": "second"}], "timeout": "P14D"},
            ]},
            "expiration": {"after": "P30D"},
            "extension": {"allowed": True, "approval_required": False},
        })
    for n in range(1, dual + 1):
        packages.append({"id": f"dual-{n}", "catalog": "it", "name": f"Dual {n}", "resources": [{"id": f"dual-{n}-group", "kind": "group"}]})
        policies.append({
            "id": f"dual-{n}-policy",
            "access_package": f"dual-{n}",
            "approval": {"required": True, "stages": [
                {"approvers": [{"user": "approver-a"}, {"user": "approver-b"}], "timeout": "P14D"},
            ]},
            "expiration": {"after": "P30D"},
        })
    return {
        "users": [
            {"id": u, "display_name": u.title(), "email": f"{u}@example.test", "manager": managers.get(u), "roles": roles.get(u, [])}
            for u in USERS
        ],
        "catalogs": [{"id": "it", "name": "IT"}],
        "access_packages": packages,
        "policies": policies,
    }


@pytest.fixture
def staged_packages() -> int:
    """How many two-stage packages the tenant has (a module may ask for more)."""
    return 2


@pytest.fixture
def dual_packages() -> int:
    return 7


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def tenant_file(tmp_path, staged_packages, dual_packages):
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(tenant(staged=staged_packages, dual=dual_packages), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def services(database_url, clock, tenant_file):
    services = build_services(Settings(database_url=database_url), clock=clock)
    try:
        load_tenant(services.app, tenant_file)
        services.read_models.catch_up()
        yield services
    finally:
        services.close()


@pytest.fixture
def app(services):
    return create_app(services, project_inline=True)


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Api:
    """Calls the API as one of the tenant's users: ``api.post("ben", "/requests", {...})``."""

    client: Any
    services: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.services.tokens.create(user, now=START)
        return self.tokens[user]

    def headers(self, user: str | None, at: int | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        if at is not None:
            headers["X-Min-Position"] = str(at)
        return headers

    def get(self, user: str | None, path: str, *, at: int | None = None, **kwargs):
        return self.client.get(API + path, headers=self.headers(user, at), **kwargs)

    def post(self, user: str | None, path: str, body: Any = None, **kwargs):
        return self.client.post(API + path, headers=self.headers(user), json=body, **kwargs)

    def submit(self, user: str, package: str, **fields) -> dict:
        response = self.post(user, "/requests", {"access_package_id": package, **fields})
        assert response.status_code == 201, response.json
        return response.json

    def decide(self, user: str, request_id: str, decision: str = "approve", **fields):
        return self.post(user, f"/requests/{request_id}/decision", {"decision": decision, **fields})


@pytest.fixture
def api(client, services) -> Api:
    return Api(client, services)
