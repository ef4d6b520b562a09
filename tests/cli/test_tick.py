"""``entitlements tick`` and ``entitlements schedule``: the deadlines run from the command line,
and two processes at once on one database never record an event twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
import yaml

from entitlements.bootstrap import build_services
from entitlements.cli import main
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from tests.events import event_counts

ENTITLEMENTS = [sys.executable, "-m", "entitlements.cli"]
DAY = timedelta(days=1)
USERS = [f"user-{n:02}" for n in range(1, 21)]
DONE_LINE = re.compile(r"^done\s+(\S+) (\S+)", re.MULTILINE)


def tenant() -> dict:
    return {
        "users": [{"id": "amy", "email": "amy@contoso.example"}]
        + [{"id": user, "email": f"{user}@contoso.example"} for user in USERS],
        "catalogs": [{"id": "tools"}],
        "access_packages": [
            {"id": "wiki", "catalog": "tools", "resources": [{"id": "wiki-editors", "kind": "group"}]},
            {"id": "badge", "catalog": "tools", "resources": [{"id": "badge-holders", "kind": "group"}]},
        ],
        "policies": [
            {
                "id": "wiki-policy",
                "access_package": "wiki",
                "approval": {"required": True, "stages": [{"approvers": [{"user": "amy"}], "reminder": "P7D", "timeout": "P14D"}]},
                "expiration": {"after": "P30D"},
                "extension": {"allowed": True, "reminder_before": "P7D"},
            },
            {"id": "badge-policy", "access_package": "badge", "approval": {"required": False}, "expiration": {"after": "P30D"}},
        ],
    }


@pytest.fixture
def manual(database_url, tmp_path, monkeypatch):
    """Services on ``database_url`` with the deployment's manual clock, and the environment the
    command line needs to use the same database and clock."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENTITLEMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("ENTITLEMENTS_CLOCK", "manual")
    monkeypatch.delenv("ENTITLEMENTS_SMTP_URL", raising=False)
    services = build_services(Settings.from_env())
    tenant_file = tmp_path / "tenant.yaml"
    tenant_file.write_text(yaml.safe_dump(tenant()), encoding="utf-8")
    load_tenant(services.app, tenant_file)
    yield services, dict(os.environ)
    services.close()


def run_at_once(commands: int, env: dict) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen([*ENTITLEMENTS, "tick"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(commands)
    ]
    finished = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return finished


def test_tick_with_nothing_due_says_so(database, capsys):
    assert main(["tick"]) == 0
    assert "ran 0 deadline(s); skipped 0, failed 0" in capsys.readouterr().err


def test_tick_prints_each_deadline_it_ran(manual, capsys):
    services, _ = manual
    request = services.app.submit_request(requestor_id="user-01", access_package_id="wiki")
    services.app.clock.set(services.app.clock.now() + 7 * DAY)

    assert main(["tick"]) == 0
    captured = capsys.readouterr()

    assert f"done    request_reminder {request.id} (stage 1): pending_approval" in captured.out
    assert "ran 1 deadline(s): 1 request_reminder; skipped 0, failed 0" in captured.err


def test_two_tick_processes_at_once_record_each_event_once(manual):
    services, env = manual
    app, clock = services.app, services.app.clock
    start = clock.now()
    pending = [app.submit_request(requestor_id=user, access_package_id="wiki") for user in USERS[:10]]
    granted = [app.submit_request(requestor_id=user, access_package_id="wiki") for user in USERS[10:]]
    for request in granted:
        app.decide(request_id=request.id, approver_id="amy", decision="approve")
    badges = [app.submit_request(requestor_id=user, access_package_id="badge") for user in USERS]
    rounds = [  # (when, what must be done by then, in this round)
        (start + 8 * DAY, Counter({"request_reminder": 10})),
        (start + 15 * DAY, Counter({"request_expiry": 10})),
        (start + 24 * DAY, Counter({"access_expiry_reminder": 10})),
        (start + 31 * DAY, Counter({"access_expiry": 30})),
        (start + 32 * DAY, Counter()),
    ]

    for when, expected in rounds:
        clock.set(when)
        finished = run_at_once(2, env)

        assert [process.returncode for process in finished] == [0, 0], [process.stderr for process in finished]
        done = [match.groups() for process in finished for match in DONE_LINE.finditer(process.stdout)]
        assert Counter(kind for kind, _ in done) == expected, when
        assert len(set(done)) == len(done)  # no deadline done by both

    counts = event_counts(services.app)
    once = ("ApproverReminded", "Expired", "ExpiryReminded", "AccessExpired")
    assert [key for key, count in counts.items() if key[1] in once and count > 1] == []
    assert Counter(kind for (_, kind), count in counts.items() if kind in once) == {
        "ApproverReminded": 10, "Expired": 10, "ExpiryReminded": 10, "AccessExpired": 30
    }
    assert {app.request_state(r.id) for r in pending} == {"expired"}
    assert {app.request_state(r.id) for r in granted + badges} == {"access_expired"}


def test_schedule_runs_until_stopped_and_runs_what_falls_due(manual):
    services, env = manual
    request = services.app.submit_request(requestor_id="user-01", access_package_id="wiki")
    process = subprocess.Popen(
        [*ENTITLEMENTS, "schedule", "--interval", "0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        services.app.clock.set(services.app.clock.now() + 14 * DAY)
        deadline = time.monotonic() + 30
        while services.app.request_state(request.id) != "expired" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # the process logs what it ran just after recording it
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)

    assert services.app.request_state(request.id) == "expired"
    assert process.returncode == 0, err
    assert "scheduler: ran 1 deadline(s): 1 request_expiry" in err
    assert "Traceback" not in err
