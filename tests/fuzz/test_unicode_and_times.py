"""Random Unicode and random times through the API, as raw JSON bytes: any text (every category,
lone surrogates as the ``\\ud800`` escapes JSON allows, NUL, control and format characters, very long
strings) in every free-text field, and random ISO 8601 strings (years 0001 to 9999, odd offsets,
naive, lower case, impossible dates) for start and end. Whatever is sent: no 5xx, and after each
example every read model reaches the head of the log (a value the API accepted must be projectable
into every read model, on both backends).

The chain per example, for one of the two-stage packages (in turn): ``manager`` requests it for
``report`` (justification, answers, start, end); ``first`` then ``second`` decide (reason); once
approved ``report`` extends it (justification) and ``first`` revokes it (reason); while pending
``manager`` cancels it (reason). Each step runs only if the previous one succeeded.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import API
from tests.fuzz.conftest import STAGED, FuzzEnv, assert_every_read_model_at_the_head

EXAMPLES = 150

ODD = ["\x00", "\ud800", "\udfff", "\udbff\udc00", "\ufeff", "\u202e", "\u200b", "\uffff", "\U0010ffff", "\r\n", "\x1b[0m",
       "{{ 7*7 }}", "<script>", "'; --", "\\", '"', "%s", "e\u0301"]
characters = st.one_of(
    st.characters(),  # everything but surrogates
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(categories=["Cc", "Cf", "Co", "Cn", "Zl", "Zp"]),
)
pieces = st.one_of(st.text(characters, min_size=1, max_size=10), st.sampled_from(ODD))
short_texts = st.lists(pieces, max_size=6).map("".join)
texts = st.one_of(
    short_texts,
    st.builds(lambda piece, times: piece * times, pieces, st.integers(100, 20_000)),  # very long
)
optional_texts = st.one_of(st.none(), texts)

offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+23:59", "-23:59", "+14:00", "-12:00", "+05:45", "+24:00", "+99:99", "+0100", "+01", ""]),
    st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
)
iso_strings = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 31),  # 02-31 and the like included
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 60),  # a leap second now and then
    st.sampled_from(["", ".5", ".123456", ".1234567891"]),
    offsets,
)
aware_datetimes = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(),  # years 1 to 9999
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
times = st.one_of(st.none(), iso_strings, aware_datetimes)
answers = st.one_of(st.none(), st.dictionaries(texts, st.one_of(optional_texts, st.integers(), st.booleans()), max_size=3))


def raw_json(value) -> bytes:
    """JSON bytes as a client would send them: lone surrogates as ``\\ud800`` escapes (valid JSON)."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


class Chain:
    def __init__(self, env: FuzzEnv) -> None:
        self.env = env
        self.answers: list[tuple[str, int]] = []

    def post(self, user: str, path: str, body: dict):
        response = self.env.client.post(
            API + path, data=raw_json(body), headers=self.env.auth(user) | {"Content-Type": "application/json"}
        )
        self.check(f"POST {path}", response)
        return response

    def get(self, user: str, path: str, at: int | None = None):
        headers = self.env.auth(user) | ({"X-Min-Position": str(at)} if at is not None else {})
        response = self.env.client.get(API + path, headers=headers)
        self.check(f"GET {path}", response)
        return response

    def check(self, call: str, response) -> None:
        self.answers.append((call, response.status_code))
        kind = (call.split("/")[0] + "/" + "/".join(call.split("/")[1:2]) + ("/" + call.split("/")[-1] if call.count("/") > 2 else "")).strip()
        self.env.by_call[(kind, response.status_code)] = self.env.by_call.get((kind, response.status_code), 0) + 1
        self.env.record(response.status_code)
        assert response.status_code < 500, (call, response.status_code, response.get_data(as_text=True)[:2000])
        assert response.is_json, (call, response.status_code, response.content_type)


@pytest.fixture(scope="module")
def packages(fuzz_env):
    """The two-stage packages in turn, from the first, for each backend's tenant."""
    return iter(range(10**9))


TEXT_FIELDS = ["justification", "first_reason", "second_reason", "extension", "revoke_reason", "cancel_reason"]
HOSTILE = [*TEXT_FIELDS, "answers", "start", "end", "start_and_end", "everything"]
PLAIN = {"justification": "needed", "first_reason": "ok", "second_reason": "ok", "extension": "more", "revoke_reason": "done", "cancel_reason": "no longer"}
PENDING = ("submitted", "pending_approval")
GRANTED = ("approved", "delivering", "delivered", "partially_delivered", "access_extended")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(
    hostile=st.sampled_from(HOSTILE),  # the field this example fills at random; the others are plain
    text=optional_texts,
    more_texts=st.lists(optional_texts, min_size=len(TEXT_FIELDS), max_size=len(TEXT_FIELDS)),
    request_answers=answers,
    start=times,
    end=times,
    deny=st.booleans(),
)
def test_any_text_and_any_time_is_answered_without_a_server_error_and_projected(
    fuzz_env, packages, hostile, text, more_texts, request_answers, start, end, deny
):
    env = fuzz_env
    chain = Chain(env)
    values = dict(PLAIN)
    if hostile in TEXT_FIELDS:
        values[hostile] = text
    elif hostile == "everything":
        values.update(zip(TEXT_FIELDS, more_texts))
    package = f"staged-{next(packages) % (STAGED - 2) + 3}"  # staged-1 and -2 hold the seeded requests
    body = {"access_package_id": package, "target_user_id": "report", "justification": values["justification"]}
    if hostile in ("answers", "everything"):
        body["answers"] = request_answers
    if hostile in ("start", "start_and_end", "everything"):
        body["start"] = start
    if hostile in ("end", "start_and_end", "everything"):
        body["end"] = end

    submitted = chain.post("manager", "/requests", body)
    if submitted.status_code == 201:
        request_id = submitted.json["id"]
        position = submitted.json["position"]
        if hostile != "cancel_reason":
            decided = chain.post("first", f"/requests/{request_id}/decision", {"decision": "deny" if deny else "approve", "reason": values["first_reason"]})
            if decided.status_code == 200 and decided.json["state"] in PENDING:
                decided = chain.post("second", f"/requests/{request_id}/decision", {"decision": "approve", "reason": values["second_reason"]})
            if decided.status_code == 200:
                position = decided.json["position"]
        state = chain.get("report", f"/requests/{request_id}", at=position)
        assignment_id = state.json.get("assignment_id")
        if assignment_id and state.json["state"] in GRANTED:
            chain.post("report", f"/assignments/{assignment_id}/extend", {"justification": values["extension"]})
            for reason in (values["revoke_reason"], "cleanup"):  # cleanup: the package free for the next example
                if chain.post("first", f"/requests/{request_id}/revoke", {"reason": reason}).status_code == 200:
                    break
        if state.json["state"] in PENDING:
            for reason in (values["cancel_reason"], "cleanup"):
                if chain.post("manager", f"/requests/{request_id}/cancel", {"reason": reason}).status_code == 200:
                    break
    for user, path in (("report", "/me/requests"), ("first", "/approvals/history"), ("auditor", "/notifications")):
        chain.get(user, path)
    assert_every_read_model_at_the_head(env)


def test_the_examples_got_past_validation(fuzz_env):
    """Not vacuous: some requests were made, decided, extended, revoked or cancelled."""
    print(f"\ncalls: {fuzz_env.calls}; statuses: {dict(sorted(fuzz_env.statuses.items()))}; by call: {dict(sorted(fuzz_env.by_call.items()))}")
    assert fuzz_env.statuses.get(201, 0) >= 10
    for call in ("POST /requests/decision", "POST /requests/revoke", "POST /requests/cancel", "POST /assignments/extend"):
        assert fuzz_env.by_call.get((call, 200), 0) + fuzz_env.by_call.get((call, 201), 0) >= 1, call
