"""``entitlements tokens create / list / revoke``: tokens with a public id, an expiry in the
application's time, and revocation that the API honours at once, in every process."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta

import psycopg
import pytest

from entitlements.bootstrap import build_services
from entitlements.cli import DEMO_TENANT, main
from entitlements.settings import Settings
from entitlements.tokens import token_hash
from web.app import create_app

ENTITLEMENTS = [sys.executable, "-m", "entitlements.cli"]
CREATED = re.compile(r"^created token (tok_[0-9a-f]{12}) for (\S+); it (expires (\S+)|never expires)$")
OLD_TOKEN = "ent_made-before-tokens-could-expire"


@pytest.fixture
def tenant(database, capsys):
    assert main(["load", "-q", str(DEMO_TENANT)]) == 0
    capsys.readouterr()


@pytest.fixture
def manual_clock(database, monkeypatch):
    """``ENTITLEMENTS_CLOCK=manual``: answers a function that moves the stored clock forward."""
    monkeypatch.setenv("ENTITLEMENTS_CLOCK", "manual")

    def move(delta: timedelta) -> datetime:
        services = build_services(Settings.from_env())
        try:
            services.app.clock.set(services.app.clock.now() + delta)
            return services.app.clock.now()
        finally:
            services.close()

    return move


def clock_now() -> datetime:
    services = build_services(Settings.from_env())
    try:
        return services.app.clock.now()
    finally:
        services.close()


def create(capsys, *args: str) -> tuple[str, re.Match]:
    """Runs ``tokens create``; answers the token (stdout) and the parsed stderr line."""
    assert main(["tokens", "create", *args]) == 0
    captured = capsys.readouterr()
    line = CREATED.match(captured.err.strip())
    assert line, captured.err
    return captured.out, line


def listing(capsys, user: str) -> dict[str, list[str]]:
    """``tokens list USER``: the rows by token id (the header row under "ID")."""
    assert main(["tokens", "list", user]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    return {row[0]: row[1:] for row in rows}


def web_client(services):
    services.read_models.catch_up()  # the directory read model knows the demo users
    return create_app(services, project_inline=True).test_client()


def status_of(client, token: str) -> tuple[int, dict]:
    response = client.get("/api/v1/me/requests", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json


def test_create_prints_only_the_token_on_stdout_and_its_id_and_expiry_on_stderr(tenant, capsys):
    out, line = create(capsys, "ben")

    assert re.fullmatch(r"ent_\S{40,}\n", out)
    assert line[2] == "ben"


def test_create_expires_in_p90d_of_the_application_clock_by_default(tenant, manual_clock, capsys):
    now = manual_clock(timedelta(days=400))  # the manual clock, far from the wall clock

    _, line = create(capsys, "ben")

    assert line[4] == (now + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_create_with_expires_in_sets_that_expiry(tenant, manual_clock, capsys):
    now = clock_now()

    _, line = create(capsys, "ben", "--expires-in", "PT12H")

    assert line[4] == (now + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_create_with_expires_in_never_makes_a_token_that_does_not_expire(tenant, capsys):
    _, line = create(capsys, "ben", "--expires-in", "never")

    assert line[3] == "never expires"
    assert listing(capsys, "ben")[line[1]][1:3] == ["never", "active"]


@pytest.mark.parametrize("value", ["P1Y", "P2M", "soon", "PT0S"])
def test_create_refuses_an_expiry_that_is_not_a_duration_in_days_or_hours(tenant, capsys, value):
    assert main(["tokens", "create", "ben", "--expires-in", value]) == 2
    captured = capsys.readouterr()

    assert "Invalid value for '--expires-in'" in captured.err and "or 'never'" in captured.err
    assert captured.out == "" and "Traceback" not in captured.err
    assert main(["tokens", "list", "ben"]) == 0 and capsys.readouterr().out == ""  # nothing was made


def test_list_shows_each_tokens_id_created_expires_and_state(tenant, manual_clock, capsys):
    created = clock_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    _, short = create(capsys, "ben", "--expires-in", "P1D")
    _, revoked = create(capsys, "ben")
    _, lasting = create(capsys, "ben", "--expires-in", "never")
    assert main(["tokens", "revoke", revoked[1]]) == 0
    capsys.readouterr()
    manual_clock(timedelta(days=1))

    rows = listing(capsys, "ben")

    assert rows["ID"] == ["CREATED", "EXPIRES", "STATE", "REVOKED"]
    assert rows[short[1]] == [created, short[4], "expired", "-"]
    assert rows[revoked[1]][:3] == [created, revoked[4], "revoked"] and rows[revoked[1]][3] == created
    assert rows[lasting[1]] == [created, "never", "active", "-"]


def test_list_of_an_unknown_user_is_a_clear_error(tenant, capsys):
    assert main(["tokens", "list", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def test_list_of_a_user_without_tokens_says_so_on_stderr(tenant, capsys):
    assert main(["tokens", "list", "carol"]) == 0
    captured = capsys.readouterr()

    assert (captured.out, captured.err.strip()) == ("", "carol has no API tokens")


def test_a_token_revoked_by_another_process_is_refused_by_the_api_at_once(tenant, capsys):
    out, line = create(capsys, "ben")
    services = build_services(Settings.from_env())
    try:
        client = web_client(services)
        before = status_of(client, out.strip())  # the caller is now remembered for a few seconds
        revoke = subprocess.run([*ENTITLEMENTS, "tokens", "revoke", line[1]], capture_output=True, text=True)
        after = status_of(client, out.strip())
    finally:
        services.close()

    assert before[0] == 200, before[1]
    assert (revoke.returncode, revoke.stdout.strip()) == (0, f"revoked token {line[1]} of ben"), revoke.stderr
    assert after[0] == 401
    assert after[1]["error"]["details"]["reason"] == "revoked"
    assert f"this API token ({line[1]}) was revoked" in after[1]["error"]["message"]


def test_revoke_with_an_unknown_id_revokes_nothing(tenant, capsys):
    _, line = create(capsys, "ben")

    assert main(["tokens", "revoke", line[1], "tok_000000000000"]) == 1
    captured = capsys.readouterr()

    assert "no API token 'tok_000000000000'" in captured.err and "Traceback" not in captured.err
    assert listing(capsys, "ben")[line[1]][2] == "active"


def test_revoking_a_revoked_token_again_says_so_and_succeeds(tenant, capsys):
    _, line = create(capsys, "ben")
    main(["tokens", "revoke", line[1]])
    capsys.readouterr()

    assert main(["tokens", "revoke", line[1]]) == 0
    assert f"token {line[1]} of ben was already revoked at" in capsys.readouterr().out


# --- tables made before tokens had ids, expiry and revocation ---------------------------------


@pytest.fixture
def old_table(database_url, tmp_path, monkeypatch):
    """A database (each backend) whose ``api_tokens`` has only the first three columns, holding
    ``OLD_TOKEN`` for ben, then the demo tenant loaded (which migrates the table)."""
    monkeypatch.setenv("ENTITLEMENTS_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    create_table = "CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at TEXT NOT NULL)"
    row = (token_hash(OLD_TOKEN), "ben", "2025-01-02T03:04:05+00:00")
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute(create_table)
            connection.execute("INSERT INTO api_tokens VALUES (?, ?, ?)", row)
    else:
        with psycopg.connect(database_url) as connection:
            connection.execute(create_table)
            connection.execute("INSERT INTO api_tokens VALUES (%s, %s, %s)", row)
    assert main(["load", "-q", str(DEMO_TENANT)]) == 0


def test_tokens_of_a_table_made_before_expiry_get_an_id_and_never_expire(old_table, capsys):
    capsys.readouterr()

    rows = listing(capsys, "ben")

    (token_id,) = (key for key in rows if key != "ID")
    assert re.fullmatch(r"tok_[0-9a-f]{12}", token_id)
    assert rows[token_id] == ["2025-01-02T03:04:05Z", "never", "active", "-"]


def test_tokens_of_a_table_made_before_expiry_keep_working_until_revoked(old_table, capsys):
    services = build_services(Settings.from_env())
    try:
        client = web_client(services)
        before = status_of(client, OLD_TOKEN)
        (info,) = services.tokens.list("ben")
        assert main(["tokens", "revoke", info.id]) == 0
        after = status_of(client, OLD_TOKEN)
    finally:
        services.close()

    assert (before[0], after[0]) == (200, 401)


@pytest.mark.parametrize(
    "arguments",
    [
        ["tokens", "create", "b\udcffn"],  # bytes that are not UTF-8 reach Python as lone surrogates
        ["tokens", "list", "nul\x00here"],
        ["tokens", "create", "u" * 201],
        ["tokens", "revoke", "tok_\udcff"],
    ],
)
def test_a_user_or_token_id_that_is_not_a_valid_id_is_a_usage_error(tenant, capsys, arguments):
    assert main(arguments) == 2
    captured = capsys.readouterr()

    assert "Invalid value" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
