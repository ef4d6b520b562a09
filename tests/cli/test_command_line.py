"""The ``entitlements`` command line: clear messages and exit statuses, never a traceback."""

from __future__ import annotations

import getpass
import subprocess
import sys

import pytest

from domain.catalog import Catalog
from entitlements.bootstrap import build_application
from entitlements.cli import DEMO_TENANT, main
from entitlements.settings import ConfigurationError, Settings


def test_load_prints_what_was_loaded(database, capsys):
    assert main(["load", str(DEMO_TENANT)]) == 0
    out = capsys.readouterr().out
    assert "33 item(s) changed, 0 unchanged" in out
    assert "production-access (engineering)" in out and "escalates after P3D" in out


def test_loading_the_same_file_again_reports_nothing_changed(database, capsys):
    main(["load", "-q", str(DEMO_TENANT)])
    assert main(["load", "-q", str(DEMO_TENANT)]) == 0
    assert "0 item(s) changed, 33 unchanged" in capsys.readouterr().out


def test_invalid_tenant_file_lists_its_problems_on_stderr(database, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("users:\n  - {id: alice, manager: nobody}\n")
    assert main(["load", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "cannot be loaded (1 problem(s))" in captured.err
    assert "users[0] (alice).manager: no user 'nobody'" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_missing_tenant_file_is_a_clear_error(database, capsys):
    assert main(["load", "nowhere.yaml"]) == 1
    assert "nowhere.yaml cannot be loaded" in capsys.readouterr().err


def test_unsupported_database_url_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("ENTITLEMENTS_DATABASE_URL", "mysql://localhost/x")
    assert main(["load", str(DEMO_TENANT)]) == 1
    assert "is neither sqlite:///PATH nor postgresql://" in capsys.readouterr().err


def test_unknown_command_exits_with_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "entitlements.cli", "demo-tenant"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == str(DEMO_TENANT)


def test_settings_read_a_dotenv_file_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ENTITLEMENTS_DATABASE_URL=sqlite:///from-file.db\nENTITLEMENTS_BASE_URL=http://portal.example/\n")
    settings = Settings.from_env({"ENTITLEMENTS_BASE_URL": "https://env.example"}, env_file=env_file)
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.base_url == "https://env.example"


def test_settings_refuse_an_unknown_clock():
    with pytest.raises(ConfigurationError, match="ENTITLEMENTS_CLOCK"):
        Settings.from_env({"ENTITLEMENTS_CLOCK": "sundial"}, env_file=None)


def test_default_database_is_the_sqlite_file_under_var():
    assert Settings.from_env({}, env_file=None).database_url == "sqlite:///var/entitlements.db"


# --- review fixes ----------------------------------------------------------------------------------

FIRST_FILE = """
users: [{id: bob}]
catalogs: [{id: c}]
access_packages: [{id: p, catalog: c}]
policies:
  - {id: pol, access_package: p}
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def first_actor(catalog_id: str) -> str:
    app = build_application(Settings.from_env())
    try:
        return next(iter(app.events.get(Catalog.id_for(catalog_id)))).actor
    finally:
        app.close()


def test_policy_joining_an_earlier_package_counts_the_package_as_changed(database, tmp_path, capsys):
    main(["load", "-q", write(tmp_path, "first.yaml", FIRST_FILE)])
    later = write(tmp_path, "later.yaml", "policies: [{id: pol2, access_package: p}]\n")
    assert main(["load", "-q", later]) == 0
    assert main(["load", "-q", later]) == 0
    out = capsys.readouterr().out
    assert "2 item(s) changed, 0 unchanged" in out and "0 item(s) changed, 2 unchanged" in out


def test_load_records_the_os_user_as_actor_by_default(database, tmp_path, monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "jane")
    assert main(["load", "-q", write(tmp_path, "t.yaml", FIRST_FILE)]) == 0
    assert first_actor("c") == "tenant-file:jane"


def test_load_records_the_given_actor(database, tmp_path):
    assert main(["load", "-q", "--actor", "change-1234", write(tmp_path, "t.yaml", FIRST_FILE)]) == 0
    assert first_actor("c") == "change-1234"


def test_tokens_create_prints_a_token_for_a_known_user(database, capsys):
    main(["load", "-q", str(DEMO_TENANT)])
    capsys.readouterr()
    assert main(["tokens", "create", "ben"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("ent_") and len(token) > 40


def test_tokens_create_refuses_an_unknown_user(database, capsys):
    main(["load", "-q", str(DEMO_TENANT)])
    assert main(["tokens", "create", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def test_rebuild_reports_events_per_second(database, capsys):
    main(["load", "-q", str(DEMO_TENANT)])
    capsys.readouterr()
    assert main(["rebuild", "--quiet", "pending", "history"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt pending, history: 33 log events in" in out and "events/s" in out


def test_rebuild_of_an_unknown_read_model_names_the_known_ones(database, capsys):
    assert main(["rebuild", "pending", "nope"]) == 1
    assert "no read model named 'nope'; the read models are: facts, pending, history" in capsys.readouterr().err
