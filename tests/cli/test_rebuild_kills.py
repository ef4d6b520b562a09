"""``entitlements rebuild`` killed (SIGKILL) at any instant leaves every read model, the directory
and the tokens as they were: the rebuild builds beside and swaps in one transaction."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant

ENTITLEMENTS = [sys.executable, "-m", "entitlements.cli"]
KILLS = 20
PACKAGES = 40
USERS = 5


def tenant() -> dict:
    users = [{"id": f"user-{n}", "email": f"user-{n}@example.test"} for n in range(USERS)]
    packages = [
        {"id": f"package-{n}", "catalog": "it", "name": f"Package {n}", "resources": [{"id": f"group-{n}", "kind": "group"}]}
        for n in range(PACKAGES)
    ]
    policies = [
        {"id": f"policy-{n}", "access_package": f"package-{n}", "approval": {"required": False}, "expiration": {"after": "P30D"}}
        for n in range(PACKAGES)
    ]
    return {"users": users, "catalogs": [{"id": "it", "name": "IT"}], "access_packages": packages, "policies": policies}


@pytest.fixture
def history(database_url, tmp_path):
    """A log of a few thousand events, projected; a token of user-0."""
    import yaml

    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(tenant()), encoding="utf-8")
    services = build_services(Settings(database_url=database_url))
    try:
        load_tenant(services.app, path)
        for n in range(PACKAGES):
            for user in range(USERS):
                services.app.submit_request(requestor_id=f"user-{user}", access_package_id=f"package-{n}")
        token = services.tokens.create("user-0", now=services.app.clock.now())
        services.read_models.catch_up()
        yield services, token
    finally:
        services.close()


def state(services, token) -> tuple:
    views = services.read_models
    return (
        {name: views.dump(name) for name in views.models},
        views.positions(),
        views.failures(),
        services.tokens.user_for(token, now=services.app.clock.now()),
        views.user("user-0"),
    )


def rebuild_process(database_url: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "ENTITLEMENTS_DATABASE_URL": database_url}
    return subprocess.Popen(
        [*ENTITLEMENTS, "rebuild"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def started_rebuilding(process: subprocess.Popen) -> None:
    """Returns when the progress bar appears: the rebuild has begun."""
    assert process.stderr is not None
    first = process.stderr.read(1)
    assert first, "the rebuild wrote nothing"


def test_a_rebuild_killed_at_any_instant_leaves_every_read_model_as_it_was(history, database_url, tmp_path):
    services, token = history
    before = state(services, token)
    assert before[0]["facts"] and before[3] == "user-0"

    full = rebuild_process(database_url, tmp_path)
    started_at = time.monotonic()
    started_rebuilding(full)
    out, err = full.communicate(timeout=120)
    assert full.returncode == 0, err
    took = time.monotonic() - started_at
    seconds = float(re.search(rb"in ([0-9.]+) s", out).group(1))
    assert state(services, token) == before  # a complete rebuild gives the same rows

    window = max(took, seconds) * 1.2
    for kill in range(KILLS):
        process = rebuild_process(database_url, tmp_path)
        started_rebuilding(process)
        time.sleep(window * kill / KILLS)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
        assert state(services, token) == before, f"after kill {kill + 1} at {window * kill / KILLS:.3f} s"
