"""``X-Min-Position``: a read waits until the read models have processed a write's position."""

from __future__ import annotations

from web.app import create_app


def test_read_with_min_position_sees_the_write(api):
    receipt = api.submit("requester", "dual-1")

    response = api.get("requester", "/me/requests", at=receipt["position"])

    assert [item["request_id"] for item in response.json["items"]] == [receipt["id"]]
    assert int(response.headers["X-Position"]) >= receipt["position"]


def test_read_without_min_position_may_answer_from_older_read_models(api):
    receipt = api.submit("requester", "dual-1")

    response = api.get("requester", "/me/requests")

    assert response.status_code == 200
    assert int(response.headers["X-Position"]) < receipt["position"]


def test_min_position_that_is_not_a_non_negative_integer_is_400(api):
    for value in ("-1", "abc", "1.5"):
        response = api.client.get("/api/v1/me/requests", headers={**api.headers("requester"), "X-Min-Position": value})
        assert response.status_code == 400, value
        assert list(response.json["error"]["details"]["fields"]) == ["X-Min-Position"]


def test_without_inline_projection_a_read_waits_for_the_projector_then_gives_up(api, services):
    client = create_app(services, config={"READ_WAIT_SECONDS": 0.05}).test_client()
    receipt = api.submit("requester", "dual-1")  # nothing projects it: no projector runs

    response = client.get("/api/v1/me/requests", headers={**api.headers("requester"), "X-Min-Position": str(receipt["position"])})

    assert response.status_code == 503
    details = response.json["error"]["details"]
    assert details["wanted"] == receipt["position"] > details["position"]


def test_without_inline_projection_a_read_sees_what_the_projector_processed(api, services):
    client = create_app(services, config={"READ_WAIT_SECONDS": 0.05}).test_client()
    receipt = api.submit("requester", "dual-1")
    services.read_models.catch_up()  # the projector's work

    response = client.get("/api/v1/me/requests", headers={**api.headers("requester"), "X-Min-Position": str(receipt["position"])})

    assert [item["request_id"] for item in response.json["items"]] == [receipt["id"]]


def test_a_position_beyond_the_head_of_the_log_is_refused_naming_the_head(api, services):
    head = services.read_models.head()

    response = api.get("requester", "/me/requests", at=head + 1000)

    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "position_beyond_head"
    assert (error["details"]["head"], error["details"]["wanted"]) == (head, head + 1000)
    assert "X-Min-Position" in error["details"]["fields"]
