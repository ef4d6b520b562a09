"""The OpenAPI document at /api/v1/openapi.json."""

from __future__ import annotations

import json

PATHS = {
    "/api/v1/access-packages": {"get"},
    "/api/v1/requests": {"post"},
    "/api/v1/requests/{request_id}": {"get"},
    "/api/v1/requests/{request_id}/decision": {"post"},
    "/api/v1/requests/{request_id}/cancel": {"post"},
    "/api/v1/requests/{request_id}/revoke": {"post"},
    "/api/v1/me/requests": {"get"},
    "/api/v1/me/assignments": {"get"},
    "/api/v1/assignments/{assignment_id}/extend": {"post"},
    "/api/v1/approvals/pending": {"get"},
    "/api/v1/approvals/history": {"get"},
    "/api/v1/notifications": {"get"},
    "/api/v1/audit/events": {"get"},
    "/api/v1/audit/requests/{request_id}/trail": {"get"},
    "/api/v1/audit/requests/{request_id}/explain": {"get"},
    "/api/v1/audit/access": {"get"},
    "/api/v1/admin/clock": {"get", "post"},
    "/api/v1/healthz": {"get"},
    "/api/v1/readyz": {"get"},
}


def openapi(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


def test_openapi_document_is_json_listing_every_path_and_method(client):
    document = openapi(client)

    assert document["openapi"].startswith("3.")
    assert {path: {m for m in ops if m != "parameters"} for path, ops in document["paths"].items()} == PATHS
    assert set(document["components"]["schemas"]["Error"]["properties"]) == {"error"}


def test_openapi_document_declares_bearer_security_except_for_health(client):
    document = openapi(client)

    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "an API token"
    }
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/api/v1/healthz"]["get"]["security"] == []
    assert document["paths"]["/api/v1/readyz"]["get"]["security"] == []



def test_every_list_page_answered_matches_its_documented_schema(api):
    import marshmallow as ma

    from web.api.access_packages.schemas import AccessPackagePageSchema
    from web.api.approvals.schemas import HistoryPageSchema, PendingPageSchema
    from web.api.me.schemas import AssignmentPageSchema, MyRequestPageSchema

    approved = api.submit("requester", "dual-1")
    api.decide("approver-a", approved["id"])
    api.submit("requester", "dual-2")
    api.services.read_models.catch_up()
    for user, path, schema in (
        ("approver-b", "/approvals/pending", PendingPageSchema),
        ("approver-b", "/approvals/history", HistoryPageSchema),
        ("requester", "/me/requests", MyRequestPageSchema),
        ("requester", "/me/assignments", AssignmentPageSchema),
        ("requester", "/access-packages", AccessPackagePageSchema),
    ):
        response = api.get(user, path)
        assert response.status_code == 200 and response.json["items"], path
        try:
            schema().load(response.json, unknown=ma.INCLUDE)
        except ma.ValidationError as error:
            raise AssertionError(f"{path} answered what its schema does not describe: {error.messages}") from None
