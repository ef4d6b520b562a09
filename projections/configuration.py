"""What the read models and the notifier need of the deployment's configuration, kept below the
composition root (``entitlements.settings`` reads the environment and re-exports these), so that
``projections`` and ``notifier`` never import ``entitlements``."""

from __future__ import annotations

from datetime import timedelta

from domain.durations import parse_duration

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# How far back a first projection of the notifier still mails (README: Emails, "The horizon").
DEFAULT_NOTIFIER_HORIZON = "PT24H"


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


def notifier_horizon(text: str) -> timedelta:
    """``ENTITLEMENTS_NOTIFIER_HORIZON``: an ISO 8601 duration as the tenant file's (no years or
    months, from one second to 100 years); ``ConfigurationError`` saying why otherwise."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise ConfigurationError(
            "ENTITLEMENTS_NOTIFIER_HORIZON must be an ISO 8601 duration without years or months, from one second"
            f" to 100 years, such as PT24H or P7D: {error}"
        ) from error
