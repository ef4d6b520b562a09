"""``entitlements login-link USER_ID``: a one-time portal sign-in URL, valid 15 minutes."""

from __future__ import annotations

import re

import pytest

from entitlements.bootstrap import build_services
from entitlements.cli import DEMO_TENANT, main
from entitlements.settings import Settings
from web.app import create_app


@pytest.fixture
def tenant(database, capsys, monkeypatch):
    monkeypatch.setenv("ENTITLEMENTS_BASE_URL", "https://access.contoso.example")
    assert main(["load", "-q", str(DEMO_TENANT)]) == 0
    capsys.readouterr()


def test_login_link_prints_only_the_url_on_stdout_at_the_base_url(tenant, capsys):
    assert main(["login-link", "ben"]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"https://access\.contoso\.example/sign-in/link/[A-Za-z0-9_-]{40,}\n", out)
    assert "for ben" in err and "valid until" in err


def test_login_link_for_someone_not_in_the_directory_fails_with_a_message(tenant, capsys):
    assert main(["login-link", "nobody"]) != 0
    out, err = capsys.readouterr()
    assert out == "" and "nobody" in err and "Traceback" not in err


def test_the_printed_link_signs_in_once(tenant, capsys):
    assert main(["login-link", "carol"]) == 0
    path = capsys.readouterr().out.strip().removeprefix("https://access.contoso.example")
    services = build_services(Settings.from_env())
    try:
        client = create_app(services, project_inline=True).test_client()
        page = client.get(path)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post(path, data={"csrf_token": token}).status_code == 302
        assert client.get("/approvals").status_code == 200
        assert create_app(services, project_inline=True).test_client().get(path).status_code == 400
    finally:
        services.close()
