"""Configuration from the environment (and an optional ``.env`` file), as listed in API.md."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from projections.configuration import (  # noqa: F401  (re-exported: the settings' own names)
    DEFAULT_BASE_URL,
    DEFAULT_NOTIFIER_HORIZON,
    ConfigurationError,
    notifier_horizon,
)

DEFAULT_DATABASE_URL = "sqlite:///var/entitlements.db"
DEFAULT_AUDIT_KEY_FILE = "var/audit-signing.key"
DEFAULT_SECRET_KEY_FILE = "var/session-secret.key"  # where the generated ENTITLEMENTS_SECRET_KEY is kept
CLOCKS = ("system", "manual")


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    smtp_url: str | None = None
    base_url: str = DEFAULT_BASE_URL
    secret_key: str | None = None
    secret_key_file: str = DEFAULT_SECRET_KEY_FILE
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_user_id_claim: str | None = None  # a claim whose value is the directory user id (operator's choice)
    audit_key_file: str = DEFAULT_AUDIT_KEY_FILE
    clock: str = "system"
    mail_from: str = "entitlements@localhost"
    notifier_horizon: str = DEFAULT_NOTIFIER_HORIZON  # an ISO 8601 duration, checked on creation

    def __post_init__(self) -> None:
        notifier_horizon(self.notifier_horizon)

    @property
    def notifier_horizon_duration(self) -> timedelta:
        return notifier_horizon(self.notifier_horizon)

    @property
    def secure_cookies(self) -> bool:
        """The portal is served over https: its cookies are sent only over https."""
        return self.base_url.lower().startswith("https://")

    @property
    def mail_domain(self) -> str:
        """The domain of the emails' Message-IDs: the sender address's."""
        return self.mail_from.rpartition("@")[2] or "localhost"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> "Settings":
        """Reads ``ENTITLEMENTS_*`` variables; the process environment wins over ``.env``."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        clock = values.get("ENTITLEMENTS_CLOCK", "system") or "system"
        if clock not in CLOCKS:
            raise ConfigurationError(f"ENTITLEMENTS_CLOCK must be 'system' or 'manual', not {clock!r}")
        return cls(
            database_url=values.get("ENTITLEMENTS_DATABASE_URL") or DEFAULT_DATABASE_URL,
            smtp_url=values.get("ENTITLEMENTS_SMTP_URL") or None,
            base_url=(values.get("ENTITLEMENTS_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            secret_key=values.get("ENTITLEMENTS_SECRET_KEY") or None,
            secret_key_file=values.get("ENTITLEMENTS_SECRET_KEY_FILE") or DEFAULT_SECRET_KEY_FILE,
            oidc_issuer=(values.get("ENTITLEMENTS_OIDC_ISSUER") or "").strip().rstrip("/") or None,
            oidc_client_id=(values.get("ENTITLEMENTS_OIDC_CLIENT_ID") or "").strip() or None,
            oidc_client_secret=values.get("ENTITLEMENTS_OIDC_CLIENT_SECRET") or None,
            oidc_user_id_claim=(values.get("ENTITLEMENTS_OIDC_USER_ID_CLAIM") or "").strip() or None,
            audit_key_file=values.get("ENTITLEMENTS_AUDIT_KEY_FILE") or DEFAULT_AUDIT_KEY_FILE,
            clock=clock,
            mail_from=mail_from(values),
            notifier_horizon=(values.get("ENTITLEMENTS_NOTIFIER_HORIZON") or "").strip() or DEFAULT_NOTIFIER_HORIZON,
        )


def mail_from(values: Mapping[str, str]) -> str:
    """``ENTITLEMENTS_MAIL_FROM``, else ``entitlements@`` the portal's host (``localhost`` when it
    is an address or a name without a dot)."""
    given = values.get("ENTITLEMENTS_MAIL_FROM")
    if given:
        if "@" not in given:
            raise ConfigurationError(f"ENTITLEMENTS_MAIL_FROM must be an email address, not {given!r}")
        return given
    host = urlsplit(values.get("ENTITLEMENTS_BASE_URL") or DEFAULT_BASE_URL).hostname or ""
    is_name = "." in host and not host.replace(".", "").isdigit()
    return f"entitlements@{host if is_name else 'localhost'}"
