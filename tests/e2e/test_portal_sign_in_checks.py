"""Who an identity provider's answer signs in, what a refusing provider can make the portal say,
and the session key the portal's cookies are signed with."""

from __future__ import annotations

from dataclasses import replace

import pytest

from entitlements.settings import ConfigurationError
from entitlements.sign_in import MIN_SECRET_KEY_LENGTH, session_secret
from web.app import create_app
from web.portal.oidc import directory_user

ANN = {"id": "ann", "email": "ann@contoso.example"}


class Directory:
    """The two reads ``directory_user`` makes, over a fixed directory."""

    def __init__(self, *users: dict) -> None:
        self.users = users

    def user(self, user_id):
        return next((u for u in self.users if u["id"] == user_id), None)

    def users_by_email(self, email):
        return [u for u in self.users if u["email"].lower() == email.lower()]


def test_a_verified_email_names_the_one_directory_user_with_it():
    assert directory_user({"email": "Ann@Contoso.example", "email_verified": True}, Directory(ANN)) == ANN


def test_a_verified_email_sent_as_the_string_true_is_verified():
    assert directory_user({"email": "ann@contoso.example", "email_verified": "true"}, Directory(ANN)) == ANN


def test_an_unverified_email_names_nobody():
    assert directory_user({"email": "ann@contoso.example", "email_verified": False}, Directory(ANN)) is None


def test_a_preferred_username_alone_names_nobody_since_anyone_may_choose_it():
    claims = {"email": "ann@elsewhere.example", "email_verified": False, "preferred_username": "ann"}
    assert directory_user(claims, Directory(ANN)) is None


def test_an_email_two_directory_users_share_names_nobody():
    twin = {"id": "ann-2", "email": "ANN@contoso.example"}
    assert directory_user({"email": "ann@contoso.example", "email_verified": True}, Directory(ANN, twin)) is None


def test_the_claim_the_operator_names_is_the_user_id_and_the_email_is_not_looked_at():
    directory = Directory(ANN, {"id": "e-1042", "email": "someone@contoso.example"})
    claims = {"employee_id": "e-1042", "email": "ann@contoso.example", "email_verified": True}
    assert directory_user(claims, directory, "employee_id")["id"] == "e-1042"
    assert directory_user({"email": "ann@contoso.example", "email_verified": True}, directory, "employee_id") is None


# --- the provider's redirect ----------------------------------------------------------------------


@pytest.fixture
def oidc_app(services):
    """The portal with an identity provider that nothing answers for (port 9: discard)."""
    services.settings = replace(services.settings, oidc_issuer="http://127.0.0.1:9", oidc_client_id="portal", oidc_client_secret="s")
    return create_app(services, project_inline=True)


def test_what_a_refusing_provider_says_is_not_shown_since_anyone_can_craft_that_redirect(oidc_app):
    page = oidc_app.test_client().get("/sign-in/oidc/callback?error=access_denied&error_description=Your+account+is+locked,+call+555-0100")
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "555-0100" not in page.text and "locked" not in page.text
    assert "identity provider refused" in page.text


def test_sign_in_with_a_provider_that_cannot_be_reached_is_a_page_saying_so_not_a_500(oidc_app):
    browser = oidc_app.test_client()
    form = browser.get("/sign-in")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    page = browser.post("/sign-in/oidc", data={"csrf_token": token})
    assert page.status_code == 503 and "cannot be reached" in page.text


# --- the session key ------------------------------------------------------------------------------


def test_a_session_key_too_short_to_sign_cookies_is_refused_in_words():
    with pytest.raises(ConfigurationError, match="ENTITLEMENTS_SECRET_KEY has 6 characters"):
        session_secret("secret", "unused")


def test_an_emptied_session_key_file_is_refused_in_words_not_left_to_fail_every_page(tmp_path):
    key_file = tmp_path / "session.key"
    key_file.write_text("\n")
    with pytest.raises(ConfigurationError, match=f"session key in {key_file} has 0 characters.*delete {key_file}"):
        session_secret(None, str(key_file))


def test_a_session_key_is_made_once_and_kept(tmp_path):
    key_file = tmp_path / "var" / "session.key"
    made = session_secret(None, str(key_file))
    assert len(made) >= MIN_SECRET_KEY_LENGTH and session_secret(None, str(key_file)) == made
