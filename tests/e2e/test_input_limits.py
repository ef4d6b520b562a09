"""The API's boundary: what a body, a query string or a header may carry (domain/limits.py).

Text is valid Unicode without NUL or lone surrogates and has a maximum length; times are in the
years 1970 to 8999 in UTC and `end` comes after `start`; a body is at most 1 MiB and nests at most
MAX_JSON_DEPTH deep. A refusal is a 400 (413 for the size) naming the field and the limit, and
nothing is stored. The domain refuses the same on its own.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from domain import limits
from tests.e2e.conftest import API
from tests.e2e.test_errors import error_of


def post_text(api, user: str, path: str, text: str):
    """POSTs ``text`` as the JSON body, as it is (a lone surrogate stays a ``\\ud800`` escape)."""
    return api.client.post(API + path, headers=api.headers(user), data=text, content_type="application/json")


def refused_field(response, field: str, status: int = 400) -> str:
    """The message of the one field the 400 names."""
    error = error_of(response, status)
    assert error["code"] == "bad_request", error
    assert list(error["details"]["fields"]) == [field], error
    return " ".join(error["details"]["fields"][field])


def delivered_assignment(api) -> str:
    """The id of an assignment of ``requester`` that may be extended (staged-1, approved twice)."""
    receipt = api.submit("requester", "staged-1", justification="quarter close")
    assert api.decide("first", receipt["id"]).status_code == 200
    approved = api.decide("second", receipt["id"])
    assert approved.status_code == 200, approved.json
    items = api.get("requester", "/me/assignments", at=approved.json["position"]).json["items"]
    return items[0]["id"]


@pytest.fixture
def head(services):
    """The log's head now; a refusal leaves it where it was."""
    return services.read_models.head


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00"])
def test_a_start_before_1970_in_utc_is_400_naming_start_and_stores_nothing(api, head, start):
    before = head()

    message = refused_field(api.post("requester", "/requests", {"access_package_id": "dual-1", "start": start}), "start")

    assert "1970" in message and "8999" in message
    assert head() == before


@pytest.mark.parametrize("field, value", [("start", "9999-12-31T23:59:59-12:00"), ("end", "9000-01-01T00:00:00Z")])
def test_a_time_after_8999_in_utc_is_400_naming_it_and_stores_nothing(api, head, field, value):
    before = head()

    message = refused_field(api.post("requester", "/requests", {"access_package_id": "dual-1", field: value}), field)

    assert "8999" in message
    assert head() == before


def test_the_first_and_the_last_moments_of_the_range_are_accepted(api):
    response = api.post(
        "requester", "/requests",
        {"access_package_id": "dual-1", "start": "1970-01-01T00:00:00Z", "end": "8999-12-31T23:59:59+00:00"},
    )

    assert response.status_code == 201, response.json


def test_an_end_not_after_the_start_is_400_invalid_schedule_naming_end_in_details_fields(api, head):
    before = head()

    response = api.post(
        "requester", "/requests",
        {"access_package_id": "dual-1", "start": "2026-04-01T09:00:00Z", "end": "2026-04-01T10:00:00+01:00"},
    )

    error = error_of(response, 400)
    assert error["code"] == "invalid_schedule"
    assert list(error["details"]["fields"]) == ["end"]
    assert head() == before


# --- text ----------------------------------------------------------------------------------------


def test_nul_in_a_justification_is_400_naming_justification_and_stores_nothing(api, head):
    before = head()

    response = api.post("requester", "/requests", {"access_package_id": "dual-1", "justification": "on\u0000call"})

    assert "NUL" in refused_field(response, "justification")
    assert head() == before


def test_a_lone_surrogate_in_any_text_field_is_400_naming_it_and_stores_nothing(api, head):
    assignment_id = delivered_assignment(api)
    pending = api.submit("requester", "dual-1")
    before = head()
    cases = [
        ("/requests", '{"access_package_id": "dual-2", "justification": "a \\ud800 b"}', "justification"),
        ("/requests", '{"access_package_id": "dual-\\ud800"}', "access_package_id"),
        (f"/requests/{pending['id']}/decision", '{"decision": "approve", "reason": "\\udfff"}', "reason"),
        (f"/requests/{pending['id']}/cancel", '{"reason": "\\ud83d"}', "reason"),
        (f"/assignments/{assignment_id}/extend", '{"justification": "\\ud800\\ud800"}', "justification"),
    ]

    for path, body, field in cases:
        user = "approver-a" if path.endswith("/decision") else "requester"
        assert "surrogate" in refused_field(post_text(api, user, path, body), field), (path, body)
    assert head() == before


def test_a_lone_surrogate_in_an_unknown_field_name_is_400_naming_it(api):
    response = post_text(api, "requester", "/requests", '{"access_package_id": "dual-1", "\\ud800": 1}')

    error = error_of(response, 400)
    assert error["code"] == "bad_request"
    assert list(error["details"]["fields"]) == ["\ud800"]


LONG_TEXT_CASES = [
    ("justification", limits.MAX_JUSTIFICATION),
    ("access_package_id", limits.MAX_ID),
    ("policy_id", limits.MAX_ID),
    ("target_user_id", limits.MAX_ID),
]


@pytest.mark.parametrize("field, limit", LONG_TEXT_CASES)
def test_request_text_over_its_limit_is_400_naming_the_field_and_the_limit(api, head, field, limit):
    before = head()
    body = {"access_package_id": "dual-1", field: "x" * (limit + 1)}

    message = refused_field(api.post("requester", "/requests", body), field)

    assert f"at most {limit} characters" in message
    assert head() == before


def test_a_five_megabyte_justification_is_refused_and_stores_nothing(api, head):
    before = head()

    response = api.post("requester", "/requests", {"access_package_id": "dual-1", "justification": "x" * 5_000_000})

    assert error_of(response, 413)["code"] == "request_too_large"
    assert head() == before


def test_a_reason_over_4000_characters_is_400_naming_reason_on_every_command(api, head):
    assignment_id = delivered_assignment(api)
    pending = api.submit("requester", "dual-1")
    approved = api.submit("requester", "dual-2")
    assert api.decide("approver-a", approved["id"]).status_code == 200
    before = head()
    long = "r" * (limits.MAX_REASON + 1)
    cases = [
        ("approver-a", f"/requests/{pending['id']}/decision", {"decision": "deny", "reason": long}, "reason"),
        ("requester", f"/requests/{pending['id']}/cancel", {"reason": long}, "reason"),
        ("approver-a", f"/requests/{approved['id']}/revoke", {"reason": long}, "reason"),
        ("requester", f"/assignments/{assignment_id}/extend", {"justification": "j" * 4001}, "justification"),
        ("approver-a", f"/requests/{pending['id']}/decision", {"decision": "deny", "reason": "r" * 100_000}, "reason"),
    ]

    for user, path, body, field in cases:
        assert "at most 4000 characters" in refused_field(api.post(user, path, body), field), path
    assert head() == before


def test_text_at_its_limit_is_accepted(api):
    receipt = api.submit("requester", "dual-1", justification="j" * limits.MAX_JUSTIFICATION)

    response = api.decide("approver-a", receipt["id"], reason="r" * limits.MAX_REASON)

    assert response.status_code == 200, response.json


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers, limit",
    [
        ({"q": "a" * (limits.MAX_ANSWER + 1)}, "1000"),
        ({"q": {"nested": "object"}}, "text"),
        ({"q": [["nested", "list"]]}, "text"),
        ({"q": ["a"] * (limits.MAX_ANSWER_ITEMS + 1)}, "20"),
        ({f"q{n}": "a" for n in range(limits.MAX_ANSWERS + 1)}, "50"),
    ],
    ids=["long answer", "object", "list of lists", "long list", "too many"],
)
def test_answers_too_long_too_many_or_nested_are_400_naming_answers(api, head, answers, limit):
    before = head()

    message = json.dumps(
        error_of(api.post("requester", "/requests", {"access_package_id": "dual-1", "answers": answers}), 400)
    )

    assert '"answers"' in message and limit in message
    assert head() == before


def test_an_answer_keyed_by_no_acceptable_question_id_is_the_policys_422_invalid_answer(api, head):
    before = head()

    response = api.post("requester", "/requests", {"access_package_id": "dual-1", "answers": {"q\u0000": "a"}})

    assert error_of(response, 422)["code"] == "invalid_answer"
    assert head() == before


# --- bodies --------------------------------------------------------------------------------------


def test_a_body_over_one_mebibyte_is_413_request_too_large_naming_the_limit(api, head):
    receipt = api.submit("requester", "dual-1")
    before = head()
    body = json.dumps({"decision": "approve", "reason": "x" * (30 * 1024 * 1024)})

    response = post_text(api, "approver-a", f"/requests/{receipt['id']}/decision", body)

    error = error_of(response, 413)
    assert error["code"] == "request_too_large"
    assert error["details"] == {"max_bytes": limits.MAX_BODY_BYTES}
    assert str(limits.MAX_BODY_BYTES) in error["message"]
    assert head() == before


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_1000_deep_is_400_json_too_deep_in_every_body(api, head):
    assignment_id = delivered_assignment(api)
    pending = api.submit("requester", "dual-1")
    before = head()
    deep = nested(1000)
    cases = [
        ("requester", "/requests", f'{{"access_package_id": "dual-2", "answers": {{"q": {deep}}}}}'),
        ("approver-a", f"/requests/{pending['id']}/decision", f'{{"decision": "approve", "reason": {deep}}}'),
        ("requester", f"/requests/{pending['id']}/cancel", f'{{"reason": {deep}}}'),
        ("approver-a", f"/requests/{pending['id']}/revoke", deep),
        ("requester", f"/assignments/{assignment_id}/extend", f'{{"justification": {deep}}}'),
        ("admin", "/admin/clock", f'{{"now": {deep}}}'),
        ("requester", "/requests", "{" * 1000),  # not even JSON: still refused before parsing
    ]

    for user, path, body in cases:
        error = error_of(post_text(api, user, path, body), 400)
        assert error["code"] == "json_too_deep", (path, error)
        assert error["details"]["max_depth"] == limits.MAX_JSON_DEPTH
    assert head() == before


def test_json_nested_900_deep_is_a_clean_400(api):
    response = post_text(api, "requester", "/requests", nested(900))

    assert error_of(response, 400)["code"] == "json_too_deep"


def test_nesting_within_the_limit_is_parsed_and_checked_field_by_field(api):
    body = f'{{"access_package_id": "dual-1", "answers": {{"q": {nested(limits.MAX_JSON_DEPTH - 2)}}}}}'

    assert "answers" in error_of(post_text(api, "requester", "/requests", body), 400)["details"]["fields"]


def test_brackets_inside_strings_do_not_count_as_nesting(api):
    text = "[{" * 600 + '\\"'
    response = api.post("requester", "/requests", {"access_package_id": "dual-1", "justification": text})

    assert response.status_code == 201, response.json


# --- query strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, field",
    [
        ("request_id=%00", "request_id"),
        (f"request_id={'r' * (limits.MAX_ID + 1)}", "request_id"),
        (f"to={'t' * (limits.MAX_EMAIL + 1)}", "to"),
        ("to=a%00b", "to"),
        (f"cursor={'c' * (limits.MAX_CURSOR + 1)}", "cursor"),
    ],
)
def test_query_strings_with_nul_or_over_their_limit_are_400_naming_them(api, query, field):
    refused_field(api.get("auditor", f"/notifications?{query}"), field)


def test_a_cursor_whose_key_holds_no_text_is_400_naming_cursor(api):
    import base64

    cursor = base64.urlsafe_b64encode(b'[1, "\\ud800"]').decode().rstrip("=")

    refused_field(api.get("first", f"/approvals/history?cursor={cursor}"), "cursor")


# --- the document ---------------------------------------------------------------------------------


def test_openapi_document_states_every_input_limit(client):
    document = json.loads(client.get("/api/v1/openapi.json").get_data(as_text=True))
    schemas = document["components"]["schemas"]
    create = schemas["RequestCreate"]["properties"]
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/notifications"]["get"]["parameters"]}

    assert create["justification"]["maxLength"] == limits.MAX_JUSTIFICATION
    assert {create[name]["maxLength"] for name in ("access_package_id", "policy_id", "target_user_id")} == {limits.MAX_ID}
    assert create["answers"]["maxProperties"] == limits.MAX_ANSWERS
    assert create["start"]["format"] == create["end"]["format"] == "date-time"
    assert create["start"]["pattern"] == create["end"]["pattern"]
    assert schemas["DecisionCreate"]["properties"]["reason"]["maxLength"] == limits.MAX_REASON
    assert schemas["RevocationCreate"]["properties"]["reason"]["maxLength"] == limits.MAX_REASON
    assert schemas["CancellationCreate"]["properties"]["reason"]["maxLength"] == limits.MAX_REASON
    assert schemas["ExtensionCreate"]["properties"]["justification"]["maxLength"] == limits.MAX_JUSTIFICATION
    assert parameters["cursor"]["maxLength"] == limits.MAX_CURSOR
    assert parameters["to"]["maxLength"] == limits.MAX_EMAIL
    assert parameters["request_id"]["maxLength"] == limits.MAX_ID


# --- the domain, on its own ------------------------------------------------------------------------


def test_the_domain_refuses_out_of_range_times_with_time_out_of_range(services, head):
    before = head()
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))

    for field, moment in (("start", year_one), ("start", last), ("end", last)):
        with pytest.raises(limits.TimeOutOfRange) as refused:
            services.app.submit_request(requestor_id="requester", access_package_id="dual-1", **{field: moment})
        assert refused.value.details["field"] == field
    assert head() == before


def test_the_domain_refuses_text_over_its_limit_or_with_nul_with_invalid_text(services, head):
    receipt = services.app.submit_request(requestor_id="requester", access_package_id="dual-1")
    before = head()
    commands = [
        lambda: services.app.submit_request(requestor_id="requester", access_package_id="dual-2", justification="j" * 4001),
        lambda: services.app.submit_request(requestor_id="requester", access_package_id="dual-\u0000"),
        lambda: services.app.decide(request_id=receipt.id, approver_id="approver-a", decision="deny", reason="r" * 4001),
        lambda: services.app.cancel_request(request_id=receipt.id, actor_id="requester", reason="\ud800"),
    ]

    for command in commands:
        with pytest.raises(limits.InvalidText):
            command()
    assert head() == before
