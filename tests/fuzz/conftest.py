"""Fixtures for the fuzz tests: the web app over a fresh database of each backend, shared by every
test of a module (a fuzz run is many thousand calls against one tenant), the e2e tests' tenant with a
few requests already made, API tokens for its users, and a manual clock.

The seeded state (see :class:`FuzzEnv`):
- ``manager`` has a request pending at stage 1 for ``report`` (``staged-1``) and one approved by
  both stages (``staged-2``), which gave ``report`` an assignment;
- ``requester`` has a request pending (``dual-1``) and one approved by ``approver-a`` (``dual-2``),
  which gave ``requester`` an assignment.
Fuzzed calls that take a request or assignment id use these ids (and those of requests the fuzzer
itself creates) for part of their valid cases, so that they get past 404 and into the rules.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest
import yaml

from domain.clock import ManualClock
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from tests.conftest import fresh_database
from tests.e2e.conftest import API, START, tenant
from web.app import create_app

STAGED, DUAL = 6, 12  # packages enough for the fuzzer's own requests to succeed now and then


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_database_url(request, tmp_path_factory):
    """A fresh, empty database of each backend, for one module."""
    yield from fresh_database(request, tmp_path_factory.mktemp("fuzz"), prefix="entitlements_fuzz")


@dataclass
class FuzzEnv:
    """The app under test, its services, a token per user and the ids the fuzzer may reuse."""

    app: Any
    services: Any
    client: Any
    tokens: dict[str, str] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    assignment_ids: list[str] = field(default_factory=list)
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    tolerated: dict[str, int] = field(default_factory=dict)
    by_call: dict[tuple[str, int], int] = field(default_factory=dict)
    _turns: Any = field(default_factory=count)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.services.tokens.create(user, now=START)
        return self.tokens[user]

    def auth(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"} if user else {}

    def turn(self, choices: list[Any]) -> Any:
        """The next of ``choices`` in turn: a deterministic mix (of users, of ids)."""
        return choices[next(self._turns) % len(choices)]

    def post(self, user: str, path: str, body: Any) -> Any:
        response = self.client.post(API + path, headers=self.auth(user), json=body)
        assert response.status_code in (200, 201), (path, response.json)
        return response.json

    def get(self, user: str, path: str, at: int | None = None) -> Any:
        headers = self.auth(user) | ({"X-Min-Position": str(at)} if at is not None else {})
        response = self.client.get(API + path, headers=headers)
        assert response.status_code == 200, (path, response.json)
        return response.json

    def record(self, status: int) -> None:
        self.calls += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def stable_pick(choices: list[Any], value: Any) -> Any:
    """One of ``choices`` chosen by ``value`` the same way in every process (no ``hash()``)."""
    return choices[zlib.crc32(repr(value).encode("utf-8", "surrogatepass")) % len(choices)]


def seed_requests(env: FuzzEnv) -> None:
    pending = env.post("manager", "/requests", {"access_package_id": "staged-1", "target_user_id": "report", "justification": "seed"})
    approved = env.post("manager", "/requests", {"access_package_id": "staged-2", "target_user_id": "report", "justification": "seed"})
    env.post("first", f"/requests/{approved['id']}/decision", {"decision": "approve", "reason": "seed"})
    second = env.post("second", f"/requests/{approved['id']}/decision", {"decision": "approve", "reason": "seed"})
    dual_pending = env.post("requester", "/requests", {"access_package_id": "dual-1"})
    dual_approved = env.post("requester", "/requests", {"access_package_id": "dual-2"})
    decided = env.post("approver-a", f"/requests/{dual_approved['id']}/decision", {"decision": "approve"})
    env.request_ids += [pending["id"], approved["id"], dual_pending["id"], dual_approved["id"]]
    for user, receipt in (("report", second), ("requester", decided)):
        assignment_id = env.get(user, f"/requests/{receipt['id']}", at=receipt["position"])["assignment_id"]
        assert assignment_id, receipt
        env.assignment_ids.append(assignment_id)


@pytest.fixture(scope="module")
def fuzz_env(fuzz_database_url, tmp_path_factory):
    tenant_file = tmp_path_factory.mktemp("tenant") / "tenant.yaml"
    tenant_file.write_text(yaml.safe_dump(tenant(staged=STAGED, dual=DUAL), sort_keys=False), encoding="utf-8")
    services = build_services(Settings(database_url=fuzz_database_url), clock=ManualClock(START))
    try:
        load_tenant(services.app, tenant_file)
        services.read_models.catch_up()
        app = create_app(services, project_inline=True)
        env = FuzzEnv(app=app, services=services, client=app.test_client())
        seed_requests(env)
        yield env
    finally:
        services.close()


def assert_every_read_model_at_the_head(env: FuzzEnv) -> None:
    """After a run: the read models catch up with everything the run wrote, and /readyz agrees."""
    read_models = env.services.read_models
    read_models.catch_up()
    head = read_models.head()
    positions = read_models.positions()
    assert positions, "no read models"
    assert {name: position for name, position in positions.items() if position != head} == {}, f"head {head}"
    response = env.client.get(API + "/readyz")
    assert response.status_code == 200, response.json
    assert response.json["ready"] is True
    assert response.json["head"] == head

