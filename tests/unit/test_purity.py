"""The domain is pure: no web framework, no SQL driver, no serialisation schemas, no templates,
and no wall clock outside the system clock."""

from __future__ import annotations

import ast
from pathlib import Path

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
