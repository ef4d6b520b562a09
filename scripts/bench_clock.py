"""Manual-clock benchmark: one jump of 400 days over N requests, through ``Scheduler.advance``.

Run it through ``scripts/bench_clock`` (``--help`` lists the options). For each backend (SQLite and
PostgreSQL by default) one run:

1. creates a fresh database (a temporary SQLite file, or a PostgreSQL database it drops at the
   end), loads a generated tenant (40 packages: pending one-stage and two-stage requests whose
   reminders, escalations and timeouts spread from 3 to 395 days, access approved at once that
   expires after 30 to 390 days with expiry reminders, and access asked to start 2 to 380 days
   later), and submits N requests at one-second intervals with the application's own commands.
   Setup is fast because the setup application keeps aggregates in its cache and saves 500
   requests' aggregates per ``save()`` (the same events the commands record one by one); the
   deadlines read model is then caught up and the deployment's manual clock set to T0;
2. copies that database once per measurement (``CREATE DATABASE ... TEMPLATE`` on PostgreSQL, a
   file copy on SQLite) and, each in a fresh process with ``ENTITLEMENTS_CLOCK=manual``:
   (a) ``Scheduler.advance`` to T0 + 400 days: the deadlines run (done / skipped / failed), their
       distinct due times, the events recorded, the time, the time per deadline, and how often it
       caught the deadlines projection up and read the deadlines table (a spy on both);
   (b) the code path it replaces (the per-due-time loop of catch-up and rescans, kept here as
       ``LegacyScheduler``), when ``--legacy`` allows it;
   (c) the ceilings: every deadline's command alone, in due order with the clock moved to each
       due time (no read model, no catch-up), and reading every deadline row;
3. checks the jump (nothing due left behind, the report in time order, a sample of deadlines
   recorded at their own time) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_readmodels import pg_conninfo, with_dbname  # noqa: E402  (scripts/ is on the path: this file's folder)

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)  # the clock when the jump starts
STEP = timedelta(seconds=1)  # between two submissions (before T0)
PACKAGES = 40
FLUSH_EVERY = 500  # requests whose aggregates the setup saves in one save()
KINDS = ["pending1"] * 7 + ["pending2"] * 3 + ["granted"] * 7 + ["later"] * 3  # per 20 packages


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# =============================================================================================
# The tenant and the requests
# =============================================================================================


def spread(low: int, high: int, index: int, count: int) -> int:
    return low if count <= 1 else round(low + (high - low) * index / (count - 1))


def make_tenant(requests: int) -> tuple[dict, list[dict]]:
    """The tenant file and, per package, how its requests are made."""
    requestors = [f"r{n:05d}" for n in range(math.ceil(requests / PACKAGES))]
    users = [{"id": user, "email": f"{user}@contoso.example"} for user in requestors]
    groups, packages, policies, plans = [], [], [], []
    kinds = [KINDS[p % len(KINDS)] for p in range(PACKAGES)]
    for p, kind in enumerate(kinds):
        pid = f"p{p:02d}"
        same = [q for q, k in enumerate(kinds) if k == kind]
        j, count = same.index(p), len(same)
        approvers = [f"ap-{pid}-a", f"ap-{pid}-b"]
        alternates = [f"alt-{pid}"]
        users += [{"id": user, "email": f"{user}@contoso.example"} for user in approvers + alternates]
        groups += [{"id": f"approvers-{pid}", "members": approvers}, {"id": f"alternates-{pid}", "members": alternates}]
        packages.append({"id": pid, "catalog": "bench", "name": f"Package {pid}", "resources": [{"id": f"res-{pid}", "kind": "group"}]})
        policy: dict[str, Any] = {"id": f"pol-{pid}", "access_package": pid, "requestors": {"scope": "all_members"}}
        plan = {"package": pid, "kind": kind, "approver": approvers[0]}
        if kind in ("pending1", "pending2"):
            timeout = spread(14, 395, j, count)
            stage = {
                "approvers": [{"group": f"approvers-{pid}"}],
                "timeout": f"P{timeout}D",
                "reminder": f"P{timeout // 2}D",
                "escalation": {"enabled": kind == "pending2" or j % 2 == 0, "after": f"P{max(3, timeout // 4)}D",
                               "approvers": [{"group": f"alternates-{pid}"}]},
            }
            if not stage["escalation"]["enabled"]:
                stage["escalation"] = {"enabled": False}
            stages = [stage]
            if kind == "pending2":
                stages.append({"approvers": [{"group": f"alternates-{pid}"}], "timeout": "P14D", "reminder": "P7D"})
            policy["approval"] = {"required": True, "stages": stages}
            policy["expiration"] = {"after": "P90D"}
        elif kind == "granted":
            policy["approval"] = {"required": True, "stages": [{"approvers": [{"group": f"approvers-{pid}"}], "timeout": "P14D"}]}
            policy["expiration"] = {"after": f"P{spread(30, 390, j, count)}D"}
            if j % 3 != 2:
                policy["extension"] = {"allowed": True, "approval_required": False, "reminder_before": "P14D"}
        else:  # later: no approval, access asked to start 2 to 380 days after the request
            policy["approval"] = {"required": False}
            policy["expiration"] = {"after": f"P{spread(30, 200, j, count)}D"}
            policy["extension"] = {"allowed": True, "approval_required": False, "reminder_before": "P7D"}
        policies.append(policy)
        plans.append(plan)
    data = {
        "users": users,
        "groups": groups,
        "catalogs": [{"id": "bench", "name": "Bench", "enabled": True}],
        "access_packages": packages,
        "policies": policies,
    }
    return data, plans


def bulk_application(env: dict, clock):
    """An application that saves in bulk: a command's ``save()`` only collects its aggregates
    (which the next commands then load from memory, as they do the configuration), and
    :meth:`flush` writes what the commands changed in one ``save()``: the same events, fewer
    transactions. For setting up only (one writer, each request touched within one flush)."""
    from eventsourcing.application import Application

    from domain.access_request import AccessRequest
    from domain.application import EntitlementsApplication
    from domain.assignment import Assignment

    class BulkApplication(EntitlementsApplication):
        name = EntitlementsApplication.name  # the library names tables after it

        def __init__(self) -> None:
            super().__init__(
                {**env, "AGGREGATE_CACHE_MAXSIZE": "50000", "AGGREGATE_CACHE_FASTFORWARD": "n", "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"},
                clock=clock,
            )
            self.pending: dict = {}
            self.kept: dict = {}

        def _get(self, cls, aggregate_id):
            found = self.pending.get(aggregate_id)
            if found is None:
                found = self.kept.get(aggregate_id)
            if found is not None:
                return found
            aggregate = super()._get(cls, aggregate_id)
            if not isinstance(aggregate, (AccessRequest, Assignment)):
                self.kept[aggregate_id] = aggregate  # the configuration: unchanged while setting up
            return aggregate

        def _save(self, *aggregates):
            for aggregate in aggregates:
                if aggregate is not None:
                    self.pending[aggregate.id] = aggregate
                    self.repository.cache.put(aggregate.id, aggregate)
            return None

        def flush(self) -> int:
            if not self.pending:
                return 0
            recordings = Application.save(self, *self.pending.values())
            self.pending = {}
            return len(recordings)

    return BulkApplication()


def set_up(url: str, requests: int, seed: int) -> dict:
    """Loads the tenant and submits ``requests`` requests before T0, then catches the deadlines
    up and sets the deployment's manual clock to T0."""
    from domain.clock import ManualClock
    from entitlements.persistence import database_from_url
    from entitlements.stored_clock import StoredClock
    from entitlements.tenant import load_tenant_data
    from projections.read_models import ReadModels
    from projections.store import ViewStore

    rng = random.Random(seed)
    span = STEP * requests + timedelta(minutes=1)
    clock = ManualClock(T0 - span)
    database = database_from_url(url)
    app = bulk_application(database.library_env, clock)
    store = ViewStore(database)
    try:
        started = time.perf_counter()
        data, plans = make_tenant(requests)
        load_tenant_data(app, data, source="<bench tenant>", actor="bench")
        app.flush()
        tenant_events = app.recorder.max_notification_id() or 0
        note(f"  tenant: {len(data['users'])} users, {len(data['access_packages'])} packages ({tenant_events} events)")
        kinds: Counter = Counter()
        for i in range(requests):
            plan = plans[i % PACKAGES]
            now = T0 - span + STEP * (i + 1)
            clock.set(now)
            user = f"r{i // PACKAGES:05d}"
            start = now + timedelta(days=rng.randint(2, 380)) if plan["kind"] == "later" else None
            receipt = app.submit_request(requestor_id=user, access_package_id=plan["package"], justification="bench", start=start)
            if plan["kind"] == "granted":
                app.decide(request_id=receipt.id, approver_id=plan["approver"], decision="approve")
            kinds[plan["kind"]] += 1
            if (i + 1) % FLUSH_EVERY == 0:
                app.flush()
            if (i + 1) % 20_000 == 0:
                note(f"  submitted {i + 1:,} requests")
        app.flush()
        head = app.recorder.max_notification_id() or 0
        submitted = time.perf_counter() - started
        StoredClock(store, T0)  # the deployment's manual clock (a fresh database: it starts here)
        started = time.perf_counter()
        read_models = ReadModels(app, store)
        read_models.deadlines_projector().catch_up()
        projected = time.perf_counter() - started
        with store.transaction(write=False) as tx:
            rows = dict(tx.fetchall("SELECT kind, COUNT(*) FROM deadlines GROUP BY kind"))
            (first,) = tx.fetchone("SELECT MIN(due_at) FROM deadlines")
        if first < fixed(T0):
            raise SystemExit(f"setup error: a deadline is due at {first}, before T0 {fixed(T0)}")
        return {"events": head, "tenant_events": tenant_events, "seconds": submitted, "projection_seconds": projected,
                "deadlines": rows, "kinds": dict(kinds)}
    finally:
        store.close()
        app.close()


def fixed(when: datetime) -> str:
    from projections.deadlines import fixed as fixed_

    return fixed_(when)


# =============================================================================================
# The code path the jump replaced (kept to compare)
# =============================================================================================


def legacy_scheduler(services):
    """The scheduler as it was before issue 12: per distinct due time, a catch-up of the deadlines
    projection and a read of the due deadlines from the start (filtering an ``attempted`` set),
    then ``_run_due`` catching up and reading from the start again."""
    from entitlements.scheduler import EXPIRIES, Scheduler, TickReport, _move
    from projections.deadlines import moment

    batch, chunk = 500, 5000

    def key(deadline: dict) -> tuple:
        return deadline["kind"], deadline["subject_id"], deadline["stage"], deadline["due_at"]

    class LegacyScheduler(Scheduler):
        def advance(self, clock, to):
            report = TickReport()
            with self._lock:
                attempted: set[tuple] = set()
                while True:
                    self._deadlines.catch_up()
                    upcoming = next((d for d in self._legacy_due(to) if key(d) not in attempted), None)
                    if upcoming is None:
                        break
                    _move(clock, moment(upcoming["due_at"]))
                    self._legacy_run_due(clock.now(), report, attempted)
                _move(clock, to)
                self._legacy_run_due(clock.now(), report, attempted)
            return report

        def _legacy_due(self, until):
            after = None
            while True:
                page = self.read_models.due_deadlines(until, limit=batch, after=after)
                yield from page
                if len(page) < batch:
                    return
                after = (page[-1]["due_at"], page[-1]["kind"], page[-1]["subject_id"])

        def _legacy_run_due(self, now, report, attempted):
            while True:
                self._deadlines.catch_up()
                due = list(islice((d for d in self._legacy_due(now) if key(d) not in attempted), chunk))
                if not due:
                    return
                due.sort(key=lambda deadline: deadline["kind"] not in EXPIRIES)
                for deadline in due:
                    attempted.add(key(deadline))
                    report.outcomes.append(self._run(deadline, report))

    return LegacyScheduler(services.app, services.read_models)


# =============================================================================================
# One measurement (in a fresh process)
# =============================================================================================


class Spy:
    """Counts the calls of some methods (and the rows they answer, and the time they take),
    keeping them working."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.seconds: Counter = Counter()

    def counting(self, original, label: str):
        def counted(*args, **kwargs):
            self.calls[label] += 1
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
            if isinstance(result, list):
                self.calls[f"{label}_rows"] += len(result)
            return result

        return counted

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is not None:
            setattr(owner, name, self.counting(original, label))

    def wrap_class(self, cls: type, name: str, label: str) -> None:
        original = getattr(cls, name, None)
        if original is not None:
            setattr(cls, name, self.counting(original, label))


def failing(command, percent: int):
    """``command``, failing for ``percent`` % of the subjects (always the same ones): a deadline
    that fails stays in the read model, as after a directory outage."""
    if not percent:
        return command

    def run(subject_id: str):
        if uuid.UUID(subject_id).int % 100 < percent:
            raise RuntimeError("bench: injected failure")
        return command(subject_id)

    return run


def child_jump(url: str, mode: str, days: int, fail_percent: int = 0) -> None:
    from entitlements.bootstrap import build_services
    from entitlements.scheduler import EXPIRIES, commands
    from entitlements.settings import Settings
    from projections.deadlines import moment

    services = build_services(Settings(database_url=url, clock="manual"))
    clock = services.app.clock
    target = T0 + timedelta(days=days)
    result: dict[str, Any] = {"mode": mode, "load_before": os.getloadavg()[0]}
    head_before = services.read_models.head()
    if mode == "read":
        started = time.perf_counter()
        rows = 0
        after = None
        while True:
            page = services.read_models.due_deadlines(target, limit=500, after=after)
            rows += len(page)
            if len(page) < 500:
                break
            after = (page[-1]["due_at"], page[-1]["kind"], page[-1]["subject_id"])
        result["read_pages"] = time.perf_counter() - started
        started = time.perf_counter()
        with services.store.transaction(write=False) as tx:
            everything = tx.fetchall("SELECT kind, subject_id, stage, due_at FROM deadlines WHERE due_at <= ? ORDER BY due_at, kind, subject_id", (fixed(target),))
        result["read_one_query"] = time.perf_counter() - started
        result["rows"] = rows
        started = time.perf_counter()
        for due in sorted({row[3] for row in everything}):
            clock.set(moment(due))
        result["clock_moves"] = time.perf_counter() - started
        result["distinct_due_times"] = len({row[3] for row in everything})
        result["load_after"] = os.getloadavg()[0]
        print(json.dumps(result))
        services.close()
        return
    if mode == "commands":
        with services.store.transaction(write=False) as tx:
            rows = tx.fetchall("SELECT kind, subject_id, stage, due_at FROM deadlines WHERE due_at <= ?", (fixed(target),))
        rows.sort(key=lambda row: (row[3], row[0] not in EXPIRIES, row[0], row[1]))
        run = {kind: failing(command, fail_percent) for kind, command in commands(services.app).items()}
        outcomes: Counter = Counter()
        started = time.perf_counter()
        for kind, subject_id, _stage, due in rows:
            when = moment(due)
            if when > clock.now():
                clock.set(when)
            try:
                run[kind](subject_id)
                outcomes["done"] += 1
            except Exception as error:  # noqa: BLE001 - counted, as the scheduler would report it
                outcomes[type(error).__name__] += 1
        clock.set(target)
        result["seconds"] = time.perf_counter() - started
        result["outcomes"] = dict(outcomes)
        result["deadlines"] = len(rows)
        result["events"] = services.read_models.head() - head_before
        result["load_after"] = os.getloadavg()[0]
        print(json.dumps(result))
        services.close()
        return

    scheduler = services.scheduler if mode == "advance" else legacy_scheduler(services)
    scheduler.commands = {kind: failing(command, fail_percent) for kind, command in scheduler.commands.items()}
    spy = Spy()
    spy.wrap(scheduler._deadlines, "catch_up", "catch_ups")
    spy.wrap(clock, "set", "clock_moves")
    scheduler.commands = {kind: spy.counting(command, "commands") for kind, command in scheduler.commands.items()}
    if mode == "advance":
        from entitlements import scheduler as scheduler_module

        agenda = getattr(scheduler_module, "_Agenda", None)
        if agenda is not None:
            spy.wrap_class(agenda, "_look", "log_looks")
    for name in dir(services.read_models):
        if "deadline" in name and not name.startswith("_") and callable(getattr(services.read_models, name)) and name != "deadlines_projector":
            spy.wrap(services.read_models, name, "deadline_reads")
    profile = os.environ.get("BENCH_CLOCK_PROFILE")
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    report = scheduler.advance(clock, target)
    seconds = time.perf_counter() - started
    if profile:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{mode}")
    head_after = services.read_models.head()
    outcomes = report.outcomes
    counts = Counter(item.outcome for item in outcomes)
    result.update(
        seconds=seconds,
        deadlines=len(outcomes),
        done=counts["done"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        distinct_due_times=len({item.due_at for item in outcomes}),
        events=head_after - head_before,
        calls=dict(spy.calls),
        spent={label: round(value, 3) for label, value in spy.seconds.items()},
        kinds=dict(Counter(item.kind for item in outcomes)),
        details=dict(Counter(item.detail for item in outcomes if item.detail).most_common(5)),
    )
    # checks: time order, the clock at the target, nothing due left behind, and a sample of
    # deadlines recorded at their own time
    problems = []
    if any(a.due_at > b.due_at for a, b in zip(outcomes, outcomes[1:])):
        problems.append("the report is not in time order")
    if clock.now() != target:
        problems.append(f"the clock is at {clock.now()}, not {target}")
    scheduler._deadlines.catch_up()
    attempted = {(item.kind, item.subject_id, item.due_at) for item in outcomes}
    left = [row for row in services.read_models.due_deadlines(target, limit=100_000) if (row["kind"], row["subject_id"], row["due_at"]) not in attempted]
    if left:
        problems.append(f"{len(left)} deadline(s) due by the target were not run, e.g. {left[0]}")
    sample = random.Random(7).sample([item for item in outcomes if item.outcome == "done"], min(300, counts["done"]))
    late = 0
    for item in sample:
        when = moment(item.due_at)
        if not any(event.timestamp == when for event in services.app.events.get(uuid.UUID(item.subject_id))):
            late += 1
    if late:
        problems.append(f"{late} of {len(sample)} sampled deadlines have no event at their due time")
    result["sampled"] = len(sample)
    result["problems"] = problems
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    services.close()


def run_child(args: list[str], *, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=str(ROOT))
    if completed.returncode != 0:
        raise RuntimeError(f"child {' '.join(args[:3])} failed with exit code {completed.returncode}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"child {' '.join(args[:3])} printed no result")
    return json.loads(lines[-1])


# =============================================================================================
# Databases
# =============================================================================================


class Databases:
    """The benchmark's databases (or SQLite files): created, copied, and dropped at the end."""

    def __init__(self, *, backend: str, admin_url: str, keep: bool) -> None:
        self.backend = backend
        self.admin_url = admin_url
        self.keep = keep
        self.created: list[str] = []
        self.tmpdir: str | None = None
        self.tag = uuid.uuid4().hex[:8]

    def _path(self, label: str) -> str:
        if self.tmpdir is None:
            self.tmpdir = tempfile.mkdtemp(prefix="entitlements_bench_clock_", dir="/tmp")
        return os.path.join(self.tmpdir, f"{label}.db")

    def create(self, label: str, *, template: str | None = None) -> str:
        if self.backend == "sqlite":
            path = self._path(label)
            if template is not None:
                source = template.removeprefix("sqlite:///")
                with sqlite3.connect(source) as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                shutil.copyfile(source, path)
            return f"sqlite:///{path}"
        import psycopg

        name = f"entitlements_bench_{self.tag}_{label}"
        with psycopg.connect(pg_conninfo(self.admin_url), autocommit=True) as connection:
            if template is None:
                connection.execute(f"CREATE DATABASE {name}")
            else:
                source = template.rsplit("/", 1)[-1]
                connection.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
        self.created.append(name)
        return with_dbname(self.admin_url, name)

    def drop_all(self) -> None:
        if self.keep:
            if self.created or self.tmpdir:
                note(f"--keep: leaving {', '.join(self.created) or self.tmpdir}")
            return
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        if self.created:
            import psycopg

            with psycopg.connect(pg_conninfo(self.admin_url), autocommit=True) as connection:
                for name in self.created:
                    connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            note(f"dropped {', '.join(self.created)}")
        self.created = []


# =============================================================================================
# The run
# =============================================================================================


def per(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:.2f} ms" if count else "-"


def print_backend(backend: str, requests: int, setup: dict, jumps: dict[str, dict]) -> None:
    failing_note = f", the commands of {ARGS.fail_percent} % of the subjects failing" if ARGS.fail_percent else ""
    print(f"\n== {backend}: {requests:,} requests, one jump of {ARGS.days} days{failing_note} ==")
    print(f"setup: {setup['events']:,} events in {setup['seconds']:.1f} s; deadlines projected in {setup['projection_seconds']:.1f} s;"
          f" deadlines: {', '.join(f'{v:,} {k}' for k, v in sorted(setup['deadlines'].items()))}")
    print(f"{'path':<34} {'deadlines':>9} {'done':>8} {'skipped':>8} {'failed':>6} {'due times':>9} {'events':>9} {'time':>9} {'per deadline':>13} {'catch-ups':>10} {'reads':>8} {'rows read':>10} {'log looks':>10}")
    for label, name in (("Scheduler.advance (new)", "advance"), ("replaced path (legacy)", "legacy")):
        jump = jumps.get(name)
        if jump is None:
            continue
        if "skipped_because" in jump:
            print(f"{label:<34} {jump['skipped_because']}")
            continue
        calls = jump["calls"]
        print(f"{label:<34} {jump['deadlines']:>9,} {jump['done']:>8,} {jump['skipped']:>8,} {jump['failed']:>6,} {jump['distinct_due_times']:>9,}"
              f" {jump['events']:>9,} {jump['seconds']:>8.1f}s {per(jump['seconds'], jump['deadlines']):>13}"
              f" {calls.get('catch_ups', 0):>10,} {calls.get('deadline_reads', 0):>8,} {calls.get('deadline_reads_rows', 0):>10,} {calls.get('log_looks', 0):>10,}")
        spent = jump.get("spent", {})
        if spent:
            parts = [f"{label.replace('_', ' ')} {spent[label]:.1f} s" for label in ("commands", "clock_moves", "catch_ups", "deadline_reads", "log_looks") if label in spent]
            other = jump["seconds"] - sum(spent.get(label, 0) for label in ("commands", "clock_moves", "catch_ups", "deadline_reads", "log_looks"))
            print(f"   where the time went: {', '.join(parts)}, the rest {other:.1f} s")
        if jump.get("details"):
            print(f"   why skipped or failed (most common): {jump['details']}")
        for problem in jump["problems"]:
            print(f"   PROBLEM: {problem}")
    commands = jumps.get("commands")
    if commands:
        print(f"{'ceiling: the commands alone':<34} {commands['deadlines']:>9,} {commands['outcomes'].get('done', 0):>8,}"
              f" {sum(v for k, v in commands['outcomes'].items() if k != 'done'):>8,} {'':>6} {'':>9} {commands['events']:>9,}"
              f" {commands['seconds']:>8.1f}s {per(commands['seconds'], commands['deadlines']):>13}")
    read = jumps.get("read")
    if read:
        print(f"ceiling: reading the {read['rows']:,} deadline rows: {read['read_pages']:.2f} s in pages of 500"
              f" ({per(read['read_pages'], read['rows'])} a row), {read['read_one_query']:.2f} s in one query;"
              f" moving the clock to each of the {read['distinct_due_times']:,} due times alone: {read['clock_moves']:.1f} s"
              f" ({per(read['clock_moves'], read['distinct_due_times'])} each)")
    loads = ", ".join(f"{name} {jump['load_before']:.1f}-{jump['load_after']:.1f}" for name, jump in jumps.items() if "load_before" in jump)
    print(f"load average (1 min) before-after each measurement, on {os.cpu_count()} CPUs: {loads}")
    new, old = jumps.get("advance"), jumps.get("legacy")
    if new and old and "seconds" in old and new["deadlines"]:
        print(f"new / replaced: {new['seconds'] / old['seconds']:.2f} of the time ({old['seconds'] / new['seconds']:.1f}x faster)")
    if new and commands and commands["seconds"]:
        print(f"new / commands alone: {new['seconds'] / commands['seconds']:.2f}")


def print_profiles(prefix: str, modes: list[str]) -> None:
    import pstats

    for mode in modes:
        path = f"{prefix}.{mode}"
        if not os.path.exists(path):
            continue
        print(f"\ncProfile of the jump ({mode}), by cumulative time:")
        stats = pstats.Stats(path, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(35)
        stats.print_callees("scheduler.py.*\\((next|_look|_catch_up|_read)\\)")
        os.remove(path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_clock",
        description=(
            "Measures one jump of the manual clock (Scheduler.advance, the code POST /admin/clock runs) over N "
            "requests whose deadlines spread over 400 days, on SQLite and PostgreSQL, against the code path it "
            "replaced and the raw ceilings (the commands alone, reading the deadline rows). The databases it "
            "creates (entitlements_bench_*; SQLite files under /tmp) are dropped at the end."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=100_000, help="requests submitted before the jump")
    parser.add_argument("--days", type=int, default=400, help="the jump, in days")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL), help="PostgreSQL server to create the databases on (env BENCH_POSTGRES_URL)")
    parser.add_argument("--legacy", choices=("yes", "no", "auto"), default="auto", help="also run the replaced code path (auto: up to --legacy-max requests)")
    parser.add_argument("--legacy-max", type=int, default=20_000, help="--legacy auto runs the replaced path only up to this many requests")
    parser.add_argument("--skip-ceilings", action="store_true", help="skip the commands-alone and read ceilings")
    parser.add_argument("--fail-percent", type=int, default=0, help="make the commands of this percentage of the requests and assignments fail (their deadlines stay behind)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print where the time of each jump goes (cProfile; slows the jumps down)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (their names are printed)")
    parser.add_argument("--child-timeout", type=float, default=4 * 3600, help="seconds any one measurement may take")
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in args.backends if b not in ("sqlite", "postgresql")]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}")
    if args.requests < PACKAGES:
        parser.error(f"--requests must be at least {PACKAGES}")
    return args


ARGS: argparse.Namespace


def main(argv: list[str]) -> int:
    global ARGS
    if argv[:1] == ["_jump"]:
        child_jump(argv[1], argv[2], int(argv[3]), int(argv[4]))
        return 0
    ARGS = args = parse_args(argv)
    started = time.perf_counter()
    if args.profile:
        os.environ["BENCH_CLOCK_PROFILE"] = os.path.join(tempfile.gettempdir(), f"bench_clock_{uuid.uuid4().hex[:8]}.prof")
    for backend in args.backends:
        databases = Databases(backend=backend, admin_url=args.admin_url, keep=args.keep)
        try:
            main_url = databases.create("setup")
            note(f"{backend}: setting up {args.requests:,} requests in {main_url}")
            setup = set_up(main_url, args.requests, args.seed)
            note(f"  {setup['events']:,} events in {setup['seconds']:.1f} s, deadlines {setup['deadlines']}")
            modes = ["advance"]
            legacy = args.legacy == "yes" or (args.legacy == "auto" and args.requests <= args.legacy_max)
            if legacy:
                modes.append("legacy")
            if not args.skip_ceilings:
                modes += ["commands", "read"]
            jumps: dict[str, dict] = {}
            if not legacy:
                jumps["legacy"] = {"skipped_because": f"not run (--legacy {args.legacy}, --legacy-max {args.legacy_max:,})"}
            for mode in modes:
                url = databases.create(mode, template=main_url)
                note(f"  {mode}: on a copy ({url})")
                jumps[mode] = run_child(["_jump", url, mode, str(args.days), str(args.fail_percent)], timeout=args.child_timeout)
                summary = {k: v for k, v in jumps[mode].items() if k not in ("kinds", "details")}
                note(f"    {summary}")
            print_backend(backend, args.requests, setup, jumps)
            if args.profile:
                print_profiles(os.environ["BENCH_CLOCK_PROFILE"], [mode for mode in modes if mode in ("advance", "legacy")])
        finally:
            databases.drop_all()
    print(f"\nthe whole run took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
