"""The browser-test harness itself, on a tiny Flask app of its own (not the portal)."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, request, url_for
from playwright.sync_api import expect

from tests.browser.helpers import LESSER_FINDINGS, SCREENSHOTS, LiveServer, assert_accessible, links_in, wait_for_message

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101009a1cc3d90000000049454e44ae426082"
)


def harness_app(smtp_url: str | None = None) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def home():
        return PAGE.format(title="Harness", body='<form method="post" action="/pressed"><button type="submit">Press me</button></form>')

    @app.post("/pressed")
    def pressed():
        return PAGE.format(title="Pressed", body="<p>The button was pressed.</p>")

    @app.get("/pixel.png")
    def pixel():
        return PIXEL, 200, {"Content-Type": "image/png"}

    @app.get("/no-alt")
    def no_alt():
        return PAGE.format(title="No alt", body='<img src="/pixel.png" width="40" height="40">')

    @app.get("/no-main")
    def no_main():  # moderate only: content outside any landmark
        return PAGE.format(title="No main", body="").replace("<main>", "").replace("</main>", "<p>Outside every landmark.</p>")

    @app.get("/mail")
    def mail():
        form = '<form method="post"><label>Email <input name="to" type="email"></label><button>Mail me a link</button></form>'
        return PAGE.format(title="Mail", body=form)

    @app.post("/mail")
    def mail_me():
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "portal@example.test", request.form["to"], "Your link"
        message.set_content(f"Open {url_for('welcome', code='abc123', _external=True)} to go on.")
        smtp = urlsplit(smtp_url)
        with smtplib.SMTP(smtp.hostname, smtp.port, timeout=5) as client:
            client.send_message(message)
        return PAGE.format(title="Sent", body="<p>Check your mail.</p>")

    @app.get("/callback")
    def callback():
        return PAGE.format(title="Signed in", body=f'<p id="code">{request.args["code"]}</p>')

    @app.get("/welcome")
    def welcome():
        return PAGE.format(title=f"Welcome, {request.args['code']}", body="")

    return app


def test_a_button_clicked_in_the_browser_posts_to_the_live_server(live_server, page):
    page.goto(live_server(harness_app()))
    page.get_by_role("button", name="Press me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pressed")


def test_shoot_saves_a_numbered_png_under_test_artifacts(live_server, page, shoot):
    page.goto(live_server(harness_app()))
    first = shoot(page, "home page")
    second = shoot(page, "again", full_page=False)
    assert first.parent.parent == SCREENSHOTS
    assert (first.name, second.name) == ("01-home_page.png", "02-again.png")
    assert first.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert second.stat().st_size > 0


def test_assert_accessible_fails_on_an_image_without_alt_text(live_server, page):
    page.goto(live_server(harness_app()) + "/no-alt")
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page)
    assert "image-alt (critical): Images must have alternative text [img]" in str(failure.value)


def test_assert_accessible_passes_on_a_clean_page(live_server, page):
    page.goto(live_server(harness_app()))
    assert assert_accessible(page) == []


def test_assert_accessible_reports_moderate_findings_without_failing(live_server, page):
    page.goto(live_server(harness_app()) + "/no-main")
    lesser = assert_accessible(page)
    assert {v["impact"] for v in lesser} == {"moderate"}
    assert "region" in {v["id"] for v in lesser}
    reported = [f for f in LESSER_FINDINGS if f[1] == page.url]
    assert reported and reported[0][0].endswith("::test_assert_accessible_reports_moderate_findings_without_failing")
    LESSER_FINDINGS[:] = [f for f in LESSER_FINDINGS if f not in reported]  # seen here: not for the summary


def test_the_phone_page_is_390_pixels_wide_and_the_desktop_page_1280(live_server, page, phone_page):
    url = live_server(harness_app())
    phone_page.goto(url)
    page.goto(url)
    assert phone_page.evaluate("[window.innerWidth, window.innerHeight]") == [390, 844]
    assert page.evaluate("[window.innerWidth, window.innerHeight]") == [1280, 900]


def test_a_link_the_app_mails_to_the_mailbox_opens_in_the_browser(live_server, page, mailbox):
    page.goto(live_server(harness_app(mailbox.url)) + "/mail")
    page.get_by_label("Email").fill("ben@example.test")
    page.get_by_role("button", name="Mail me a link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sent")
    link = links_in(wait_for_message(mailbox, to="ben@example.test"))[0]
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, abc123")


def test_the_mock_openid_provider_signs_a_user_in_through_the_browser(live_server, page):
    import oidc_provider_mock

    provider, app = live_server(oidc_provider_mock.app()), live_server(harness_app())
    client = {"client_id": "portal", "redirect_uri": f"{app}/callback"}
    page.goto(f"{provider}/oauth2/authorize?" + urlencode({**client, "response_type": "code", "scope": "openid email", "nonce": "n1"}))
    page.get_by_placeholder("sub").fill("ben")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Signed in")
    form = {**client, "grant_type": "authorization_code", "code": page.locator("#code").inner_text(), "client_secret": "s"}
    with urllib.request.urlopen(f"{provider}/oauth2/token", data=urlencode(form).encode(), timeout=5) as response:
        id_token = json.load(response)["id_token"]
    claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    assert (claims["sub"], claims["nonce"], claims["aud"]) == ("ben", "n1", ["portal"])


def test_a_page_request_to_a_host_other_than_loopback_is_refused(page):
    failed = []
    page.on("requestfailed", lambda request: failed.append((request.url, request.failure)))
    page.set_content('<img src="https://cdn.example.test/logo.png" alt="">')
    [(url, failure)] = failed
    assert url == "https://cdn.example.test/logo.png" and failure.startswith("net::ERR_BLOCKED_BY_CLIENT")


def test_a_stopped_live_server_refuses_connections():
    server = LiveServer(harness_app())
    with socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
