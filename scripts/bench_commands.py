"""Command benchmark: what a submit, decide, deliver, revoke and remove cost, and how that grows.

Run it through ``scripts/bench_commands`` (``--help`` lists the options). For each backend
(SQLite in a temporary directory, PostgreSQL in a fresh database that is dropped afterwards) one
run measures:

(a) the raw ceiling of the machine: a plain sqlite3/psycopg transaction inserting as many rows, of
    the same topics and sizes, as one submit (auto-approved, delivered into one group) writes, into
    a table shaped like the library's stored-events table; on one connection and on 8;
(b) throughput of submit, decide, deliver and revoke through the application, with 1 client, 8
    clients sharing one application (one web worker's threads) and 8 clients with an application
    each (like separate worker processes), and through HTTP (``entitlements web``, 8 keep-alive
    clients): ops/s, p50, p99;
(c) the cost of each command (p50, p99, mean) at group sizes 100, 10,000 and 100,000, and at 1,
    1,000 and 10,000 past requests of one user (the Assignment of user x package grows with each);
    every size is set up first, then sampled in turn (one cycle at each size, round after round),
    so that the machine's other load weighs on all sizes alike;
(d) 8 clients granting distinct new users into one group of 1,000 members: total time, and
    whether every grant is recorded (group members and delivered assignments counted afterwards).

It only uses the public API (``build_application``/``build_services``, the tenant loader, the
application's commands, the resource kind's ``grant``, ``entitlements web``), so the same script
measures any checkout: ``--code DIR`` runs the measurements against the code in DIR (each part
runs in a child process with DIR first on PYTHONPATH), and ``--compare-with REF`` measures a second
checkout in the same run (a git worktree of REF under /tmp, or an existing directory) and prints
both side by side with the ratio.

Setup is kept out of the timings and fast on any code: configuration and bulk data are written
through an application with the library's aggregate cache (nothing is replayed from the database
while setting up), group members are granted in bulk through the group resource kind and saved in
chunks, past requests are played through the commands themselves. The timings then use a fresh
application without cache, as a deployment runs it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECTIONS = ("ceiling", "throughput", "http", "groups", "concurrent", "history")
BACKENDS = ("sqlite", "postgresql")
CACHE_ENV = {
    "AGGREGATE_CACHE_MAXSIZE": "100000000",
    "AGGREGATE_CACHE_FASTFORWARD": "n",
    "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
}
LABEL = "bench"  # set in each child, for the notes


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {LABEL}: {message}", file=sys.stderr, flush=True)


# =============================================================================================
# Statistics
# =============================================================================================


def percentile(values: list[float], q: float) -> float:
    """Nearest rank on sorted ``values`` (seconds in, milliseconds out)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))] * 1000


def summary(latencies: list[float], *, wall: float | None = None, errors: list[str] | None = None) -> dict:
    errors = errors or []
    n = len(latencies)
    out = {
        "n": n,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "mean": (sum(latencies) / n * 1000) if n else float("nan"),
        "errors": len(errors),
        "error": errors[0] if errors else None,
    }
    if wall is not None:
        out["wall"] = wall
        out["ops"] = n / wall if wall > 0 else float("nan")
    return out


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


# =============================================================================================
# Child side: the tenant, the applications, the measurements (imports the code under test)
# =============================================================================================


class BenchClock:
    """The application's time: starts at the wall clock and moves only when told to (delayed
    starts are made due by moving it), so the measurements do not depend on real time passing."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


APPROVER = "boss"
ADMIN = "root"


def user_entry(user_id: str, **extra: Any) -> dict:
    return {"id": user_id, "display_name": f"User {user_id}", "email": f"{user_id}@contoso.example", "organization": "Contoso", **extra}


def base_tenant() -> dict:
    return {
        "users": [user_entry(APPROVER), user_entry(ADMIN, roles=["admin"])],
        "catalogs": [{"id": "bench", "name": "Benchmark", "enabled": True}],
        "access_packages": [],
        "policies": [],
    }


def package_entries(package_id: str) -> tuple[dict, list[dict]]:
    """A package whose one resource is the group ``<package>-grp``, with two policies: ``-auto``
    (no approval: a submit is approved and delivered at once) and ``-appr`` (one stage, decided by
    ``boss``)."""
    package = {
        "id": package_id,
        "catalog": "bench",
        "name": f"Package {package_id}",
        "resources": [{"id": group_of(package_id), "kind": "group"}],
    }
    common = {"access_package": package_id, "requestors": {"scope": "all_members"}, "expiration": {"after": "P3650D"}}
    policies = [
        {"id": f"{package_id}-auto", "name": "Automatic", "approval": {"required": False}, **common},
        {
            "id": f"{package_id}-appr",
            "name": "Approved by boss",
            "approval": {"required": True, "stages": [{"approvers": [{"user": APPROVER}], "timeout": "P3650D"}]},
            **common,
        },
    ]
    return package, policies


def group_of(package_id: str) -> str:
    return f"{package_id}-grp"


def load_tenant(app, *, users: list[str], packages: list[str], first: bool) -> float:
    """Stores the benchmark's configuration through the tenant loader (users in chunks)."""
    from entitlements.tenant import load_tenant_data

    started = time.perf_counter()
    data = base_tenant() if first else {"users": [], "catalogs": [], "access_packages": [], "policies": []}
    for package_id in packages:
        package, policies = package_entries(package_id)
        data["access_packages"].append(package)
        data["policies"].extend(policies)
    chunk = 2000
    data["users"].extend(user_entry(u) for u in users[:chunk])
    load_tenant_data(app, data, source="bench", actor="bench")
    for offset in range(chunk, len(users), chunk):
        load_tenant_data(app, {"users": [user_entry(u) for u in users[offset : offset + chunk]]}, source="bench", actor="bench")
    return time.perf_counter() - started


class Bench:
    """The applications of one child: ``fresh()`` builds what a deployment runs (no cache);
    ``setup()`` the same application class and settings plus the library's aggregate cache."""

    def __init__(self, url: str, clock: BenchClock) -> None:
        from entitlements.bootstrap import build_application
        from entitlements.settings import Settings

        self.url = url
        self.clock = clock
        self.settings = Settings(database_url=url)
        self._build = build_application
        self.opened: list[Any] = []
        first = self.fresh()  # creates the tables (under the schema lock on PostgreSQL)
        self.app_class = type(first)
        self.env = dict(first.env)

    def fresh(self):
        app = self._build(self.settings, clock=self.clock)
        self.opened.append(app)
        return app

    def setup(self):
        app = self.app_class({**self.env, **CACHE_ENV}, clock=self.clock)
        self.opened.append(app)
        return app

    def close(self, app) -> None:
        try:
            app.close()
        finally:
            if app in self.opened:
                self.opened.remove(app)

    def close_all(self) -> None:
        for app in list(self.opened):
            self.close(app)


def bulk_grant(app, group_id: str, members: int, *, now: datetime, prefix: str, chunk: int = 1000) -> float:
    """``members`` users granted into ``group_id`` through the group resource kind, saved ``chunk``
    at a time (with the cache, no grant replays the group). The members are not directory users:
    only the resource kind's ``grant`` sees them."""
    kind = app.resource_kinds["group"]
    started = time.perf_counter()
    pending: dict[int, Any] = {}
    last = started
    for i in range(members):
        changed = kind.grant(app, user_id=f"{prefix}{i:07d}", resource_id=group_id, assignment_id=str(uuid.uuid4()), now=now)
        for aggregate in changed:
            pending.setdefault(id(aggregate), aggregate)
        if (i + 1) % chunk == 0 or i + 1 == members:
            app.save(*pending.values())
            pending = {}
            if time.perf_counter() - last > 15:
                note(f"  granted {i + 1:,} of {members:,} members ({(i + 1) / (time.perf_counter() - started):,.0f}/s)")
                last = time.perf_counter()
    return time.perf_counter() - started


def timed(samples: dict[str, list[float]], errors: dict[str, list[str]], command: str, call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        result = call()
    except Exception as error:  # a failed command is counted and reported, not timed
        errors.setdefault(command, []).append(describe_error(error))
        return None
    samples.setdefault(command, []).append(time.perf_counter() - started)
    return result


class Cycle:
    """The commands of one user's request, each timed on its own:

    - ``submit (auto, delivered)``: the ``-auto`` policy, approved and delivered at once (this is
      where the group is touched), then ``remove`` (an administrator withdraws it);
    - ``submit (pending)`` under ``-appr`` with a start one hour ahead, ``decide`` (approve: the
      delivery is started but not yet due), the clock moved two hours, ``deliver`` (the grant into
      the group), ``revoke`` (the approver undoes it: withdrawn from the group)."""

    AUTO = ("submit (auto, delivered)", "remove")
    APPROVED = ("submit (pending)", "decide", "deliver", "revoke")
    COMMANDS = AUTO + APPROVED

    def __init__(self, app, clock: BenchClock, package_id: str) -> None:
        self.app = app
        self.clock = clock
        self.package_id = package_id
        self.assignment_ids: dict[str, Any] = {}

    def assignment_id(self, user: str):
        if user not in self.assignment_ids:
            found = self.app.find_assignment(user, self.package_id)
            if found is None:
                raise RuntimeError(f"no assignment of {user} for {self.package_id}")
            self.assignment_ids[user] = found.id
        return self.assignment_ids[user]

    def auto(self, user: str, samples, errors) -> bool:
        app = self.app
        receipt = timed(samples, errors, self.AUTO[0], lambda: app.submit_request(
            requestor_id=user, access_package_id=self.package_id, policy_id=f"{self.package_id}-auto"))
        if receipt is None:
            return False
        if receipt.state != "delivered":
            errors.setdefault(self.AUTO[0], []).append(f"state {receipt.state!r} after an auto-approved submit")
        assignment_id = self.assignment_id(user)
        return timed(samples, errors, "remove", lambda: app.remove_access(assignment_id=assignment_id, admin_id=ADMIN, reason="bench")) is not None

    def approved(self, user: str, samples, errors) -> bool:
        app = self.app
        receipt = timed(samples, errors, "submit (pending)", lambda: app.submit_request(
            requestor_id=user, access_package_id=self.package_id, policy_id=f"{self.package_id}-appr",
            start=self.clock.now() + timedelta(hours=1)))
        if receipt is None:
            return False
        request_id = receipt.id
        if timed(samples, errors, "decide", lambda: app.decide(request_id=request_id, approver_id=APPROVER, decision="approve")) is None:
            return False
        self.clock.advance(timedelta(hours=2))
        assignment_id = self.assignment_id(user)
        delivered = timed(samples, errors, "deliver", lambda: app.deliver(assignment_id))
        if delivered is None:
            return False
        if delivered.state != "delivered":
            errors.setdefault("deliver", []).append(f"state {delivered.state!r} after deliver")
        return timed(samples, errors, "revoke", lambda: app.revoke_approval(request_id=request_id, approver_id=APPROVER, reason="bench")) is not None


def warm_up(app, clock: BenchClock, package_id: str, cycles: int = 3) -> None:
    """A few untimed cycles of the user named like ``package_id`` on that package of its own: the
    fresh application's connections, statements and code paths are warm before the first sample."""
    cycle = Cycle(app, clock, package_id)
    for _ in range(cycles):
        cycle.auto(package_id, {}, {})
        cycle.approved(package_id, {}, {})


def sample_in_turn(cycles: dict[int, tuple[Cycle, list[str]]], *, samples: int, budget: float, min_samples: int) -> dict[str, dict]:
    """One cycle at each size in turn, round after round, so that whatever else the machine does
    meanwhile weighs on every size alike. A size stops when it has ``samples`` cycles, or when
    its own cycles have taken ``budget`` seconds (never before ``min_samples``). Answers, for
    each size, the summaries of its commands, the cycles taken and whether the budget cut it."""
    times: dict[int, dict[str, list[float]]] = {size: {} for size in cycles}
    errors: dict[int, dict[str, list[str]]] = {size: {} for size in cycles}
    spent = dict.fromkeys(cycles, 0.0)
    taken = dict.fromkeys(cycles, 0)
    cut: dict[int, bool] = dict.fromkeys(cycles, False)
    active = list(cycles)
    index = 0
    while active:
        for size in list(active):
            cycle, users = cycles[size]
            user = users[index % len(users)]
            started = time.perf_counter()
            cycle.auto(user, times[size], errors[size])
            cycle.approved(user, times[size], errors[size])
            spent[size] += time.perf_counter() - started
            taken[size] += 1
            if taken[size] >= samples:
                active.remove(size)
            elif taken[size] >= min_samples and spent[size] > budget:
                cut[size] = True
                active.remove(size)
        index += 1
    return {
        str(size): {
            "commands": {c: summary(times[size].get(c, []), errors=errors[size].get(c)) for c in Cycle.COMMANDS},
            "samples": taken[size], "cut": cut[size], "seconds": spent[size],
        }
        for size in cycles
    }


def describe_sizes(label: str, measured: dict[str, dict]) -> None:
    for size, entry in measured.items():
        note(f"{label} {int(size):,}: {entry['samples']} samples" + (" (budget reached)" if entry["cut"] else "") + "; " +
             ", ".join(f"{c} {s['mean']:.1f} ms" for c, s in entry["commands"].items()))


# --- (a) the raw ceiling ---------------------------------------------------------------------


def events_table(app) -> str:
    return getattr(app.recorder, "events_table_name", None) or "stored_events"


def pg_conninfo_from_env(env: dict) -> str:
    parts = [f"dbname={env['POSTGRES_DBNAME']}", f"host={env['POSTGRES_HOST']}", f"port={env['POSTGRES_PORT']}", f"user={env['POSTGRES_USER']}"]
    if env.get("POSTGRES_PASSWORD"):
        parts.append(f"password={env['POSTGRES_PASSWORD']}")
    return " ".join(parts)


def written_by(app, call: Callable[[], Any], conninfo: str | None) -> tuple[Any, dict]:
    """Runs ``call`` and answers what it wrote: rows, bytes, and (PostgreSQL) transactions."""
    before = app.recorder.max_notification_id() or 0
    result = call()
    after = app.recorder.max_notification_id() or 0
    rows = list(app.recorder.select_notifications(before + 1, max(1, after - before))) if after > before else []
    info = {
        "rows": after - before,
        "bytes": sum(len(n.state) for n in rows),
        "topics": [n.topic.rsplit(":", 1)[-1] for n in rows],
        "template": [(n.topic, bytes(n.state)) for n in rows],
        "transactions": None,
    }
    if conninfo is not None and after > before:
        import psycopg

        with psycopg.connect(conninfo) as connection:
            info["transactions"] = connection.execute(
                f"SELECT count(DISTINCT xmin::text) FROM {events_table(app)} WHERE notification_id > %s AND notification_id <= %s",
                (before, after),
            ).fetchone()[0]
    return result, info


def child_ceiling(params: dict) -> dict:
    from entitlements.persistence import database_from_url

    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    database = database_from_url(params["url"])
    conninfo = None if database.is_sqlite else pg_conninfo_from_env(database.library_env)
    try:
        app = bench.fresh()
        users = [f"c{i}" for i in range(4)]
        load_tenant(app, users=users, packages=["pkg"], first=True)
        app.submit_request(requestor_id="c0", access_package_id="pkg", policy_id="pkg-auto")  # warm-up
        commands = {}
        receipt, commands["submit (auto, delivered)"] = written_by(
            app, lambda: app.submit_request(requestor_id="c1", access_package_id="pkg", policy_id="pkg-auto"), conninfo)
        assignment_id = app.find_assignment("c1", "pkg").id
        _, commands["remove"] = written_by(app, lambda: app.remove_access(assignment_id=assignment_id, admin_id=ADMIN, reason="bench"), conninfo)
        receipt, commands["submit (pending)"] = written_by(app, lambda: app.submit_request(
            requestor_id="c2", access_package_id="pkg", policy_id="pkg-appr", start=clock.now() + timedelta(hours=1)), conninfo)
        _, commands["decide"] = written_by(app, lambda: app.decide(request_id=receipt.id, approver_id=APPROVER, decision="approve"), conninfo)
        clock.advance(timedelta(hours=2))
        assignment_id = app.find_assignment("c2", "pkg").id
        _, commands["deliver"] = written_by(app, lambda: app.deliver(assignment_id), conninfo)
        _, commands["revoke"] = written_by(app, lambda: app.revoke_approval(request_id=receipt.id, approver_id=APPROVER, reason="bench"), conninfo)
        template = commands["submit (auto, delivered)"]["template"]
        for info in commands.values():
            del info["template"]
        out = {"commands": commands, "table": events_table(app)}
        if params.get("measure", True):
            transactions = params["transactions"]
            if database.is_sqlite:
                path = database.library_env["SQLITE_DBNAME"]
                out["ceiling"] = {str(c): raw_ceiling_sqlite(path, template, transactions, c) for c in (1, params["clients"])}
            else:
                out["ceiling"] = {str(c): raw_ceiling_postgres(conninfo, template, transactions, c) for c in (1, params["clients"])}
        return out
    finally:
        bench.close_all()


def _ceiling_rows(template: list[tuple[str, bytes]], as_text: bool) -> list[tuple]:
    rows = []
    for topic, state in template:
        originator = uuid.uuid4()
        rows.append((originator.hex if as_text else originator, 1, topic, state))
    return rows


def _run_ceiling(clients: int, transactions: int, open_connection: Callable[[], Any], transaction: Callable[[Any], None]) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    counter = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        connection = open_connection()
        try:
            transaction(connection)  # warm-up, untimed
            barrier.wait()
            while True:
                with lock:
                    if counter[0] >= transactions:
                        return
                    counter[0] += 1
                started = time.perf_counter()
                try:
                    transaction(connection)
                except Exception as error:
                    with lock:
                        errors.append(describe_error(error))
                    continue
                latencies[index].append(time.perf_counter() - started)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return summary([x for part in latencies for x in part], wall=wall, errors=errors)


def raw_ceiling_sqlite(path: str, template: list[tuple[str, bytes]], transactions: int, clients: int) -> dict:
    """A table like the library's SQLite events table (rowid table, primary key on originator id
    and version), in the same file (WAL), one BEGIN/executemany/COMMIT per transaction; with
    several connections, the writers take turns through a lock of this process."""
    table = "bench_ceiling"
    with sqlite3.connect(path, isolation_level=None, timeout=30) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(
            f"CREATE TABLE {table} (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
    connection.close()

    writer = threading.Lock()

    def open_connection():
        return sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)

    def transaction(connection) -> None:
        rows = _ceiling_rows(template, as_text=True)
        with writer:  # SQLite has one writer at a time: taking turns here beats sqlite3's sleeping busy handler
            connection.execute("BEGIN")
            connection.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", rows)
            connection.execute("COMMIT")

    try:
        return _run_ceiling(clients, transactions, open_connection, transaction)
    finally:
        with sqlite3.connect(path, isolation_level=None, timeout=30) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.close()


def raw_ceiling_postgres(conninfo: str, template: list[tuple[str, bytes]], transactions: int, clients: int) -> dict:
    """A table like the library's events table (primary key, bigserial and its unique index),
    one multi-row INSERT and COMMIT per transaction (without the library's table lock)."""
    import psycopg

    table = "bench_ceiling"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(
            f"CREATE TABLE {table} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            f"state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        connection.execute(f"CREATE UNIQUE INDEX {table}_notification_id_idx ON {table} (notification_id ASC)")
    statement = f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES " + ", ".join(
        ["(%s, %s, %s, %s)"] * len(template))

    def open_connection():
        return psycopg.connect(conninfo)

    def transaction(connection) -> None:
        values = [value for row in _ceiling_rows(template, as_text=False) for value in row]
        connection.execute(statement, values)
        connection.commit()

    try:
        return _run_ceiling(clients, transactions, open_connection, transaction)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


# --- (b) throughput through the application --------------------------------------------------


def run_pool(clients: int, jobs: list[Any], call: Callable[[int, Any], Any]) -> tuple[dict, list[Any]]:
    """``clients`` threads take the jobs in turn; ``call(client_index, job)``. Answers the phase's
    summary (ops/s over the wall time from the common start to the last finish) and each job's
    result (None where it failed)."""
    results: list[Any] = [None] * len(jobs)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    lock = threading.Lock()
    next_job = [0]
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        barrier.wait()
        while True:
            with lock:
                j = next_job[0]
                if j >= len(jobs):
                    return
                next_job[0] += 1
            started = time.perf_counter()
            try:
                results[j] = call(index, jobs[j])
            except Exception as error:
                with lock:
                    errors.append(describe_error(error))
                continue
            latencies[index].append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return summary([x for part in latencies for x in part], wall=wall, errors=errors), results


def child_throughput(params: dict) -> dict:
    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    clients = params["clients"]
    modes = [("1 client", 1, False, params["ops1"]), (f"{clients} clients, one app", clients, False, params["ops"]),
             (f"{clients} clients, an app each", clients, True, params["ops"])]
    try:
        setup = bench.setup()
        users_of = {label: [f"t{m}u{i:05d}" for i in range(ops)] for m, (label, _, _, ops) in enumerate(modes)}
        packages = [f"tp{m}" for m in range(len(modes))]
        warm = [f"tw{i}" for i in range(clients)]
        seconds = load_tenant(setup, users=[u for users in users_of.values() for u in users] + warm, packages=packages, first=True)
        bench.close(setup)
        note(f"tenant stored in {seconds:.1f} s")
        out: dict[str, Any] = {"modes": {}}
        for m, (label, n_clients, own, ops) in enumerate(modes):
            package = packages[m]
            apps = [bench.fresh() for _ in range(n_clients)] if own else [bench.fresh()]
            for index, app in enumerate(apps):  # warm-up: connections, statements, imports
                cycle = Cycle(app, clock, package)
                cycle.approved(warm[index], {}, {})
            users = users_of[label]

            def app_of(index: int):
                return apps[index % len(apps)]

            phases = {}
            phases["submit (pending)"], request_ids = run_pool(n_clients, users, lambda i, u: app_of(i).submit_request(
                requestor_id=u, access_package_id=package, policy_id=f"{package}-appr", start=clock.now() + timedelta(hours=1)).id)
            pairs = [(u, r) for u, r in zip(users, request_ids) if r is not None]
            phases["decide"], _ = run_pool(n_clients, [r for _, r in pairs], lambda i, r: app_of(i).decide(
                request_id=r, approver_id=APPROVER, decision="approve"))
            clock.advance(timedelta(hours=2))
            assignment_ids = [apps[0].find_assignment(u, package).id for u, _ in pairs]
            phases["deliver"], delivered = run_pool(n_clients, assignment_ids, lambda i, a: app_of(i).deliver(a).state)
            not_delivered = sum(1 for state in delivered if state is not None and state != "delivered")
            if not_delivered:
                phases["deliver"]["errors"] += not_delivered
                phases["deliver"]["error"] = phases["deliver"]["error"] or f"{not_delivered} deliveries not in state delivered"
            phases["revoke"], _ = run_pool(n_clients, [r for _, r in pairs], lambda i, r: app_of(i).revoke_approval(
                request_id=r, approver_id=APPROVER, reason="bench"))
            out["modes"][label] = {"clients": n_clients, "own_apps": own, "commands": phases}
            note(label + ": " + ", ".join(f"{c} {s['ops']:,.0f}/s" for c, s in phases.items()))
            for app in apps:
                bench.close(app)
        return out
    finally:
        bench.close_all()


# --- (b) throughput through HTTP -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(connection: http.client.HTTPConnection, method: str, path: str, token: str, body: dict | None) -> tuple[int, dict]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = {"raw": data[:300].decode(errors="replace")}
    return response.status, parsed


def child_http(params: dict) -> dict:
    from entitlements.bootstrap import build_services

    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    clients = params["clients"]
    ops = params["ops"]
    users = [f"h{i:05d}" for i in range(ops)]
    warm = [f"hw{i}" for i in range(clients)]
    package = "web"
    try:
        setup = bench.setup()
        load_tenant(setup, users=users + warm, packages=[package], first=True)
        bench.close(setup)
    finally:
        bench.close_all()
    services = build_services(bench.settings, clock=clock)
    try:
        services.read_models.catch_up()  # the directory (tokens name users in it)
        now = datetime.now(timezone.utc)
        tokens = {user: services.tokens.create(user, now=now) for user in users + warm + [APPROVER]}
    finally:
        services.close()

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench_commands_web_")
    env = {**os.environ, "ENTITLEMENTS_DATABASE_URL": params["url"], "ENTITLEMENTS_CLOCK": "system"}
    env.pop("ENTITLEMENTS_DEBUG", None)
    command = [sys.executable, "-m", "entitlements.cli", "web", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(params["workers"]), "--threads", str(params["threads"])]
    server = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    projector = None
    if params.get("projector"):
        projector = subprocess.Popen([sys.executable, "-m", "entitlements.cli", "project"], cwd=workdir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"entitlements web exited with code {server.returncode}: {server.stderr.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("entitlements web did not listen within 60 s")
                time.sleep(0.2)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(clients)]
        body_submit = {"access_package_id": package, "policy_id": f"{package}-appr"}

        def submit(i: int, user: str) -> str:
            status, data = http_call(connections[i], "POST", "/api/v1/requests", tokens[user], body_submit)
            if status != 201:
                raise RuntimeError(f"POST /requests answered {status}: {str(data)[:300]}")
            return data["id"]

        def decide(i: int, request_id: str) -> str:
            status, data = http_call(connections[i], "POST", f"/api/v1/requests/{request_id}/decision", tokens[APPROVER], {"decision": "approve"})
            if status != 200:
                raise RuntimeError(f"POST /decision answered {status}: {str(data)[:300]}")
            if data.get("state") != "delivered":
                raise RuntimeError(f"POST /decision answered state {data.get('state')!r}")
            return data["state"]

        def revoke(i: int, request_id: str) -> str:
            status, data = http_call(connections[i], "POST", f"/api/v1/requests/{request_id}/revoke", tokens[APPROVER], {"reason": "bench"})
            if status != 200:
                raise RuntimeError(f"POST /revoke answered {status}: {str(data)[:300]}")
            return data["state"]

        # warm-up: each connection (and so each worker thread it lands on) once through the cycle
        _, warm_ids = run_pool(clients, warm, submit)
        run_pool(clients, [r for r in warm_ids if r], decide)
        run_pool(clients, [r for r in warm_ids if r], revoke)
        phases = {}
        phases["submit (pending)"], request_ids = run_pool(clients, users, submit)
        ids = [r for r in request_ids if r is not None]
        phases["decide (and deliver)"], _ = run_pool(clients, ids, decide)
        phases["revoke"], _ = run_pool(clients, ids, revoke)
        for connection in connections:
            connection.close()
        note("HTTP: " + ", ".join(f"{c} {s['ops']:,.0f}/s" for c, s in phases.items()))
        return {"commands": phases, "workers": params["workers"], "threads": params["threads"], "projector": bool(projector)}
    finally:
        for process in (server, projector):
            if process is None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# --- (c) group sizes and past requests -------------------------------------------------------


def child_groups(params: dict) -> dict:
    """A package per size whose group already has that many members (granted in bulk through
    the resource kind, with the cached application), then cycles of new users at every size in
    turn through a fresh application."""
    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    samples, warm = params["samples"], 1
    sizes = params["sizes"]
    users = {size: [f"g{size}u{i:05d}" for i in range(samples + warm)] for size in sizes}
    setup_s: dict[int, float] = {}
    try:
        setup = bench.setup()
        load_tenant(setup, users=["gwarm"] + [u for size in sizes for u in users[size]], packages=["gwarm"] + [f"g{size}" for size in sizes], first=True)
        for size in sizes:
            setup_s[size] = bulk_grant(setup, group_of(f"g{size}"), size, now=clock.now(), prefix=f"m{size}-")
            note(f"group of {size:,}: members granted in bulk in {setup_s[size]:.1f} s")
        bench.close(setup)
        app = bench.fresh()
        read_s: dict[int, float] = {}
        warm_up(app, clock, "gwarm")
        cycles: dict[int, tuple[Cycle, list[str]]] = {}
        for size in sizes:
            started = time.perf_counter()
            members = len(app.group_members(group_of(f"g{size}")))
            read_s[size] = time.perf_counter() - started
            if members != size:
                raise RuntimeError(f"the group holds {members} members after granting {size}")
            cycle = Cycle(app, clock, f"g{size}")
            for user in users[size][:warm]:  # once on the measured group (its pages, the code's indexes), untimed
                cycle.auto(user, {}, {})
                cycle.approved(user, {}, {})
            cycles[size] = (cycle, users[size][warm:])
        note("sampling every size in turn")
        measured = sample_in_turn(cycles, samples=samples, budget=params["budget"], min_samples=params["min_samples"])
        for size in sizes:
            measured[str(size)].update(setup_s=setup_s[size], members_read_s=read_s[size])
        describe_sizes("group of", measured)
        return {"sizes": measured}
    finally:
        bench.close_all()


def child_history(params: dict) -> dict:
    """Users with P past requests of one package each (played as an auto-approved submit and an
    administrator's removal, through the cached application; a package, and so a group, per
    size), then cycles at every size in turn through a fresh application. Where P x samples
    would be too long to set up, fewer users take the samples in turn (the history then grows by
    samples/users during the measurement)."""
    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    samples = params["samples"]
    histories = params["histories"]
    holders = {past: max(1, min(samples, params["setup_cycles"] // past)) for past in histories}
    users = {past: [f"p{past}u{i:04d}" for i in range(holders[past])] for past in histories}
    setup_s: dict[int, float] = {}
    try:
        setup = bench.setup()
        load_tenant(setup, users=["pwarm"] + [u for past in histories for u in users[past]],
                    packages=["pwarm"] + [f"p{past}" for past in histories], first=True)
        for past in histories:
            cycle = Cycle(setup, clock, f"p{past}")
            started = last = time.perf_counter()
            errors: dict[str, list[str]] = {}
            done = 0
            for user in users[past]:
                for _ in range(past):
                    if not cycle.auto(user, {}, errors):
                        raise RuntimeError(f"setting up the past requests failed: {errors}")
                    done += 1
                    if time.perf_counter() - last > 15:
                        note(f"  {done:,} of {past * holders[past]:,} past requests ({done / (time.perf_counter() - started):,.0f}/s)")
                        last = time.perf_counter()
            setup_s[past] = time.perf_counter() - started
            note(f"{holders[past]} user(s) with {past:,} past request(s) each, set up in {setup_s[past]:.1f} s")
        bench.close(setup)
        app = bench.fresh()
        warm_up(app, clock, "pwarm")
        cycles = {past: (Cycle(app, clock, f"p{past}"), users[past]) for past in histories}
        note("sampling every size in turn")
        measured = sample_in_turn(cycles, samples=samples, budget=params["budget"], min_samples=params["min_samples"])
        for past in histories:
            measured[str(past)].update(holders=holders[past], setup_s=setup_s[past])
        describe_sizes("past requests", measured)
        return {"sizes": measured}
    finally:
        bench.close_all()


# --- (d) concurrent grants into one group ----------------------------------------------------


class WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{record.name}: {record.getMessage()}"[:300]


def child_concurrent(params: dict) -> dict:
    clock = BenchClock(datetime.now(timezone.utc))
    bench = Bench(params["url"], clock)
    clients, per_client, base = params["clients"], params["per_client"], params["base"]
    package = "conc"
    users = [f"k{i:05d}" for i in range(clients * per_client)]
    warm = [f"kw{i}" for i in range(clients)]
    try:
        setup = bench.setup()
        load_tenant(setup, users=users + warm, packages=[package], first=True)
        bulk_grant(setup, group_of(package), base, now=clock.now(), prefix="mc-")
        bench.close(setup)
        apps = [bench.fresh() for _ in range(clients)]
        for index, app in enumerate(apps):  # warm-up (the group then holds base + clients members)
            app.submit_request(requestor_id=warm[index], access_package_id=package, policy_id=f"{package}-auto")
        states: dict[str, str] = {}

        def grant(index: int, user: str) -> str:
            receipt = apps[index].submit_request(requestor_id=user, access_package_id=package, policy_id=f"{package}-auto")
            states[user] = receipt.state
            return receipt.state

        # the clients take the users in turn, all at once; the warnings logged meanwhile (a delivery
        # that gave up, say) are counted
        warnings = WarningCounter()
        logging.getLogger().addHandler(warnings)
        try:
            stats, _ = run_pool(clients, users, grant)
        finally:
            logging.getLogger().removeHandler(warnings)
        for app in apps:
            bench.close(app)
        check = bench.fresh()
        members = set(check.group_members(group_of(package)))
        answered = [u for u in users if u in states]
        not_delivered = [u for u in answered if states[u] != "delivered"]
        missing = [u for u in answered if u not in members]
        not_recorded = [u for u in answered if (a := check.find_assignment(u, package)) is None or a.state != "delivered"]
        receipts = {}
        for user in answered:
            receipts[states[user]] = receipts.get(states[user], 0) + 1
        lost = sorted((set(missing) | set(not_recorded)) - set(not_delivered))  # answered delivered, yet not
        out = {
            "clients": clients, "per_client": per_client, "base": base, "stats": stats,
            "granted": len(answered), "failed": len(users) - len(answered),
            "lost": len(lost), "not_delivered": len(not_delivered), "missing_from_group": len(missing),
            "assignment_not_delivered": len(not_recorded), "receipt_states": receipts,
            "lost_examples": [
                {"user": u, "receipt": states[u], "in_group": u in members,
                 "assignment": getattr(check.find_assignment(u, package), "state", None)}
                for u in (lost + [u for u in not_delivered if u not in lost])[:5]
            ],
            "warnings": warnings.count, "warning": warnings.first,
            "members": len(members), "expected_members": base + clients + len(answered),
        }
        note(f"{len(users)} concurrent grants into a group of {base:,}: {stats['wall']:.2f} s, {out['failed']} failed, "
             f"{out['not_delivered']} left delivering, {out['lost']} lost, {len(members):,} members (expected {out['expected_members']:,})")
        return out
    finally:
        bench.close_all()


CHILDREN = {
    "ceiling": child_ceiling,
    "throughput": child_throughput,
    "http": child_http,
    "groups": child_groups,
    "concurrent": child_concurrent,
    "history": child_history,
}


def child_main(params: dict) -> int:
    global LABEL
    LABEL = params["label"]
    import domain  # noqa: F401  (the code under test, first on PYTHONPATH)

    code = str(Path(domain.__file__).resolve().parent.parent)
    if code != params["code"]:
        raise RuntimeError(f"imported the code in {code}, not {params['code']}")
    result = CHILDREN[params["section"]](params)
    with open(params["out"], "w") as handle:
        json.dump(result, handle)
    return 0


# =============================================================================================
# Parent side: databases, code versions, children, the report (imports nothing of the project)
# =============================================================================================


def admin_conninfo(url: str) -> str:
    parts = urlsplit(url)
    bits = [f"dbname={unquote(parts.path.lstrip('/')) or 'postgres'}", f"host={parts.hostname or '127.0.0.1'}",
            f"port={parts.port or 5432}", f"user={unquote(parts.username or 'postgres')}"]
    if parts.password:
        bits.append(f"password={unquote(parts.password)}")
    return " ".join(bits)


class Databases:
    """A fresh database (or SQLite file) for each child; each dropped when its child is done."""

    def __init__(self, admin_url: str, keep: bool) -> None:
        self.admin_url = admin_url
        self.keep = keep
        self.tag = uuid.uuid4().hex[:8]
        self.tmpdir = tempfile.mkdtemp(prefix="bench_commands_")
        self.count = 0

    def create(self, backend: str, label: str) -> str:
        self.count += 1
        name = re.sub(r"[^a-z0-9_]", "_", f"{label}_{self.count}".lower())
        if backend == "sqlite":
            return f"sqlite:///{os.path.join(self.tmpdir, name + '.db')}"
        import psycopg

        dbname = f"bench_commands_{self.tag}_{name}"[:63]
        with psycopg.connect(admin_conninfo(self.admin_url), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {dbname}")
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, "", ""))

    def drop(self, url: str) -> None:
        if self.keep:
            note(f"--keep: leaving {url}")
            return
        if url.startswith("sqlite:"):
            path = url[len("sqlite:///"):]
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(path + suffix)
                except FileNotFoundError:
                    pass
            return
        import psycopg

        dbname = urlsplit(url).path.lstrip("/")
        with psycopg.connect(admin_conninfo(self.admin_url), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def git(directory: Path, *args: str, check: bool = True) -> str:
    """Read-only git queries (``GIT_OPTIONAL_LOCKS=0``: not even the index's stat cache is written),
    and the worktree of ``--compare-with``."""
    result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {directory}: {result.stderr.strip()}")
    return result.stdout.rstrip("\n")


def describe_code(directory: Path) -> str:
    try:
        head = git(directory, "rev-parse", "--short", "HEAD").strip()
        status = git(directory, "status", "--porcelain", "--", "domain", "entitlements", "projections", "web", "notifier")
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return f"{directory} (not a git checkout)"
    changed = sorted({line[3:] for line in status.splitlines() if len(line) > 3})
    return f"{directory} at {head}" + (f" + local changes to {', '.join(changed)}" if changed else "")


class Worktree:
    """``--compare-with REF``: a detached git worktree of REF under /tmp, removed at the end (it
    adds an entry under .git/worktrees; the working tree and index of this checkout are untouched)."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.path: Path | None = None

    def __enter__(self) -> Path:
        commit = git(ROOT, "rev-parse", "--verify", f"{self.ref}^{{commit}}").strip()
        self.path = Path(tempfile.gettempdir()) / f"bench_commands_{re.sub(r'[^A-Za-z0-9]', '_', self.ref)[:30]}_{commit[:10]}_{uuid.uuid4().hex[:6]}"
        git(ROOT, "worktree", "add", "--detach", str(self.path), commit)
        note(f"made a worktree of {self.ref} ({commit[:10]}) at {self.path}")
        return self.path

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            git(ROOT, "worktree", "remove", "--force", str(self.path), check=False)
            shutil.rmtree(self.path, ignore_errors=True)
            git(ROOT, "worktree", "prune", check=False)


def run_child(code: Path, label: str, section: str, backend: str, params: dict, databases: Databases, timeout: float) -> dict:
    url = databases.create(backend, f"{section}_{label}")
    handle, out = tempfile.mkstemp(prefix="bench_commands_", suffix=".json")
    os.close(handle)
    payload = {**params, "section": section, "url": url, "out": out, "code": str(code), "label": f"{label}/{backend}/{section}"}
    env = {**os.environ, "PYTHONPATH": str(code) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}
    started = time.perf_counter()
    try:
        process = subprocess.run([sys.executable, str(SCRIPT), "_child", json.dumps(payload)], cwd=str(code), env=env, timeout=timeout)
        if process.returncode != 0:
            return {"failed": f"the child process exited with code {process.returncode} (its error is above)"}
        with open(out) as f:
            result = json.load(f)
        result["seconds"] = time.perf_counter() - started
        return result
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:.0f} s"}
    finally:
        os.remove(out)
        databases.drop(url)


# --- the report ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def xfmt(value: float | None) -> str:
    return "-" if value is None else f"x{fmt(value)}"


class Table:
    def __init__(self, headers: list[str], align: str) -> None:
        self.headers = headers
        self.align = align  # one letter per column: l or r
        self.rows: list[list[str]] = []

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def rule(self) -> None:
        self.rows.append([])

    def print(self) -> None:
        widths = [max(len(h), *(len(r[i]) for r in self.rows if r)) if any(self.rows) else len(h) for i, h in enumerate(self.headers)]
        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, self.align)).rstrip()
        print(line(self.headers))
        print("  ".join("-" * w for w in widths))
        for row in self.rows:
            print(line(row) if row else "")


def get(result: dict | None, *path: Any) -> Any:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


class Report:
    def __init__(self, versions: list[tuple[str, Path]], args: argparse.Namespace) -> None:
        self.versions = versions
        self.labels = [label for label, _ in versions]
        self.args = args
        self.verdicts: list[tuple[str, str, bool | None, str]] = []
        self.errors: list[str] = []  # the first error of each figure that had some, printed under its table

    def print_errors(self) -> None:
        for line in self.errors:
            print(f"  errors: {line}")
        self.errors = []

    def cols(self, what: list[str]) -> list[str]:
        return [f"{label} {w}" for label in self.labels for w in what]

    def compare_header(self) -> list[str]:
        return [f"{self.labels[0]} vs {self.labels[1]}"] if len(self.labels) > 1 else []

    @staticmethod
    def failed(results: dict[str, dict]) -> list[str]:
        return [f"{label}: {r['failed']}" for label, r in results.items() if r and r.get("failed")]

    def ceiling(self, backend: str, results: dict[str, dict]) -> dict | None:
        first = results.get(self.labels[0]) or {}
        ceiling = first.get("ceiling")
        print("\n(a) raw ceiling")
        for label in self.labels:
            commands = get(results.get(label), "commands") or {}
            if commands:
                parts = []
                for command, info in commands.items():
                    tx = f" in {info['transactions']} tx" if info.get("transactions") else ""
                    parts.append(f"{command} {info['rows']} rows{tx}")
                print(f"  rows each command writes ({label}): " + "; ".join(parts))
        for problem in self.failed(results):
            print(f"  FAILED {problem}")
        if not ceiling:
            return None
        submit = first["commands"]["submit (auto, delivered)"]
        print(f"  one transaction inserting the {submit['rows']} rows ({submit['bytes']:,} bytes: {', '.join(submit['topics'])}) one auto-approved, "
              f"delivered submit writes ({self.labels[0]}), into a table shaped like {first['table']}"
              + ("; the writers take turns through a lock (SQLite has one writer at a time)" if backend == "sqlite" else "")
              + f"; xceil below divides by the first lines (1 connection for 1 client, {self.args.clients} for {self.args.clients} clients):")
        for label in self.labels:
            measured = get(results.get(label), "ceiling") or {}
            rows = get(results.get(label), "commands", "submit (auto, delivered)", "rows")
            for clients, stats in measured.items():
                print(f"    {label}: {clients} connection(s), {rows} rows: {stats['ops']:,.0f} transactions/s, p50 {fmt(stats['p50'])} ms, "
                      f"p99 {fmt(stats['p99'])} ms, mean {fmt(stats['mean'])} ms ({stats['n']} transactions"
                      + (f", {stats['errors']} errors: {stats['error']}" if stats["errors"] else "") + ")")
        return ceiling

    def throughput(self, backend: str, results: dict[str, dict], http: dict[str, dict], ceiling: dict | None) -> None:
        print("\n(b) throughput (ops/s over the phase's wall time; p50/p99 of each command in ms; xceil: the raw ceiling's "
              "transactions/s on as many connections, divided by ops/s)")
        table = Table(["command", "clients"] + self.cols(["ops/s", "p50", "p99", "xceil"]) + self.compare_header(), "ll" + "r" * (4 * len(self.labels) + len(self.compare_header())))
        modes = []
        for label in self.labels:
            for mode in (get(results.get(label), "modes") or {}):
                if mode not in modes:
                    modes.append(mode)
        commands = ["submit (pending)", "decide", "deliver", "revoke"]
        for command in commands:
            for mode in modes:
                self._throughput_row(table, command, mode, {l: get(results.get(l), "modes", mode) for l in self.labels}, ceiling)
            table.rule()
        for command in ["submit (pending)", "decide (and deliver)", "revoke"]:
            self._throughput_row(table, command, "HTTP", {l: http.get(l) for l in self.labels}, ceiling)
        table.print()
        first_http = next((h for h in http.values() if h and not h.get("failed")), None)
        if first_http:
            print(f"  HTTP: entitlements web ({first_http['workers']} workers x {first_http['threads']} threads), {self.args.clients} keep-alive client threads; "
                  "decide delivers at once (no deliver endpoint)" + ("; an `entitlements project` process ran beside it" if first_http.get("projector") else "; no projector ran"))
        print("  the application: submit under an approval policy with a start one hour ahead, decide (approve: delivery due later), the clock moved, "
              "deliver (grants into the group: one group per mode), revoke (withdraws); 'one app': the clients are threads sharing one "
              "application (a web worker's threads); 'an app each': one application per thread")
        self.print_errors()
        for problem in self.failed(results) + self.failed(http):
            print(f"  FAILED {problem}")

    def _throughput_row(self, table: Table, command: str, mode: str, per_label: dict[str, dict | None], ceiling: dict | None) -> None:
        cells = []
        ops = {}
        any_value = False
        for label in self.labels:
            data = per_label.get(label) or {}
            stats = get(data, "commands", command)
            clients = data.get("clients", self.args.clients) if mode != "HTTP" else self.args.clients
            if not stats:
                cells += ["-"] * 4
                continue
            any_value = True
            ops[label] = stats["ops"]
            if stats.get("errors"):
                self.errors.append(f"{label}, {command}, {mode}: {stats['errors']} error(s), the first: {stats.get('error')}")
            ceil_ops = get(ceiling, str(clients), "ops") if ceiling else None
            err = f" ({stats['errors']} err)" if stats.get("errors") else ""
            cells += [f"{stats['ops']:,.0f}{err}", fmt(stats["p50"]), fmt(stats["p99"]), xfmt(ratio(ceil_ops, stats["ops"]))]
        if not any_value:
            return
        if len(self.labels) > 1:
            cells.append(self.speed(ratio(ops.get(self.labels[0]), ops.get(self.labels[1]))))
        table.add(command, mode, *cells)

    @staticmethod
    def speed(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}x " + ("faster" if value >= 1 else "slower")

    def sizes(self, title: str, what: str, results: dict[str, dict], ceiling: dict | None, sizes: list[int]) -> dict[str, dict[str, float]]:
        """A table of per-command cost by size; answers {label: {command: mean at largest / mean at smallest}}."""
        print(f"\n{title} (ms per command; xceil: the mean over the raw ceiling's mean on one connection; "
              f"x{fmt(sizes[0], 0) if sizes else ''}: the mean over the mean at the smallest {what} of the same code, the p50's ratio in brackets)")
        ceil_ms = get(ceiling, "1", "mean") if ceiling else None
        headers = ["command", what] + self.cols(["n", "p50", "p99", "mean", "xceil", f"x{sizes[0] if sizes else ''}"]) + self.compare_header()
        table = Table(headers, "lr" + "r" * (6 * len(self.labels) + len(self.compare_header())))
        growth: dict[str, dict[str, float]] = {label: {} for label in self.labels}
        for command in Cycle.COMMANDS:
            for size in sizes:
                cells = []
                means = {}
                for label in self.labels:
                    entry = get(results.get(label), "sizes", str(size))
                    stats = get(entry, "commands", command)
                    base = get(results.get(label), "sizes", str(sizes[0]), "commands", command)
                    if not stats or not stats["n"]:
                        if stats and stats["errors"]:
                            self.errors.append(f"{label}, {command} at {size:,}: {stats['errors']} error(s), the first: {stats.get('error')}")
                        cells += ["-"] * 6 if not stats else [f"0 ({stats['errors']} err)"] + ["-"] * 5
                        continue
                    means[label] = stats["mean"]
                    if stats["errors"]:
                        self.errors.append(f"{label}, {command} at {size:,}: {stats['errors']} error(s), the first: {stats.get('error')}")
                    grow = ratio(stats["mean"], get(base, "mean"))
                    grow50 = ratio(stats["p50"], get(base, "p50"))
                    if size == sizes[-1] and grow is not None:
                        growth[label][command] = grow
                    n = f"{stats['n']}" + ("*" if entry.get("cut") else "") + (f" ({stats['errors']} err)" if stats["errors"] else "")
                    cells += [n, fmt(stats["p50"]), fmt(stats["p99"]), fmt(stats["mean"]), xfmt(ratio(stats["mean"], ceil_ms)),
                              f"{xfmt(grow)} ({fmt(grow50)})" if grow is not None else "-"]
                if len(self.labels) > 1:
                    cells.append(self.speed(ratio(means.get(self.labels[1]), means.get(self.labels[0]))))
                table.add(command, f"{size:,}", *cells)
            table.rule()
        table.print()
        notes = []
        for label in self.labels:
            for size in sizes:
                entry = get(results.get(label), "sizes", str(size))
                if entry and entry.get("cut"):
                    notes.append(f"{label} at {size:,}: {entry['samples']} samples (the --budget of {self.args.budget:g} s ran out)")
        if notes:
            print("  * fewer samples than asked: " + "; ".join(notes))
        self.print_errors()
        for problem in self.failed(results):
            print(f"  FAILED {problem}")
        return growth

    def concurrent(self, results: dict[str, dict]) -> dict[str, float]:
        first = next((r for r in results.values() if r and not r.get("failed")), None)
        print("\n(d) concurrent clients granting distinct new users into one group (auto-approved submits, an application per client)")
        if first:
            print(f"  {first['clients']} clients x {first['per_client']} grants into a group of {first['base']:,} members")
        table = Table(["figure"] + self.labels + self.compare_header(), "l" + "r" * (len(self.labels) + len(self.compare_header())))
        walls = {label: get(results.get(label), "stats", "wall") for label in self.labels}
        rows = [
            ("total time (s)", lambda r: fmt(get(r, "stats", "wall"))),
            ("grants/s", lambda r: fmt(get(r, "stats", "ops"))),
            ("p50 / p99 per grant (ms)", lambda r: f"{fmt(get(r, 'stats', 'p50'))} / {fmt(get(r, 'stats', 'p99'))}"),
            ("grants answered / raised an error", lambda r: f"{r.get('granted')} / {r.get('failed')}"),
            ("states the submits answered", lambda r: ", ".join(f"{k} {v}" for k, v in (r.get("receipt_states") or {}).items())),
            ("left delivering (the delivery gave up)", lambda r: str(r.get("not_delivered"))),
            ("lost (answered delivered, yet not in the group)", lambda r: str(r.get("lost"))),
            ("warnings logged", lambda r: str(r.get("warnings", "-"))),
            ("group members / expected", lambda r: f"{r.get('members'):,} / {r.get('expected_members'):,}"),
        ]
        for name, cell in rows:
            cells = [cell(results[l]) if results.get(l) and not results[l].get("failed") else "-" for l in self.labels]
            if len(self.labels) > 1:
                cells.append(self.speed(ratio(walls.get(self.labels[1]), walls.get(self.labels[0]))) if name == "total time (s)" else "")
            table.add(name, *cells)
        table.print()
        for label in self.labels:
            for example in get(results.get(label), "lost_examples") or []:
                print(f"  not granted ({label}): {example['user']}: the submit answered {example['receipt']!r}; in the group: {example['in_group']}; "
                      f"its assignment: {example['assignment']!r}")
            if get(results.get(label), "warning"):
                print(f"  first warning logged ({label}): {results[label]['warning']}")
        for problem in self.failed(results):
            print(f"  FAILED {problem}")
        return walls

    def verdict(self, name: str, ok: bool | None, detail: str) -> None:
        self.verdicts.append((self.current_backend, name, ok, detail))


def print_verdicts(report: Report) -> None:
    if not report.verdicts:
        return
    print(f"\n== the issue's checks, for {report.labels[0]} ==")
    for backend, name, ok, detail in report.verdicts:
        mark = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {mark}  {backend}: {name}: {detail}")


def growth_verdict(report: Report, growth: dict[str, dict[str, float]], what: str, limit: float = 1.5) -> None:
    mine = growth.get(report.labels[0]) or {}
    if not mine:
        report.verdict(what, None, "not measured")
        return
    worst = max(mine, key=mine.get)
    detail = ", ".join(f"{c} x{v:.2f}" for c, v in mine.items())
    report.verdict(what, mine[worst] <= limit, f"worst {worst} x{mine[worst]:.2f} (limit x{limit}); {detail}")


# --- main ------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    try:
        values = [int(v.strip().replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas (10_000 for ten thousand), got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive numbers")
    return sorted(set(values))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_commands",
        description=(
            "Measures the commands on SQLite and PostgreSQL in one run: (a) the raw ceiling (a plain transaction inserting "
            "the rows one submit writes), (b) submit/decide/deliver/revoke throughput with 1 and 8 clients through the "
            "application and through HTTP (entitlements web), (c) the cost of each command at several group sizes and "
            "numbers of past requests of one user, (d) 8 clients granting into one group (none may be lost). "
            "--compare-with REF measures a second checkout in the same run and prints both side by side. "
            "Databases are created fresh (entitlements SQLite files under /tmp, PostgreSQL bench_commands_*) and dropped."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure (put first on PYTHONPATH of each child process)")
    parser.add_argument("--compare-with", metavar="REF", help="also measure REF: a git ref of this repository (checked out as a worktree under /tmp "
                        "for the run) or a directory holding a checkout; printed beside --code with the ratio")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated parts to run: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run in well under a minute per code version: small sizes, few samples")
    parser.add_argument("--sizes", type=int_list, default=None, help="group sizes for (c) [100,10000,100000; --quick 100,1000]")
    parser.add_argument("--histories", type=int_list, default=None, help="past requests of one user for (c) [1,1000,10000; --quick 1,50]")
    parser.add_argument("--samples", type=int, default=None, help="timed cycles per size in (c) [100; --quick 6]")
    parser.add_argument("--compare-samples", type=int, default=None, help="the same for --compare-with's code [as --samples]")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed cycles per size and code in (c): sampling stops once "
                        "it is spent (never below --min-samples) [150; --quick 5]")
    parser.add_argument("--min-samples", type=int, default=5, help="at least this many cycles per size, whatever the budget")
    parser.add_argument("--setup-cycles", type=int, default=None, help="(c) past requests: how many past requests to set up at most per size; "
                        "sizes whose samples would need more share fewer users [5000; --quick 150]")
    parser.add_argument("--ops", type=int, default=None, help="(b) commands per phase with 8 clients, application and HTTP [400; --quick 24]")
    parser.add_argument("--ops1", type=int, default=None, help="(b) commands per phase with 1 client [200; --quick 12]")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in (b) and (d), and connections of the 8-client ceiling")
    parser.add_argument("--concurrent-grants", type=int, default=None, help="(d) grants per client [25; --quick 3]")
    parser.add_argument("--concurrent-base", type=int, default=None, help="(d) members of the group before [1000; --quick 100]")
    parser.add_argument("--ceiling-transactions", type=int, default=None, help="(a) transactions timed per connection count [500; --quick 100]")
    parser.add_argument("--web-workers", type=int, default=2, help="`entitlements web --workers` (its default)")
    parser.add_argument("--web-threads", type=int, default=4, help="`entitlements web --threads` (its default)")
    parser.add_argument("--http-projector", action="store_true", help="run `entitlements project` beside the web server during (b) HTTP")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL), help="PostgreSQL server to create the databases on (env BENCH_POSTGRES_URL)")
    parser.add_argument("--child-timeout", type=float, default=4 * 3600, help="seconds any one part may take")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the databases (their URLs are printed)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "sizes": [100, 1000] if quick else [100, 10_000, 100_000],
        "histories": [1, 50] if quick else [1, 1000, 10_000],
        "samples": 6 if quick else 100,
        "budget": 5.0 if quick else 150.0,
        "setup_cycles": 150 if quick else 5_000,
        "ops": 24 if quick else 400,
        "ops1": 12 if quick else 200,
        "concurrent_grants": 3 if quick else 25,
        "concurrent_base": 100 if quick else 1000,
        "ceiling_transactions": 100 if quick else 500,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.compare_samples is None:
        args.compare_samples = args.samples
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for backend in args.backends:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    for section in args.sections:
        if section not in SECTIONS:
            parser.error(f"unknown section {section!r} (known: {', '.join(SECTIONS)})")
    args.code = args.code.resolve()
    if not (args.code / "domain" / "application.py").is_file():
        parser.error(f"--code {args.code}: no domain/application.py there")
    for name in ("samples", "compare_samples", "ops", "ops1", "clients", "concurrent_grants", "ceiling_transactions", "min_samples", "setup_cycles"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["_child"]:
        return child_main(json.loads(argv[1]))
    args = parse_args(argv)
    run_started = time.perf_counter()
    compare = None
    if args.compare_with:
        candidate = Path(args.compare_with)
        compare = Worktree(args.compare_with) if not (candidate / "domain" / "application.py").is_file() else None
        compare_path = candidate.resolve() if compare is None else compare.__enter__()
    try:
        versions = [("this", args.code)] + ([("ref", compare_path)] if args.compare_with else [])
        descriptions = {label: describe_code(path) for label, path in versions}
        if args.compare_with:
            descriptions["ref"] += f" (--compare-with {args.compare_with})"
        report = Report(versions, args)
        all_results: dict[str, Any] = {"versions": descriptions, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "backends": {}}
        databases = Databases(args.admin_url, args.keep)
        try:
            for backend in args.backends:
                all_results["backends"][backend] = run_backend(backend, versions, args, databases)
        finally:
            databases.close()
        print("\n" + "=" * 100)
        print(f"bench_commands{' --quick' if args.quick else ''}: " + "; ".join(f"{label} = {text}" for label, text in descriptions.items()))
        for backend in args.backends:
            print_backend(report, backend, all_results["backends"][backend])
        print_verdicts(report)
        print(f"\nthe whole run took {time.perf_counter() - run_started:.0f} s")
        if args.json:
            args.json.write_text(json.dumps(all_results, indent=2))
            note(f"wrote {args.json}")
        failed = any(r.get("failed") for b in all_results["backends"].values() for s in b.values() for r in s.values() if isinstance(r, dict))
        return 1 if failed else 0
    finally:
        if compare is not None:
            compare.__exit__(None, None, None)


def run_backend(backend: str, versions: list[tuple[str, Path]], args: argparse.Namespace, databases: Databases) -> dict:
    """Each part, for each code version in turn (the reference first), before the next part: the
    two columns of one part are measured minutes apart, not a whole run apart."""
    results: dict[str, dict[str, dict]] = {}
    order = list(reversed(versions))
    for section in args.sections:
        results[section] = {}
        for label, path in order:
            samples = args.samples if label == "this" else args.compare_samples
            params: dict[str, Any] = {"clients": args.clients}
            if section == "ceiling":
                params.update(transactions=args.ceiling_transactions, measure=True)
            elif section == "throughput":
                params.update(ops=args.ops, ops1=args.ops1)
            elif section == "http":
                params.update(ops=args.ops, workers=args.web_workers, threads=args.web_threads, projector=args.http_projector)
            elif section == "groups":
                params.update(sizes=args.sizes, samples=samples, budget=args.budget, min_samples=min(args.min_samples, samples))
            elif section == "history":
                params.update(histories=args.histories, samples=samples, budget=args.budget, min_samples=min(args.min_samples, samples),
                              setup_cycles=args.setup_cycles)
            elif section == "concurrent":
                params.update(per_client=args.concurrent_grants, base=args.concurrent_base)
            note(f"{backend}: {section} on {label}")
            result = run_child(path, label, section, backend, params, databases, args.child_timeout)
            if result.get("failed"):
                note(f"{backend}: {section} on {label} FAILED: {result['failed']}")
            else:
                note(f"{backend}: {section} on {label} done in {result['seconds']:.1f} s")
            results[section][label] = result
    return results


def print_backend(report: Report, backend: str, results: dict[str, dict[str, dict]]) -> None:
    report.current_backend = backend
    print(f"\n{'=' * 40} {'SQLite' if backend == 'sqlite' else 'PostgreSQL'} {'=' * 40}")
    ceiling = None
    if "ceiling" in results:
        ceiling = report.ceiling(backend, results["ceiling"])
    if "throughput" in results or "http" in results:
        report.throughput(backend, results.get("throughput", {}), results.get("http", {}), ceiling)
    args = report.args
    if "groups" in results:
        growth = report.sizes("(c) per-command cost by group size: a package whose resource is a group of N members, for new users",
                              "members", results["groups"], ceiling, args.sizes)
        if len(args.sizes) > 1:
            growth_verdict(report, growth, f"cost at group size {args.sizes[-1]:,} within 1.5x of {args.sizes[0]:,}")
    if "history" in results:
        growth = report.sizes("(c) per-command cost by past requests of one user (the same package requested, delivered and removed "
                              "again and again; its group gains as many grants and withdrawals)", "past", results["history"], ceiling,
                              args.histories)
        holders = {p: get(results["history"].get(report.labels[0]), "sizes", str(p), "holders") for p in args.histories}
        shared = [f"{p:,}: {h} users" for p, h in holders.items() if h and h > 1]
        if shared:
            print("  the samples at each size are taken in turn by users who each have that many past requests (" + "; ".join(shared) + ")")
        if len(args.histories) > 1:
            growth_verdict(report, growth, f"cost at {args.histories[-1]:,} past requests within 1.5x of {args.histories[0]:,}")
    if "concurrent" in results:
        walls = report.concurrent(results["concurrent"])
        mine = results["concurrent"].get(report.labels[0]) or {}
        if mine and "stats" in mine:
            missed = mine["lost"] + mine["failed"] + mine["not_delivered"]
            report.verdict(f"{mine['clients']} concurrent clients granting into one group lose no grant", missed == 0 and mine["members"] == mine["expected_members"],
                           f"{mine['lost']} lost, {mine['not_delivered']} left delivering, {mine['failed']} raised, "
                           f"{mine['members']:,} members of {mine['expected_members']:,} expected")
            if len(report.labels) > 1:
                speed = ratio(walls.get(report.labels[1]), walls.get(report.labels[0]))
                report.verdict("... and finish at least 4x faster than the reference", None if speed is None else speed >= 4,
                               f"{fmt(walls.get(report.labels[0]))} s against {fmt(walls.get(report.labels[1]))} s: " + (f"x{speed:.2f}" if speed else "-"))
        else:
            report.verdict("concurrent clients granting into one group lose no grant", None, "not measured")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
