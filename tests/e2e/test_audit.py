"""``/audit/*``: the decision trail, the log, who held access when, and why a decision, for auditors."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from tests.e2e.conftest import START
from tests.e2e.test_extensions import move_clock

FIELDS = {"position", "originator_id", "type", "version", "timestamp", "actor", "data"}


def approved_dual(api, reason: str = "fine") -> dict:
    receipt = api.submit("requester", "dual-1")
    response = api.decide("approver-a", receipt["id"], reason=reason)
    assert response.status_code == 200, response.json
    return {"id": receipt["id"], "position": response.json["position"]}


def when(moment) -> str:
    return quote(moment.isoformat())


def test_a_trail_holds_the_requests_events_and_those_of_the_access_it_granted_in_log_order(api):
    request = approved_dual(api)
    response = api.get("auditor", f"/audit/requests/{request['id']}/trail")
    assert response.status_code == 200, response.json
    items = response.json["items"]
    assert all(set(item) == FIELDS for item in items)
    assert [item["position"] for item in items] == sorted(item["position"] for item in items)
    types = [item["type"] for item in items]
    assert types[:2] == ["AccessRequest.Submitted", "AccessRequest.StageStarted"]
    for expected in ("AccessRequest.StageApproved", "AccessRequest.Approved", "Assignment.RequestOpened",
                     "Assignment.Delivering", "Assignment.ResourceDelivered", "Assignment.Delivered"):
        assert expected in types
    decision = items[types.index("AccessRequest.StageApproved")]
    assert decision["actor"] == "approver-a" and decision["data"]["reason"] == "fine" and decision["data"]["stage"] == 1
    assert items[0]["actor"] == "requester" and items[0]["data"]["requestor_id"] == "requester"
    assert items[0]["timestamp"].startswith("2026-03-02T09:00:00")


def test_a_trail_leaves_out_the_events_of_another_request_of_the_same_assignment(api):
    first = approved_dual(api)
    revoked = api.post("approver-a", f"/requests/{first['id']}/revoke", {"reason": "not needed"})
    assert revoked.status_code == 200, revoked.json
    second = approved_dual(api)
    first_trail = api.get("auditor", f"/audit/requests/{first['id']}/trail").json["items"]
    second_trail = api.get("auditor", f"/audit/requests/{second['id']}/trail").json["items"]
    assert not {e["position"] for e in first_trail} & {e["position"] for e in second_trail}
    removal = [e for e in first_trail if e["type"] == "Assignment.Removed"]
    assert len(removal) == 1 and removal[0]["actor"] == "approver-a"
    assert sum(e["type"] == "Assignment.Delivering" for e in second_trail) == 1


def test_the_log_in_pages_gives_every_event_once_in_order(api):
    approved_dual(api)
    head = api.services.read_models.head()
    positions, cursor = [], None
    while True:
        query = "/audit/events?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = api.get("auditor", query).json
        assert len(page["items"]) <= 7
        positions += [item["position"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert positions == sorted(set(positions)) and positions[-1] == head
    assert page["position"] == head
    again = api.get("auditor", f"/audit/events?after={positions[10]}&limit=3").json["items"]
    assert [e["position"] for e in again] == positions[11:14]


def test_the_log_is_filtered_by_type_originator_and_time(api):
    request = approved_dual(api)
    move_clock(api, START + timedelta(days=2))
    second = api.submit("requester", "dual-2")
    by_type = api.get("auditor", "/audit/events?type=AccessRequest.Submitted&type=AccessRequest.Approved&limit=100").json
    assert {e["type"] for e in by_type["items"]} == {"AccessRequest.Submitted", "AccessRequest.Approved"}
    assert [e["originator_id"] for e in by_type["items"] if e["type"] == "AccessRequest.Submitted"] == [request["id"], second["id"]]
    by_originator = api.get("auditor", f"/audit/events?originator_id={second['id']}").json["items"]
    assert {e["originator_id"] for e in by_originator} == {second["id"]} and by_originator[0]["version"] == 1
    since = api.get("auditor", f"/audit/events?since={when(START + timedelta(days=1))}&type=AccessRequest.Submitted").json["items"]
    assert [e["originator_id"] for e in since] == [second["id"]]
    until = api.get("auditor", f"/audit/events?until={when(START + timedelta(days=1))}&type=AccessRequest.Submitted").json["items"]
    assert [e["originator_id"] for e in until] == [request["id"]]


def test_an_unknown_event_type_is_refused_naming_it(api):
    response = api.get("auditor", "/audit/events?type=AccessRequest.Teleported")
    assert response.status_code == 400
    assert "type" in str(response.json["error"]["details"]) and "AccessRequest.Submitted" in str(response.json)


def test_who_held_a_package_at_a_moment_with_who_approved_it(api):
    request = approved_dual(api, reason="needed for close")
    move_clock(api, START + timedelta(days=3))
    revoked = api.post("approver-a", f"/requests/{request['id']}/revoke", {"reason": "left the team"})
    assert revoked.status_code == 200, revoked.json
    at = revoked.json["position"]

    def holders(moment):
        response = api.get("auditor", f"/audit/access?access_package_id=dual-1&at={when(moment)}", at=at)
        assert response.status_code == 200, response.json
        return response.json["items"]

    assert holders(START - timedelta(seconds=1)) == []
    (period,) = holders(START + timedelta(days=1))
    assert period["user_id"] == "requester" and period["request_id"] == request["id"]
    assert period["approved_by"] == [{"stage": 1, "user_id": "approver-a", "reason": "needed for close", "decided_at": period["approved_by"][0]["decided_at"]}]
    assert period["policy_id"] == "dual-1-policy" and period["policy_version"] == 1
    assert period["ended_at"].startswith("2026-03-05T09:00:00") and period["end_reason"] == "removed"
    assert holders(START + timedelta(days=3)) == []  # ended at that very moment
    by_user = api.get("auditor", f"/audit/access?user_id=requester&at={when(START + timedelta(days=1))}", at=at).json["items"]
    assert [p["access_package_id"] for p in by_user] == ["dual-1"]


def test_an_access_answer_gives_the_position_of_exactly_what_it_read_even_when_nobody_held_it(api):
    approved_dual(api)
    api.services.read_models.catch_up()
    reached = api.services.read_models.positions()["access_history"]
    for moment in (START + timedelta(days=1), START - timedelta(days=1)):  # a holder; nobody
        response = api.get("auditor", f"/audit/access?access_package_id=dual-1&at={when(moment)}")
        assert response.status_code == 200 and response.headers["X-Position"] == str(reached)
    assert len(api.get("auditor", f"/audit/access?access_package_id=dual-1&at={when(START + timedelta(days=1))}").json["items"]) == 1


def test_an_access_question_waits_for_the_position_asked_for_and_refuses_one_no_write_answered(api):
    request = approved_dual(api)
    response = api.get("auditor", f"/audit/access?user_id=requester&at={when(START + timedelta(days=1))}", at=request["position"])
    assert response.status_code == 200 and int(response.headers["X-Position"]) >= request["position"]
    assert [p["request_id"] for p in response.json["items"]] == [request["id"]]
    beyond = api.services.read_models.head() + 1
    response = api.get("auditor", f"/audit/access?user_id=requester&at={when(START)}", at=beyond)
    assert response.status_code == 400 and response.json["error"]["code"] == "position_beyond_head"


def test_the_access_question_needs_a_moment_and_a_package_or_user(api):
    assert api.get("auditor", "/audit/access?access_package_id=dual-1").status_code == 400
    response = api.get("auditor", f"/audit/access?at={when(START)}")
    assert response.status_code == 422 and response.json["error"]["code"] == "subject_missing"


def test_an_explanation_says_who_could_decide_and_why_and_what_the_approver_was_shown(api):
    receipt = api.submit("manager", "staged-1", target_user_id="report", justification="for the launch")
    move_clock(api, START + timedelta(days=1))
    assert api.decide("first", receipt["id"], reason="ok by me").status_code == 200
    assert api.decide("second", receipt["id"], decision="deny", reason="budget").status_code == 200
    response = api.get("auditor", f"/audit/requests/{receipt['id']}/explain")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["policy_id"] == "staged-1-policy" and body["policy_version"] == 1
    assert body["policy"]["approval"]["stages"][0]["approvers"] == [{"user": "first"}]
    one, two = body["stages"]
    assert one["approvers"] == [{"user_id": "first", "why": ["named in the policy"]}]
    assert (one["decision"], one["decided_by"], one["reason"]) == ("approved", "first", "ok by me")
    assert (two["decision"], two["decided_by"], two["reason"]) == ("denied", "second", "budget")
    shown = two["shown_to_approver"]
    assert shown["requestor"]["display_name"] == "Manager" and shown["target"]["user_id"] == "report"
    assert shown["justification"] == "for the launch"
    assert shown["earlier_stages"][0]["decided_by"] == "first"
    assert shown["as_of_position"] < two["decision_position"]
    assert body["outcome"]["type"] == "AccessRequest.Denied" and body["outcome"]["by"] == "second"


def test_only_auditors_read_the_audit_endpoints(api):
    request = approved_dual(api)
    for path in ("/audit/events", f"/audit/requests/{request['id']}/trail", f"/audit/requests/{request['id']}/explain",
                 f"/audit/access?access_package_id=dual-1&at={when(START)}"):
        for user in ("requester", "approver-a", "admin"):
            response = api.get(user, path)
            assert response.status_code == 403, (user, path, response.json)


def test_an_unknown_or_malformed_request_id_is_404(api):
    for request_id in ("5d0e7f4c-0000-4000-8000-000000000000", "not-a-uuid"):
        for suffix in ("trail", "explain"):
            response = api.get("auditor", f"/audit/requests/{request_id}/{suffix}")
            assert response.status_code == 404 and response.json["error"]["code"] == "unknown_request"
