"""The domain is pure: no web framework, no SQL driver, no serialisation schemas, no templates,
and no wall clock outside the system clock."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

from domain.application import EntitlementsApplication
from tests.unit.builders import START, escalation, stage

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = {"flask", "psycopg", "psycopg2", "psycopg_pool", "marshmallow", "jinja2", "sqlite3", "sqlalchemy"}
SOURCES = sorted(DOMAIN.glob("**/*.py"))


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_domain_imports_no_web_sql_schema_or_template_library():
    assert len(SOURCES) > 10, f"no domain sources found under {DOMAIN}"
    offenders = {
        f"{path.relative_to(DOMAIN)}: {module}"
        for path in SOURCES
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }

    assert offenders == set()


def test_the_layers_below_the_composition_root_never_import_it_or_the_web():
    root = DOMAIN.parent
    below = {"domain": {"entitlements", "web"}, "projections": {"entitlements", "web"}, "notifier": {"entitlements", "web"},
             "transparency_log": {"entitlements", "web", "projections", "notifier", "domain"}}
    offenders = {
        f"{path.relative_to(root)}: {module}"
        for package, above in below.items()
        for path in sorted((root / package).glob("**/*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] in above
    }

    assert offenders == set()


def test_only_the_system_clock_reads_the_wall_clock():
    readers = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"now", "utcnow", "today"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                readers.append(path.name)

    assert readers == ["clock.py"]


def test_every_event_takes_its_time_from_the_injected_clock(tenant, submit, app, clock):
    tenant(stages=[stage("bob", reminder="P7D", escalate_to=escalation("erin", after="P3D"))])
    receipt = submit()
    clock.advance(timedelta(days=3))
    app.escalate(receipt.id)
    clock.advance(timedelta(days=4))
    app.remind_approvers(receipt.id)
    app.decide(request_id=receipt.id, approver_id="erin", decision="approve")

    moments = {START, START + timedelta(days=3), START + timedelta(days=7)}
    recorded = app.recorder.select_notifications(start=1, limit=1000)
    stamps = {app.mapper.to_domain_event(n).timestamp for n in recorded}
    assert stamps <= moments


def test_the_application_ignores_persistence_settings_in_the_process_environment(monkeypatch, clock):
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.sqlite")
    monkeypatch.setenv("ENTITLEMENTS_PERSISTENCE_MODULE", "eventsourcing.sqlite")
    monkeypatch.setenv("SQLITE_DBNAME", "/nonexistent/folder/stray.db")

    app = EntitlementsApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)

    assert type(app.recorder).__module__ == "eventsourcing.popo"
