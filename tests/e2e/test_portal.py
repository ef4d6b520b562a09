"""The portal's pages through HTTP (a browser walks them in tests/browser): sign-in by a one-time
link, sessions, CSRF, and each page's reads and writes going through the application."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from entitlements import sign_in
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Person:
    """One browser: its own cookies, signed in as ``user_id`` by a sign-in link."""

    def __init__(self, app, services, user_id: str | None = None) -> None:
        self.client = app.test_client()
        self.services = services
        if user_id is not None:
            self.sign_in(user_id)

    def link(self, user_id: str) -> str:
        secret, _ = self.services.sign_in.issue_link(user_id)
        return sign_in.LINK_PATH + secret

    def sign_in(self, user_id: str):
        link = self.link(user_id)
        page = self.client.get(link)
        assert page.status_code == 200, page.text
        return self.client.post(link, data={"csrf_token": token_of(page.text)})

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post_form(self, page_path: str, action: str, data: dict | None = None):
        """Posts ``data`` to ``action`` as the form of ``page_path`` would (with its CSRF token)."""
        page = self.client.get(page_path)
        assert page.status_code == 200, page.text
        return self.client.post(action, data={"csrf_token": token_of(page.text), **(data or {})})


def token_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@pytest.fixture
def person(app, services):
    def make(user_id: str | None = None) -> Person:
        return Person(app, services, user_id)

    return make


def submitted(api, user: str = "requester", package: str = "dual-1", **fields) -> str:
    return api.submit(user, package, **fields)["id"]


# --- sign-in -------------------------------------------------------------------------------------


def test_a_page_asks_someone_not_signed_in_to_sign_in(person):
    response = person().get("/approvals")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")


def test_opening_a_sign_in_link_changes_nothing_until_the_person_confirms(person, services):
    browser = person()
    link = browser.link("approver-a")
    assert browser.get(link).status_code == 200
    assert browser.get(link).status_code == 200  # still unused: a mail scanner's GET does not spend it
    assert "Sign in as <strong>Approver-A</strong>" in browser.get(link).text
    assert browser.get("/approvals").status_code == 302


def test_a_sign_in_link_signs_in_once(person):
    browser = person()
    link = browser.link("approver-a")
    page = browser.get(link)
    assert browser.client.post(link, data={"csrf_token": token_of(page.text)}).status_code == 302
    assert browser.get("/approvals").status_code == 200
    second = person()
    again = second.get(link)
    assert again.status_code == 400
    assert "already used" in again.text


def test_a_sign_in_link_lapses_after_15_minutes(person, services, monkeypatch):
    browser = person()
    link = browser.link("approver-a")
    later = sign_in.system_now() + sign_in.LINK_VALID_FOR + timedelta(seconds=1)
    monkeypatch.setattr(services.sign_in, "now", lambda: later)
    page = browser.get(link)
    assert page.status_code == 400
    assert "expired" in page.text


def test_an_unknown_sign_in_link_is_refused_in_words(person):
    page = person().get(sign_in.LINK_PATH + "not-a-link")
    assert page.status_code == 400
    assert "not valid" in page.text


def test_the_email_link_opens_the_request_after_sign_in(person, api):
    request_id = submitted(api)
    browser = person()
    first = browser.get(f"/requests/{request_id}")
    assert first.status_code == 302 and first.headers["Location"].endswith("/sign-in")
    signed_in = browser.sign_in("approver-a")
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == f"/requests/{request_id}"
    page = browser.get(signed_in.headers["Location"])
    assert page.status_code == 200
    assert "Dual 1" in page.text and "Your decision" in page.text


def test_sign_in_never_sends_the_browser_to_another_site(person):
    browser = person()
    browser.get("/sign-in?next=https://evil.example/")
    with browser.client.session_transaction() as cookie:
        cookie["next"] = "//evil.example/x"
    assert browser.sign_in("approver-a").headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\t/evil.example/", "/\n/evil.example/", "/\\evil.example/", "https://evil.example/"])
def test_a_return_address_a_browser_could_read_as_another_site_is_replaced_by_home(person, target):
    browser = person()
    with browser.client.session_transaction() as cookie:
        cookie["next"] = target
    assert browser.sign_in("approver-a").headers["Location"] == "/"


def test_after_sign_out_the_same_session_cookie_is_refused(person):
    browser = person("approver-a")
    cookie = browser.client.get_cookie("entitlements_session").value
    assert browser.post_form("/", "/sign-out").status_code == 302
    thief = person()
    thief.client.set_cookie("entitlements_session", cookie)
    assert thief.get("/approvals").status_code == 302


def test_a_session_lapses_after_being_idle_for_an_hour(person, services, monkeypatch):
    browser = person("approver-a")
    later = sign_in.system_now() + sign_in.IDLE_TIMEOUT + timedelta(seconds=1)
    monkeypatch.setattr(services.sign_in, "now", lambda: later)
    assert browser.get("/approvals").status_code == 302


def test_a_session_lapses_twelve_hours_after_sign_in_however_busy(person, services, monkeypatch):
    browser = person("approver-a")
    start = sign_in.system_now()
    for half_hours in range(1, 24):
        at = start + timedelta(minutes=30 * half_hours - 1)
        monkeypatch.setattr(services.sign_in, "now", lambda at=at: at)
        assert browser.get("/approvals").status_code == 200
    at = start + sign_in.ABSOLUTE_TIMEOUT + timedelta(seconds=1)
    monkeypatch.setattr(services.sign_in, "now", lambda: at)
    assert browser.get("/approvals").status_code == 302


def test_a_user_removed_from_the_directory_loses_the_session_at_once(person, services):
    browser = person("approver-a")
    with services.store.transaction() as tx:
        tx.execute("DELETE FROM directory_users WHERE user_id = ?", ("approver-a",))
    assert browser.get("/approvals").status_code == 302


def test_the_session_cookie_is_http_only_and_same_site_lax(person):
    browser = person()
    link = browser.link("approver-a")
    page = browser.get(link)
    response = browser.client.post(link, data={"csrf_token": token_of(page.text)})
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("entitlements_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- CSRF and methods ------------------------------------------------------------------------------


def test_a_form_posted_without_its_csrf_token_changes_nothing(person, api, services):
    request_id = submitted(api)
    browser = person("approver-a")
    refused = browser.client.post(f"/requests/{request_id}/decision", data={"decision": "approve", "reason": "ok"})
    assert refused.status_code == 400
    assert "did not come from this site" in refused.text
    assert services.read_models.request(request_id)["state"] == "pending_approval"


def test_a_csrf_token_of_another_session_is_refused(person, api, services):
    request_id = submitted(api)
    mallory = person("outsider")
    stolen = token_of(mallory.get("/").text)
    victim = person("approver-a")
    refused = victim.client.post(f"/requests/{request_id}/decision", data={"csrf_token": stolen, "decision": "approve"})
    assert refused.status_code == 400
    assert services.read_models.request(request_id)["state"] == "pending_approval"


# --- approvals -------------------------------------------------------------------------------------


def test_the_pending_tab_lists_what_awaits_the_approver(person, api):
    request_id = submitted(api)
    page = person("approver-a").get("/approvals")
    assert page.status_code == 200
    assert f"/requests/{request_id}" in page.text
    assert "Requester" in page.text and "Dual 1" in page.text


def test_an_approver_approves_with_a_reason_and_the_other_approver_sees_who_decided(person, api, services):
    request_id = submitted(api)
    approver = person("approver-a")
    done = approver.post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve", "reason": "needed for the audit"})
    assert done.status_code == 302 and done.headers["Location"] == f"/requests/{request_id}"
    details = approver.get(done.headers["Location"]).text
    assert "You approved this request." in details
    assert "needed for the audit" in details
    assert services.read_models.request(request_id)["stages"][0]["decided_by"] == "approver-a"
    other = person("approver-b")
    assert f"/requests/{request_id}" not in other.get("/approvals?tab=pending").text
    history = other.get("/approvals?tab=history").text
    assert f"/requests/{request_id}" in history and "Approver-A" in history
    seen = other.get(f"/requests/{request_id}").text
    assert "Approver-A" in seen and "Your decision" not in seen


def test_a_deny_is_recorded_with_its_reason(person, api, services):
    request_id = submitted(api)
    approver = person("approver-a")
    approver.post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "deny", "reason": "not your team"})
    assert services.read_models.request(request_id)["state"] == "denied"
    assert "not your team" in person("requester").get(f"/requests/{request_id}").text


def test_a_decision_without_approve_or_deny_is_shown_beside_the_field(person, api, services):
    request_id = submitted(api)
    page = person("approver-a").post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"reason": "hm"})
    assert page.status_code == 400
    assert 'id="decision-decision-error"' in page.text
    assert services.read_models.request(request_id)["state"] == "pending_approval"


def test_a_decision_on_a_request_decided_meanwhile_says_who_decided(person, api):
    request_id = submitted(api)
    slow = person("approver-a")
    form = slow.get(f"/requests/{request_id}")
    api.decide("approver-b", request_id, "approve")
    late = slow.client.post(f"/requests/{request_id}/decision", data={"csrf_token": token_of(form.text), "decision": "deny"})
    assert late.status_code == 409
    assert "Approver-B" in late.text


def test_the_two_stage_request_goes_to_the_second_approver_after_the_first(person, api, services):
    request_id = submitted(api, "requester", "staged-1", justification="project X")
    person("first").post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve"})
    second = person("second")
    assert f"/requests/{request_id}" in second.get("/approvals").text
    second.post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve", "reason": "fine"})
    details = services.read_models.request(request_id)
    assert [stage["decided_by"] for stage in details["stages"]] == ["first", "second"]


def test_the_approver_who_approved_removes_the_access_with_a_reason(person, api, services):
    request_id = submitted(api)
    approver = person("approver-a")
    approver.post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve"})
    page = approver.get(f"/requests/{request_id}").text
    assert "Remove access" in page
    missing = approver.post_form(f"/requests/{request_id}", f"/requests/{request_id}/revoke", {"reason": ""})
    assert missing.status_code == 400 and 'id="remove-reason-error"' in missing.text
    done = approver.post_form(f"/requests/{request_id}", f"/requests/{request_id}/revoke", {"reason": "left the project"})
    assert done.status_code == 302
    assert services.read_models.request(request_id)["revoked_by"] == "approver-a"


# --- requestor -------------------------------------------------------------------------------------


def test_the_requestor_sees_their_requests_newest_first(person, api):
    older = submitted(api, package="dual-1")
    newer = submitted(api, package="dual-2")
    page = person("requester").get("/requests").text
    assert page.index(f"/requests/{newer}") < page.index(f"/requests/{older}")


def test_the_requestor_cancels_a_pending_request(person, api, services):
    request_id = submitted(api)
    requester = person("requester")
    assert "Cancel request" in requester.get(f"/requests/{request_id}").text
    requester.post_form(f"/requests/{request_id}", f"/requests/{request_id}/cancel")
    assert services.read_models.request(request_id)["state"] == "cancelled"
    assert "Cancel request" not in requester.get(f"/requests/{request_id}").text


def test_my_access_shows_delivered_access_and_extends_it(person, api, services, clock):
    request_id = submitted(api, "requester", "staged-1", justification="project X")
    api.decide("first", request_id, "approve")
    api.decide("second", request_id, "approve")
    services.read_models.catch_up()
    requester = person("requester")
    page = requester.get("/access").text
    assert "Staged 1" in page
    clock.advance(timedelta(days=25))  # within the last period of access: extension may be asked for
    services.read_models.catch_up()
    page = requester.get("/access")
    assert "Extend" in page.text
    assignment_id = services.read_models.assignments_of("requester", limit=10).items[0]["id"]
    done = requester.post_form("/access", f"/access/{assignment_id}/extend", {"justification": "still needed"})
    assert done.status_code == 302
    assert services.read_models.assignments_of("requester", limit=10).items[0]["state"] == "access_extended"


# --- who sees what -----------------------------------------------------------------------------------


def test_someone_unrelated_to_a_request_gets_a_403_page(person, api):
    request_id = submitted(api)
    page = person("outsider").get(f"/requests/{request_id}")
    assert page.status_code == 403
    assert page.mimetype == "text/html" and "You may not see this page" in page.text


def test_an_unknown_request_is_a_404_page(person):
    page = person("outsider").get("/requests/no-such-request")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_an_unknown_address_is_a_404_page_not_json(person):
    page = person().get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page not found" in page.text


def test_the_api_still_answers_json_errors(client):
    response = client.get("/api/v1/no/such/endpoint")
    assert response.status_code == 404 and response.is_json


def test_every_page_has_a_title_and_the_navigation(person, api):
    request_id = submitted(api)
    browser = person("approver-a")
    for path in ("/", "/requests", "/approvals", "/approvals?tab=history", "/access", f"/requests/{request_id}"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert re.search(r"<title>[^<]+ · My Access</title>", page.text), path
        assert 'aria-label="Main"' in page.text, path


def test_a_decision_reason_too_long_is_shown_beside_the_reason_field(person, api, services):
    request_id = submitted(api)
    page = person("approver-a").post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve", "reason": "x" * 5000})
    assert page.status_code == 400
    assert 'id="decision-reason-error"' in page.text


def test_a_missing_justification_is_shown_beside_its_field_and_nothing_is_requested(person, services):
    requester = person("requester")
    page = requester.post_form("/access-packages/staged-1", "/access-packages/staged-1", {"policy_id": "staged-1-policy"})
    assert page.status_code == 422
    assert 'id="justification-error"' in page.text and "Enter a justification" in page.text
    assert services.read_models.requests_of("requester", limit=10).items == []


def test_the_request_form_submits_a_request_and_shows_it(person, services):
    requester = person("requester")
    done = requester.post_form(
        "/access-packages/staged-1", "/access-packages/staged-1", {"policy_id": "staged-1-policy", "justification": "project X"}
    )
    assert done.status_code == 302
    request_id = done.headers["Location"].rsplit("/", 1)[1]
    assert services.read_models.request(request_id)["justification"] == "project X"
    assert "Your request was submitted." in requester.get(done.headers["Location"]).text


def test_the_access_packages_page_searches_by_name(person):
    page = person("requester").get("/access-packages?search=staged 1").text
    assert "Staged 1" in page and "Dual 1" not in page


def test_a_manager_requests_for_a_direct_report_from_the_form(person, services):
    manager = person("manager")
    form = manager.get("/access-packages/dual-1").text
    assert "Request for" in form and 'value="report"' in form
    done = manager.post_form("/access-packages/dual-1", "/access-packages/dual-1", {"policy_id": "dual-1-policy", "target_user_id": "report"})
    assert done.status_code == 302
    request_id = done.headers["Location"].rsplit("/", 1)[1]
    assert services.read_models.request(request_id)["target_user_id"] == "report"


def test_someone_without_reports_is_not_offered_to_request_for_others(person):
    assert "Request for" not in person("requester").get("/access-packages/dual-1").text


def test_an_unknown_address_shows_the_navigation_to_someone_signed_in(person):
    page = person("requester").get("/no/such/page")
    assert page.status_code == 404 and 'aria-label="Main"' in page.text


def test_a_hidden_package_is_not_listed_but_its_page_takes_requests(person, services):
    from entitlements.tenant import load_tenant_data

    load_tenant_data(services.app, {
        "access_packages": [{"id": "secret", "catalog": "it", "name": "Secret project", "hidden": True,
                             "resources": [{"id": "secret-group", "kind": "group"}]}],
        "policies": [{"id": "secret-policy", "access_package": "secret",
                      "approval": {"required": True, "stages": [{"approvers": [{"user": "approver-a"}], "timeout": "P14D"}]}}],
    }, source="<test>", actor="test")
    requester = person("requester")
    assert "Secret project" not in requester.get("/access-packages").text
    page = requester.get("/access-packages/secret")
    assert page.status_code == 200 and "Submit request" in page.text
    done = requester.post_form("/access-packages/secret", "/access-packages/secret", {"policy_id": "secret-policy"})
    assert done.status_code == 302


def delivered_assignment(api, services) -> str:
    """The requester's assignment of staged-1, approved at both stages and delivered."""
    request_id = submitted(api, "requester", "staged-1", justification="project X")
    api.decide("first", request_id, "approve")
    api.decide("second", request_id, "approve")
    services.read_models.catch_up()
    return services.read_models.assignments_of("requester", limit=10).items[0]["id"]


def test_one_access_page_shows_it_to_its_user_and_refuses_others(person, api, services):
    assignment_id = delivered_assignment(api, services)
    page = person("requester").get(f"/access/{assignment_id}")
    assert page.status_code == 200 and "Staged 1" in page.text
    outsider = person("outsider")
    theirs, none = outsider.get(f"/access/{assignment_id}"), outsider.get("/access/no-such-access")
    assert theirs.status_code == none.status_code == 404


def test_someone_elses_access_answers_the_same_404_as_none_so_nobody_learns_who_asked_for_what(person, api, services):
    held = delivered_assignment(api, services)
    never = "00000000-0000-5000-8000-000000000000"
    outsider = person("outsider")
    pages = [outsider.get(f"/access/{held}"), outsider.get(f"/access/{never}")]
    posts = [outsider.post_form("/access", f"/access/{assignment}/extend", {"justification": "mine now"}) for assignment in (held, never)]
    for answers in (pages, posts):
        assert {a.status_code for a in answers} == {404}
        assert answers[0].text.replace(held, "ID") == answers[1].text.replace(never, "ID")
    assert services.read_models.assignments_of("requester", limit=10).items[0]["open_request_id"] is None


def test_a_refusal_no_form_on_the_page_can_show_is_shown_atop_it(person, api, services):
    request_id = submitted(api)
    requester = person("requester")  # may read the request, may not decide it: the page has no decision form
    page = requester.post_form(f"/requests/{request_id}", f"/requests/{request_id}/decision", {"decision": "approve"})
    assert page.status_code == 403
    assert 'id="_-error" role="alert"' in page.text and "Your decision" not in page.text
    assert services.read_models.request(request_id)["state"] == "pending_approval"


def test_portal_pages_are_never_cached_framed_or_sent_as_referer(person):
    page = person("approver-a").get("/approvals")
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "same-origin" and page.headers["X-Content-Type-Options"] == "nosniff"
    link = person().get(person().link("approver-a"))
    assert link.headers["Cache-Control"] == "no-store"


def test_a_malformed_request_id_is_a_404_at_once(person, services, monkeypatch):
    monkeypatch.setattr(services.read_models, "wait_for", lambda *a, **k: pytest.fail("waited for an id no request can have"))
    for path in ("/requests/not-a-request", "/access/not-an-access"):
        assert person("approver-a").get(path).status_code == 404


@pytest.mark.parametrize(
    "change, offered",
    [
        ({}, True),
        ({"state": "access_expired"}, False),
        ({"state": "removed"}, False),
        ({"open_request_id": "an-extension-waiting"}, False),
        ({"end": None}, False),
        ({"extension_allowed": False}, False),
    ],
)
def test_extend_is_offered_only_on_held_access_that_ends_with_no_extension_waiting(change, offered):
    from web.portal.pages import may_extend

    held = {"state": "delivered", "end": "2026-06-01T00:00:00+00:00", "open_request_id": None, "extension_allowed": True}
    assert may_extend({**held, **change}) is offered
