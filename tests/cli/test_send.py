"""``entitlements send``: the outbox over SMTP from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitlements.bootstrap import build_application
from entitlements.cli import main
from entitlements.settings import ConfigurationError, Settings

TENANT = Path(__file__).parent.parent / "data" / "notifications.yaml"


def test_send_without_an_smtp_url_says_what_to_set(database, capsys):
    assert main(["send", "--once"]) == 1
    assert "ENTITLEMENTS_SMTP_URL is not set" in capsys.readouterr().err


def test_send_refuses_an_smtp_url_it_cannot_use(database, monkeypatch, capsys):
    monkeypatch.setenv("ENTITLEMENTS_SMTP_URL", "http://mail.example")
    assert main(["send", "--once"]) == 1
    assert "ENTITLEMENTS_SMTP_URL must look like smtp://host:port" in capsys.readouterr().err


def test_send_once_delivers_what_the_notifier_wrote(database, monkeypatch, mailbox, capsys):
    monkeypatch.setenv("ENTITLEMENTS_SMTP_URL", mailbox.url)
    assert main(["load", "-q", str(TENANT)]) == 0
    app = build_application(Settings(database_url=database))
    try:
        app.submit_request(requestor_id="rita", access_package_id="wiki", justification="for the launch")
    finally:
        app.close()
    assert main(["rebuild", "-q"]) == 0
    assert main(["send", "--once"]) == 0
    assert "sent 2, to retry 0, failed 0" in capsys.readouterr().err
    assert sorted(to for (to,), _ in mailbox.messages) == ["amy@contoso.example", "bob@contoso.example"]
    assert main(["send", "--once"]) == 0
    assert "sent 0" in capsys.readouterr().err and len(mailbox.messages) == 2


def test_the_sender_address_defaults_to_the_portals_host():
    assert Settings.from_env({"ENTITLEMENTS_BASE_URL": "https://access.contoso.example"}, env_file=None).mail_from == (
        "entitlements@access.contoso.example"
    )
    assert Settings.from_env({}, env_file=None).mail_from == "entitlements@localhost"


def test_a_sender_address_without_at_sign_is_refused():
    with pytest.raises(ConfigurationError, match="ENTITLEMENTS_MAIL_FROM must be an email address"):
        Settings.from_env({"ENTITLEMENTS_MAIL_FROM": "nobody"}, env_file=None)
