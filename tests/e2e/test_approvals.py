"""One stage, two approvers: both see the request; the first decision wins and both see who made it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["request_id"] for item in response.json["items"]]


def test_submitting_answers_201_with_id_state_and_position(api):
    response = api.post("requester", "/requests", {"access_package_id": "dual-1"})

    assert response.status_code == 201
    assert set(response.json) == {"id", "state", "position"}
    assert response.json["state"] == "pending_approval"
    assert response.headers["Location"] == f"/api/v1/requests/{response.json['id']}"


def test_submitted_request_is_pending_for_both_approvers_of_the_stage(api):
    receipt = api.submit("requester", "dual-1")

    for approver in ("approver-a", "approver-b"):
        assert ids(api.get(approver, "/approvals/pending", at=receipt["position"])) == [receipt["id"]]


def test_approved_request_leaves_both_pending_lists(api):
    receipt = api.submit("requester", "dual-1")
    approval = api.decide("approver-a", receipt["id"])
    assert approval.status_code == 200, approval.json

    for approver in ("approver-a", "approver-b"):
        assert ids(api.get(approver, "/approvals/pending", at=approval.json["position"])) == []


def test_approved_request_shows_in_both_histories_with_the_approver_as_decider(api):
    receipt = api.submit("requester", "dual-1")
    approval = api.decide("approver-a", receipt["id"], reason="fine")

    for approver in ("approver-a", "approver-b"):
        history = api.get(approver, "/approvals/history", at=approval.json["position"])
        assert ids(history) == [receipt["id"]]
        item = history.json["items"][0]
        assert (item["decision"], item["decided_by"], item["reason"]) == ("approved", "approver-a", "fine")
        assert item["decided_at"]


def test_second_approver_gets_conflict_naming_the_first(api):
    receipt = api.submit("requester", "dual-1")
    assert api.decide("approver-a", receipt["id"]).status_code == 200

    late = api.decide("approver-b", receipt["id"], "deny")

    assert late.status_code == 409
    assert late.json["error"]["code"] == "already_decided"
    assert late.json["error"]["details"]["decided_by"] == "approver-a"


def test_concurrent_decisions_yield_exactly_one_success_and_one_conflict(app, api):
    receipt = api.submit("requester", "dual-1")
    headers = {approver: api.headers(approver) for approver in ("approver-a", "approver-b")}
    barrier = threading.Barrier(2)

    def decide(approver: str):
        client = app.test_client()
        barrier.wait()
        return client.post(
            f"/api/v1/requests/{receipt['id']}/decision",
            headers=headers[approver],
            json={"decision": "approve" if approver == "approver-a" else "deny"},
        )

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(decide, ["approver-a", "approver-b"]))

    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(a for a, r in zip(["approver-a", "approver-b"], responses) if r.status_code == 200)
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json["error"]["details"]["decided_by"] == winner


def test_detail_shows_the_stage_decision_and_who_made_it(api):
    receipt = api.submit("requester", "dual-1")
    approval = api.decide("approver-b", receipt["id"])

    details = api.get("requester", f"/requests/{receipt['id']}", at=approval.json["position"])

    assert details.status_code == 200
    [stage] = details.json["stages"]
    assert stage["approvers"] == ["approver-a", "approver-b"]
    assert (stage["decision"], stage["decided_by"]) == ("approved", "approver-b")
    assert details.json["state"] == approval.json["state"]
