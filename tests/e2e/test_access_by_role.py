"""Every endpoint, called by every kind of user, answers what API.md's "who" column says.

The request of the table is a two-stage request that ``manager`` made on behalf of ``report``
(their direct report): ``first`` approves stage 1, ``second`` stage 2. Each call that may change
something gets a request of its own (a fresh package), in the state the endpoint is about:
pending at stage 1 to decide or cancel it, approved (by both stages) to revoke it or extend the
access it granted.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

ROLES = {
    "requestor": "manager",
    "target": "report",
    "approver of this stage": "first",
    "approver of another stage": "second",
    "unrelated user": "outsider",
    "auditor": "auditor",
    "admin": "admin",
}

# status per role, in the order of ROLES:
#                                   requestor target this  other unrel. auditor admin
EXPECTED = {
    "GET /access-packages":           (200,      200,   200,  200,  200,   200,    200),
    "POST /requests":                 (201,      201,   403,  403,  403,   403,    201),  # on behalf of report: their manager or an admin
    "GET /requests/{id}":             (200,      200,   200,  200,  403,   200,    403),
    "POST /requests/{id}/decision":   (403,      403,   200,  403,  403,   403,    403),
    "POST /requests/{id}/cancel":     (200,      403,   403,  403,  403,   403,    403),
    "POST /requests/{id}/revoke":     (403,      403,   200,  200,  403,   403,    403),  # both stages approved it
    "GET /me/requests":               (200,      200,   200,  200,  200,   200,    200),
    "GET /me/assignments":            (200,      200,   200,  200,  200,   200,    200),
    "POST /assignments/{id}/extend":  (403,      201,   403,  403,  403,   403,    403),
    "GET /approvals/pending":         (200,      200,   200,  200,  200,   200,    200),
    "GET /approvals/history":         (200,      200,   200,  200,  200,   200,    200),
    "GET /notifications":             (403,      403,   403,  403,  403,   200,    200),
    "GET /audit/events":              (403,      403,   403,  403,  403,   200,    403),
    "GET /audit/requests/{id}/trail": (403,      403,   403,  403,  403,   200,    403),
    "GET /audit/requests/{id}/explain": (403,    403,   403,  403,  403,   200,    403),
    "GET /audit/access":              (403,      403,   403,  403,  403,   200,    403),
    "GET /admin/clock":               (403,      403,   403,  403,  403,   403,    200),  # the tests' clock is manual
    "POST /admin/clock":              (403,      403,   403,  403,  403,   403,    200),
    "GET /healthz":                   (200,      200,   200,  200,  200,   200,    200),
    "GET /readyz":                    (200,      200,   200,  200,  200,   200,    200),
}
FRESH_REQUESTS = sum(1 for endpoint in EXPECTED if endpoint.startswith("POST")) * len(ROLES) + 1


@pytest.fixture
def staged_packages() -> int:
    return FRESH_REQUESTS


class Scenario:
    """Makes the requests the calls are about, each for a package not used before."""

    def __init__(self, api) -> None:
        self.api = api
        self.packages = (f"staged-{n}" for n in itertools.count(1))
        self.shared: dict | None = None

    def submit_for_report(self) -> dict:
        return self.api.submit("manager", next(self.packages), target_user_id="report", justification="role table")

    def approved(self) -> dict:
        receipt = self.submit_for_report()
        for approver in ("first", "second"):
            response = self.api.decide(approver, receipt["id"])
            assert response.status_code == 200, response.json
        return response.json

    def call(self, endpoint: str, user: str):
        api = self.api
        method, path = endpoint.split(" ")
        if endpoint == "POST /requests":
            body = {"access_package_id": next(self.packages), "justification": "role table"}
            if user != "report":
                body["target_user_id"] = "report"
            return api.post(user, path, body)
        if endpoint == "GET /requests/{id}":
            self.shared = self.shared or self.submit_for_report()
            return api.get(user, f"/requests/{self.shared['id']}", at=self.shared["position"])
        if endpoint.startswith("GET /audit/requests/{id}/"):
            self.shared = self.shared or self.submit_for_report()
            return api.get(user, path.replace("{id}", self.shared["id"]))
        if endpoint == "GET /audit/access":
            return api.get(user, f"{path}?access_package_id=staged-1&at={api.services.app.clock.now().isoformat().replace('+', '%2B')}")
        if endpoint == "POST /requests/{id}/decision":
            return api.decide(user, self.submit_for_report()["id"])
        if endpoint == "POST /requests/{id}/cancel":
            return api.post(user, f"/requests/{self.submit_for_report()['id']}/cancel", {})
        if endpoint == "POST /requests/{id}/revoke":
            return api.post(user, f"/requests/{self.approved()['id']}/revoke", {"reason": "role table"})
        if endpoint == "POST /assignments/{id}/extend":
            approval = self.approved()
            assignment_id = api.get("report", f"/requests/{approval['id']}", at=approval["position"]).json["assignment_id"]
            return api.post(user, f"/assignments/{assignment_id}/extend", {"justification": "role table"})
        if endpoint == "POST /admin/clock":
            later = api.services.app.clock.now() + timedelta(minutes=1)
            return api.post(user, path, {"now": later.isoformat()})
        assert method == "GET"
        return api.get(user, path)


def test_every_endpoint_answers_each_role_as_api_md_says(api):
    scenario = Scenario(api)
    answered = {}
    for endpoint, statuses in EXPECTED.items():
        for role, user in ROLES.items():
            response = scenario.call(endpoint, user)
            answered[(endpoint, role)] = response.status_code
            if response.status_code >= 400:
                assert response.json["error"]["code"], (endpoint, role)

    expected = {(endpoint, role): status for endpoint, statuses in EXPECTED.items() for role, status in zip(ROLES, statuses)}
    assert {key: status for key, status in answered.items() if status != expected[key]} == {}
