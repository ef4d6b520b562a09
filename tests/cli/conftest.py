"""Command-line fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def database(tmp_path, monkeypatch):
    """A SQLite file of its own as ``ENTITLEMENTS_DATABASE_URL``, run from ``tmp_path``, no SMTP."""
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("ENTITLEMENTS_DATABASE_URL", url)
    monkeypatch.delenv("ENTITLEMENTS_SMTP_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return url
