"""People walking the portal in a real browser (Debian's chromium), on SQLite and PostgreSQL: a
request with answers, the approver arriving by the email's link, approve, History, Remove; a
two-stage request, a deny, a cancel, an extension; CSRF and sign-out. Every page visited is
checked with axe and saved as a screenshot (test-artifacts/screenshots/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect

from domain.clock import ManualClock
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from tests.browser.helpers import assert_accessible, links_in, wait_for_message
from tests.mailbox import free_port
from web.app import create_app

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

TENANT = {
    "users": [
        {"id": uid, "display_name": name, "email": f"{uid}@contoso.example", "organization": "Contoso", "manager": manager}
        for uid, name, manager in [
            ("ben", "Ben Brown", "carol"),
            ("carol", "Carol Clark", None),
            ("ann", "Ann Archer", None),
            ("amy", "Amy Adler", None),
            ("first", "Fay First", None),
            ("second", "Sam Second", None),
        ]
    ],
    "catalogs": [{"id": "sales", "name": "Sales"}],
    "access_packages": [
        {"id": "reports", "catalog": "sales", "name": "Sales reports", "description": "Monthly sales figures",
         "resources": [{"id": "reports-group", "kind": "group"}]},
        {"id": "ledger", "catalog": "sales", "name": "General ledger", "description": "Two approvals needed",
         "resources": [{"id": "ledger-group", "kind": "group"}]},
    ],
    "policies": [
        {
            "id": "reports-staff", "access_package": "reports", "name": "Staff",
            "requestors": {"scope": "all_members"},
            "requestor_justification_required": True,
            "questions": [{"id": "cost-center", "text": "Which cost center pays for this?", "required": True,
                           "choices": ["CC100", "CC200"]}],
            "approval": {"required": True, "stages": [
                {"approvers": [{"user": "ann"}, {"user": "amy"}], "timeout": "P14D"}]},
            "expiration": {"after": "P30D"},
            "extension": {"allowed": True, "approval_required": False},
        },
        {
            "id": "ledger-staff", "access_package": "ledger", "name": "Staff",
            "requestors": {"scope": "all_members"},
            "approval": {"required": True, "stages": [
                {"approvers": [{"user": "first"}], "timeout": "P14D"},
                {"approvers": [{"user": "second"}], "timeout": "P14D"},
            ]},
            "expiration": {"after": "P30D"},
        },
    ],
}


@dataclass
class Portal:
    url: str
    services: Any
    clock: ManualClock
    mailbox: Any
    new_page: Any
    shoot: Any

    def settle(self) -> None:
        """What the embedded mode does in the background: project, then send the outbox."""
        self.services.read_models.catch_up()
        self.services.sender().send_due()

    def visit(self, page, path_or_url: str, name: str):
        page.goto(path_or_url if path_or_url.startswith("http") else self.url + path_or_url)
        self.check(page, name)
        return page

    def check(self, page, name: str) -> None:
        self.shoot(page, name)
        assert_accessible(page)

    def sign_in(self, user_id: str, page=None, *, name: str = "sign-in"):
        """Signs ``user_id`` in, in ``page`` (a new one if None), with a one-time link."""
        page = page or self.new_page()
        secret, _ = self.services.sign_in.issue_link(user_id)
        self.visit(page, self.services.sign_in.link_url(self.url, secret), name)
        page.get_by_role("button", name="Sign in").click()
        return page

    def submit(self, user_id: str, package: str, **fields) -> str:
        receipt = self.services.app.submit_request(requestor_id=user_id, access_package_id=package, **fields)
        self.settle()
        return str(receipt.id)

    def decide(self, page, request_id: str, decision: str, reason: str = "") -> None:
        self.visit(page, f"/requests/{request_id}", f"request-{decision}")
        page.get_by_label(decision.capitalize(), exact=True).check()
        if reason:
            page.get_by_label("Reason").fill(reason)
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(page.get_by_text(f"You {'approved' if decision == 'approve' else 'denied'} this request.")).to_be_visible()
        self.check(page, f"request-{decision}d")


@pytest.fixture
def portal_with(database_url, mailbox, live_server, new_page, shoot, tmp_path):
    """``portal_with(**settings) -> Portal``: the portal served over this backend, with the tenant
    above, a manual clock and the SMTP server; ``settings`` add to its ``Settings``."""
    opened = []

    def make(**settings) -> Portal:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        clock = ManualClock(START)
        services = build_services(
            Settings(database_url=database_url, base_url=url, smtp_url=mailbox.url, secret_key_file=str(tmp_path / "session.key"),
                     audit_key_file=str(tmp_path / "audit.key"), **settings),
            clock=clock,
        )
        opened.append(services)
        tenant = tmp_path / "tenant.yaml"
        tenant.write_text(yaml.safe_dump(TENANT, sort_keys=False), encoding="utf-8")
        load_tenant(services.app, tenant)
        services.read_models.catch_up()
        live_server(create_app(services, project_inline=True), port)
        return Portal(url, services, clock, mailbox, new_page, shoot)

    yield make
    for services in opened:
        services.close()


@pytest.fixture
def portal(portal_with) -> Portal:
    return portal_with()


def test_a_request_is_answered_approved_from_the_email_link_seen_in_history_delivered_and_removed(portal):
    # the requestor finds the package and requests it, answering its question
    ben = portal.sign_in("ben")
    portal.visit(ben, "/access-packages", "access-packages")
    ben.get_by_label("Search by name or description").fill("sales")
    ben.get_by_role("button", name="Search").click()
    # each card's link is named exactly as API.md says; the package's name is its description
    request_access = ben.get_by_role("listitem").filter(has=ben.get_by_role("heading", name="Sales reports")).get_by_role(
        "link", name="Request access", exact=True
    )
    expect(request_access).to_have_accessible_description("Sales reports")
    request_access.click()
    portal.check(ben, "request-form")
    ben.get_by_role("button", name="Submit request").click()  # nothing filled in: told what is missing
    expect(ben.locator(".field-error").first).to_be_visible()
    portal.check(ben, "request-form-errors")
    ben.get_by_label("Which cost center pays for this?").select_option("CC200")
    ben.get_by_label("Justification").fill("Quarterly planning")
    ben.get_by_role("button", name="Submit request").click()
    expect(ben.get_by_text("Your request was submitted.")).to_be_visible()
    portal.check(ben, "request-submitted")
    request_id = ben.url.rsplit("/", 1)[1]

    # the approver follows the link of the email the SMTP server received, in a fresh browser
    portal.settle()
    email = wait_for_message(portal.mailbox, to="ann@contoso.example")
    link = next(u for u in links_in(email) if u.endswith(f"/requests/{request_id}"))
    ann = portal.new_page()
    portal.visit(ann, link, "email-link-before-sign-in")
    expect(ann.get_by_role("heading", name="Sign in")).to_be_visible()
    portal.sign_in("ann", ann)
    assert ann.url == link
    expect(ann.get_by_text("Quarterly planning")).to_be_visible()
    expect(ann.get_by_text("CC200")).to_be_visible()
    expect(ann.get_by_text("Which cost center pays for this?")).to_be_visible()
    portal.check(ann, "request-details")
    portal.visit(ann, "/approvals", "approvals-pending")
    expect(ann.get_by_role("link", name="Sales reports")).to_be_visible()
    portal.decide(ann, request_id, "approve", "Planning season")

    # the other approver sees the decision and who made it, in History
    amy = portal.sign_in("amy")
    portal.visit(amy, "/approvals", "other-approver-pending")
    expect(amy.get_by_text("Nothing awaits your decision.")).to_be_visible()
    amy.get_by_role("link", name="History").click()
    row = amy.get_by_role("row").filter(has_text="Sales reports")
    expect(row).to_contain_text("Approved")
    expect(row).to_contain_text("Ann Archer")
    portal.check(amy, "other-approver-history")

    # the requestor sees the access delivered
    portal.settle()
    portal.visit(ben, "/access", "my-access")
    expect(ben.get_by_text("Delivered")).to_be_visible()

    # the approver removes it, from History
    portal.visit(ann, "/approvals?tab=history", "approver-history")
    ann.get_by_role("link", name="Sales reports").click()
    ann.get_by_label("Reason (required)").fill("Left the team")
    ann.get_by_role("button", name="Remove").click()
    expect(ann.get_by_text("The access was removed.")).to_be_visible()
    portal.check(ann, "removed")
    portal.settle()
    portal.visit(ben, "/access", "my-access-after-removal")
    expect(ben.get_by_text("Delivered")).to_have_count(0)


def test_a_two_stage_request_needs_both_approvers(portal):
    request_id = portal.submit("ben", "ledger")
    fay = portal.sign_in("first")
    portal.decide(fay, request_id, "approve")
    expect(fay.get_by_text("Stage 2")).to_be_visible()
    sam = portal.sign_in("second")
    portal.visit(sam, "/approvals", "second-stage-pending")
    expect(sam.get_by_role("link", name="General ledger")).to_be_visible()
    portal.decide(sam, request_id, "approve", "Both agreed")
    details = portal.services.read_models.request(request_id)
    assert [stage["decided_by"] for stage in details["stages"]] == ["first", "second"]


def test_a_denied_request_shows_the_reason_to_the_requestor(portal):
    request_id = portal.submit("ben", "reports", justification="Planning", answers={"cost-center": "CC100"})
    portal.decide(portal.sign_in("amy"), request_id, "deny", "Not this quarter")
    ben = portal.sign_in("ben")
    portal.visit(ben, f"/requests/{request_id}", "denied-request")
    expect(ben.get_by_text("Not this quarter")).to_be_visible()
    expect(ben.locator(".lead .state")).to_have_text("Denied")


def test_the_requestor_cancels_a_pending_request(portal):
    request_id = portal.submit("ben", "ledger")
    ben = portal.sign_in("ben")
    portal.visit(ben, "/requests", "my-requests")
    ben.get_by_role("link", name="General ledger").click()
    ben.get_by_role("button", name="Cancel request").click()
    expect(ben.get_by_text("Your request was cancelled.")).to_be_visible()
    portal.check(ben, "cancelled")
    assert portal.services.read_models.request(request_id)["state"] == "cancelled"


def test_access_is_extended_from_my_access(portal):
    request_id = portal.submit("ben", "reports", justification="Planning", answers={"cost-center": "CC100"})
    portal.services.app.decide(request_id=request_id, approver_id="ann", decision="approve")
    portal.clock.advance(timedelta(days=25))
    portal.settle()
    ben = portal.sign_in("ben")
    portal.visit(ben, "/access", "extend-offered")
    ben.get_by_label("Justification for the extension").fill("Still planning")
    extend = ben.get_by_role("button", name="Extend", exact=True)
    expect(extend).to_have_accessible_description("Sales reports")
    extend.click()
    expect(ben.get_by_text("Your access was extended.")).to_be_visible()
    portal.check(ben, "extended")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(portal):
    request_id = portal.submit("ben", "ledger")
    fay = portal.sign_in("first")
    portal.visit(fay, f"/requests/{request_id}", "before-forged-post")
    fay.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    fay.get_by_label("Approve", exact=True).check()
    fay.get_by_role("button", name="Submit", exact=True).click()
    expect(fay.get_by_text("did not come from this site")).to_be_visible()
    portal.check(fay, "csrf-refused")
    assert portal.services.read_models.request(request_id)["state"] == "pending_approval"


def test_a_session_cookie_kept_after_sign_out_is_refused(portal):
    ben = portal.sign_in("ben")
    cookies = ben.context.cookies()
    ben.get_by_role("button", name="Sign out").click()
    expect(ben.get_by_text("You are signed out.")).to_be_visible()
    portal.check(ben, "signed-out")
    replay = portal.new_page()
    replay.context.add_cookies(cookies)
    portal.visit(replay, "/approvals", "replayed-cookie")
    expect(replay.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_pages_work_at_phone_width(portal, phone_page):
    request_id = portal.submit("ben", "ledger")
    portal.sign_in("first", phone_page)
    for path, name in (("/", "phone-home"), ("/approvals", "phone-approvals"), (f"/requests/{request_id}", "phone-request")):
        portal.visit(phone_page, path, name)
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways at phone width ({width}px)"


@pytest.fixture
def identity_provider(live_server):
    """A real OpenID provider (oidc-provider-mock) knowing two people: Ann, by her verified email,
    and someone the directory does not have."""
    import oidc_provider_mock
    from oidc_provider_mock import User

    users = [
        User(sub="ann-at-idp", claims={"email": "Ann@Contoso.example", "email_verified": True}),
        User(sub="stranger", claims={"email": "stranger@elsewhere.example", "email_verified": True, "preferred_username": "stranger"}),
    ]
    return live_server(oidc_provider_mock.app(user_claims=users, require_nonce=True))


def sign_in_at_provider(portal, page, subject: str, start: str) -> None:
    portal.visit(page, start, "before-sign-in")
    page.get_by_role("button", name="Sign in with your organization account").click()
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize").click()


def test_an_approver_signs_in_with_openid_connect_and_lands_on_the_emailed_request(portal_with, identity_provider):
    portal = portal_with(oidc_issuer=identity_provider, oidc_client_id="entitlements", oidc_client_secret="s3cret")
    request_id = portal.submit("ben", "reports", justification="Planning", answers={"cost-center": "CC100"})
    link = next(u for u in links_in(wait_for_message(portal.mailbox, to="ann@contoso.example")) if u.endswith(request_id))
    ann = portal.new_page()
    sign_in_at_provider(portal, ann, "ann-at-idp", link)
    assert ann.url == link
    expect(ann.get_by_role("heading", name="Your decision")).to_be_visible()
    portal.check(ann, "signed-in-with-oidc")


def test_someone_the_directory_does_not_know_is_refused_after_openid_connect(portal_with, identity_provider):
    portal = portal_with(oidc_issuer=identity_provider, oidc_client_id="entitlements", oidc_client_secret="s3cret")
    page = portal.new_page()
    sign_in_at_provider(portal, page, "stranger", "/")
    expect(page.get_by_text("You are not in this organization's directory")).to_be_visible()
    portal.check(page, "oidc-refused")
    portal.visit(page, "/approvals", "still-signed-out")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_unknown_and_forbidden_requests_are_pages_for_people(portal):
    request_id = portal.submit("ben", "ledger")
    carol = portal.sign_in("carol")
    response = carol.goto(f"{portal.url}/requests/{request_id}")
    assert response.status == 403
    portal.check(carol, "forbidden")
    expect(carol.get_by_role("heading", name="You may not see this page")).to_be_visible()
    response = carol.goto(f"{portal.url}/no/such/page")
    assert response.status == 404
    portal.check(carol, "not-found")
    expect(carol.get_by_role("navigation", name="Main")).to_be_visible()


def tab_to(page, label: str, most: int = 40) -> None:
    """Presses Tab until the control named ``label`` has the focus (as a keyboard user would)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => { const e = document.activeElement; if (!e) return '';"
            " const l = e.labels && e.labels[0]; return (l ? l.textContent : e.textContent || '').trim(); }"
        )
        if name == label:
            return
    raise AssertionError(f"{label!r} cannot be reached with Tab")


def test_an_approver_decides_with_the_keyboard_alone(portal):
    request_id = portal.submit("ben", "ledger")
    fay = portal.sign_in("first")
    portal.visit(fay, f"/requests/{request_id}", "keyboard")
    fay.keyboard.press("Tab")
    assert fay.evaluate("document.activeElement.textContent") == "Skip to content"
    tab_to(fay, "Approve")
    fay.keyboard.press("Space")
    tab_to(fay, "Reason")
    fay.keyboard.type("Typed, not clicked")
    tab_to(fay, "Submit")
    fay.keyboard.press("Enter")
    expect(fay.get_by_text("You approved this request.")).to_be_visible()
    assert portal.services.read_models.request(request_id)["stages"][0]["reason"] == "Typed, not clicked"


def test_every_email_link_opens_its_page_for_its_recipient_after_sign_in(portal):
    """Requests to approve, reminders, decisions, delivery, the expiry reminder and the end of
    access: each email's link, opened by its recipient after signing in, shows its page."""
    import re

    from entitlements.sign_in import LINK_PATH

    approved = portal.submit("ben", "reports", justification="Planning", answers={"cost-center": "CC100"})
    denied = portal.submit("ben", "ledger")
    portal.services.scheduler.advance(portal.clock, START + timedelta(days=8))  # reminders of both
    portal.services.app.decide(request_id=approved, approver_id="ann", decision="approve")
    portal.services.app.decide(request_id=denied, approver_id="first", decision="deny", reason="no")
    portal.services.scheduler.advance(portal.clock, START + timedelta(days=40))  # expiry reminder, then the end
    portal.settle()
    emails = {user["email"]: user["id"] for user in TENANT["users"]}
    checked = set()
    for recipients, message in list(portal.mailbox.messages):
        links = [u for u in links_in(message) if u.startswith(portal.url)]
        assert links, f"email {message['Subject']!r} has no link to the portal"
        for recipient in recipients:
            client = create_app(portal.services, project_inline=True).test_client()
            secret, _ = portal.services.sign_in.issue_link(emails[recipient])
            page = client.get(LINK_PATH + secret)
            client.post(LINK_PATH + secret, data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)})
            path = links[0].removeprefix(portal.url)
            answer = client.get(path)
            assert answer.status_code == 200, (message["Subject"], recipient, path, answer.status_code)
            checked.add(path.split("/")[1])
    assert checked == {"requests", "access"}, checked
    assert len(portal.mailbox.messages) >= 6
