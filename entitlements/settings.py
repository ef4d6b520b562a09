"""Configuration from the environment (and an optional ``.env`` file), as listed in API.md."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

DEFAULT_DATABASE_URL = "sqlite:///var/entitlements.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
CLOCKS = ("system", "manual")


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    smtp_url: str | None = None
    base_url: str = DEFAULT_BASE_URL
    secret_key: str | None = None
    clock: str = "system"

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
            clock=clock,
        )
