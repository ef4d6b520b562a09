"""``GET /notifications``: the outbox over HTTP, for administrators and auditors."""

from __future__ import annotations


def test_without_smtp_the_emails_stay_in_the_outbox_readable_by_an_auditor(api):
    receipt = api.submit("requester", "dual-1")
    response = api.get("auditor", f"/notifications?request_id={receipt['id']}", at=receipt["position"])
    assert response.status_code == 200
    items = sorted(response.json["items"], key=lambda item: item["to"])
    assert [(i["number"], i["recipient_id"], i["to"], i["status"]) for i in items] == [
        (2, "approver-a", "approver-a@example.test", "pending"),
        (2, "approver-b", "approver-b@example.test", "pending"),
    ]
    assert items[0]["subject"] == "Action required: Approve or deny request by March 16, 2026"
    assert items[0]["request_id"] == receipt["id"] and items[0]["sent_at"] is None


def test_the_outbox_is_filtered_by_recipient(api):
    first = api.submit("requester", "dual-1")
    api.decide("approver-a", first["id"])
    response = api.get("admin", "/notifications?to=requester@example.test", at=api.services.read_models.head())
    assert [item["number"] for item in response.json["items"]] == [18]
    by_id = api.get("admin", "/notifications?to=approver-b", at=api.services.read_models.head())
    assert sorted(item["number"] for item in by_id.json["items"]) == [2, 7]


def test_other_users_may_not_read_the_outbox(api):
    response = api.get("requester", "/notifications")
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
