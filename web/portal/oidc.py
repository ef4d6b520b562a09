"""Signing in to the portal with OpenID Connect (Authlib's Flask client): the authorization code
flow with PKCE (S256), against ``ENTITLEMENTS_OIDC_ISSUER`` (its discovery document), as
``ENTITLEMENTS_OIDC_CLIENT_ID`` with ``ENTITLEMENTS_OIDC_CLIENT_SECRET``. The redirect URI to
register at the provider is ``ENTITLEMENTS_BASE_URL`` + ``/sign-in/oidc/callback``.

The person is the one directory user whose email is the ID token's ``email`` claim, when the
provider says it is verified (``email_verified``). A claim such as ``preferred_username`` is no
proof of who someone is (OpenID Connect Core 5.7: not unique, often chosen by the user), so it is
used only when the operator names one that their provider controls, with
``ENTITLEMENTS_OIDC_USER_ID_CLAIM`` (``sub``, ``employee_id``...): then the person is the
directory user whose id is that claim's value, and the email is not looked at. Anyone else is
refused with a page that says so.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from entitlements.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "portal_oidc"
CALLBACK_PATH = "/sign-in/oidc/callback"
SCOPES = "openid email profile"


def init_oidc(app: Flask, settings: Settings) -> None:
    """Registers the identity provider of ``settings`` on ``app`` (nothing when none is set)."""
    if not settings.oidc_issuer:
        return
    oauth = OAuth(app)
    oauth.register(
        "provider",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256"},
    )
    app.extensions[EXTENSION] = oauth


def client() -> Any | None:
    """The identity provider's client, or None when the portal has none."""
    oauth = current_app.extensions.get(EXTENSION)
    return oauth.provider if oauth is not None else None


class SignInFailed(Exception):
    """The provider's answer gave no identity (refused, tampered with, or the provider unreachable)."""


class ProviderUnreachable(Exception):
    """The provider's discovery document could not be read: nobody can be sent there to sign in."""


def redirect_to_provider(base_url: str):
    try:
        return client().authorize_redirect(redirect_uri=base_url.rstrip("/") + CALLBACK_PATH)
    except Exception as error:  # its discovery document unreachable or not JSON: the network, not the person
        log.warning("OpenID Connect: the identity provider's discovery document could not be read", exc_info=error)
        raise ProviderUnreachable() from error


def claims_of_callback() -> dict[str, Any]:
    """The verified ID token's claims of the provider's redirect back (state, nonce, PKCE checked by Authlib)."""
    try:
        token = client().authorize_access_token()
    except OAuthError as error:
        # Authlib reads ?error= before it checks state, so anyone can make this redirect with text
        # of their own: it is logged for the operators, and the page says only what happened
        log.warning("OpenID Connect sign-in refused: %s: %s", error.error, error.description)
        raise SignInFailed("the identity provider refused, or this sign-in had already been used or had expired") from error
    except Exception as error:  # the provider unreachable, or its answer not what OpenID Connect says
        log.warning("OpenID Connect sign-in failed", exc_info=error)
        raise SignInFailed("the identity provider could not be reached or answered something unexpected") from error
    claims = token.get("userinfo")
    if not claims:
        raise SignInFailed("the identity provider sent no ID token")
    return dict(claims)


def directory_user(claims: dict[str, Any], read_models: Any, user_id_claim: str | None = None) -> dict[str, Any] | None:
    """The directory user these claims name (see the module's docstring), or None."""
    if user_id_claim:
        user_id = claims.get(user_id_claim)
        return read_models.user(user_id) if isinstance(user_id, str) and user_id else None
    email = claims.get("email")
    # some providers send the boolean as the string "true"
    if isinstance(email, str) and email.strip() and claims.get("email_verified") in (True, "true"):
        found = read_models.users_by_email(email)
        if len(found) == 1:
            return found[0]
    return None
