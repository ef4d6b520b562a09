"""Audit benchmark: export and verification throughput beside the raw read of the log, and the
latency of ``/audit/access`` and ``/audit/requests/{id}/explain`` under concurrent clients.

Run it through ``scripts/bench_audit`` (``--help`` lists the options). On the synthetic history of
``scripts/bench_readmodels`` (its ``load_history``: 100,000 requests make about 1.2M events), built
afresh or reused (``--keep`` leaves it, ``--url`` takes it again), one run measures:

1. the ceiling: ``scripts/bench_readmodels``' own read ceiling, in a fresh process: the log read in
   the projector's pages by its reader, rows only and rows decoded (orjson); beside it, for
   context, the rows read by the reader the export uses (``LogTree.log_rows``) and parsed with
   orjson, and the library's own decode into domain events (``select_notifications`` + mapper);
2. ``entitlements audit export`` of the whole log (``entitlements.audit.export_log``);
3. its offline verification (``transparency_log.export.verify_export``);
4. the log's Merkle tree appended from empty (``LogTree.append_new``: what the service does once
   over an existing log), a checkpoint signed, and the live database verified against the leaves
   and the checkpoint (``entitlements.audit.verify_live``);
5. ``/audit/access`` (a package or a user at a random instant of the history) and
   ``/audit/requests/{id}/explain`` (a random request of ``facts_requests``) after the read models
   are caught up (the first projection of ``access_history`` is timed; on a reused history it is
   rebuilt to time it; on PostgreSQL the database is then analyzed, untimed, as autovacuum would):
   ``--clients`` threads call the Flask app in-process (``create_app(..., project_inline=True)``,
   one test client per thread) and time each call: server time. The threads share one
   interpreter (the GIL) on this machine's cores, so the figures include that contention; the
   same calls are then made over HTTP to ``entitlements web`` (granian worker processes), unless
   ``--skip-http``: from Python client threads, then (when it is installed; ``scripts/bench_audit``
   installs it as root) from wrk, a load generator in C, which costs the shared cores far less.

Targets (the issue): export and verify at least half the raw read+decode rate; ``/audit/access``
p99 under 20 ms with 8 clients, judged on the wrk row (the Python clients' HTTP row without wrk,
the in-process one when ``--skip-http``),
with ``/healthz`` over the same clients beside it: the HTTP stack's own floor on this machine.
The figures are printed beside the targets, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import orjson  # noqa: E402

from bench_readmodels import (  # noqa: E402  (scripts/ is on the path: this file's folder)
    DEFAULT_ADMIN_URL,
    Databases,
    autovacuum_on,
    describe_load,
    load_history,
    note,
    pg_conninfo,
    run_child,
    vacuum_analyze,
    verdict,
)

TARGET_RATIO = 0.5  # export and verify: at least half the raw read+decode rate
TARGET_P99_MS = 20.0  # /audit/access p99 under 8 clients
AUDITOR = "u0000"  # bench_readmodels.make_tenant gives user 0 the roles admin and auditor


def services_for(url: str, key_file: str):
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    return build_services(Settings(database_url=url, audit_key_file=key_file))


def flush_writes(url: str) -> float:
    """A PostgreSQL ``CHECKPOINT`` (the dirty buffers written) and the machine's ``sync``."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(pg_conninfo(url), autocommit=True) as connection:
        connection.execute("CHECKPOINT")
    os.sync()
    return time.perf_counter() - started


def load_info() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


# =============================================================================================
# Throughput
# =============================================================================================


def timed(label: str, events: int, action):
    """(events/s, seconds, what ``action`` answered)."""
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    note(f"  {label}: {seconds:.1f} s, {events / seconds:,.0f} events/s")
    return events / seconds, seconds, result


def rows_and_orjson(services) -> int:
    """Every row of the log read by the export's reader (``LogTree.log_rows``) and its state
    parsed with orjson; nothing else made. Answers the rows read."""
    count = 0
    for row in services.log_tree.log_rows():
        state = row[4]
        orjson.loads(bytes(state) if isinstance(state, memoryview) else state)
        count += 1
    return count


def library_decode(services) -> int:
    """Every event read and decoded into the domain's events by the library itself
    (``select_notifications`` and the application's mapper). Answers the events read."""
    app = services.app
    head = services.read_models.head()
    count, position = 0, 0
    while position < head:
        notifications = app.recorder.select_notifications(position + 1, 5000, stop=head)
        if not notifications:
            break
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
    return count


class _Prefix:
    """A log tree that shows ``export_log`` only the first ``size`` events of the log."""

    def __init__(self, tree, size: int) -> None:
        self.tree, self.size, self.audit_log = tree, size, tree.audit_log

    def log_chunks(self):
        return self.tree.log_chunks(up_to=self.size)


def profile_export(services, size: int, work: Path) -> None:
    """cProfile of the export, then of the offline verification, of the first ``size`` events."""
    import cProfile
    import io
    import pstats

    from entitlements.audit import export_log
    from transparency_log.export import verify_export

    signer = services.log_tree.signer
    path = work / "profile.jsonl"
    for label, action in (
        ("audit export", lambda: export_log(_Prefix(services.log_tree, size), signer, path, workers=0)),  # in this process: profiled
        ("offline verify", lambda: verify_export(str(path), signer.verifier_key)),
    ):
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        action()
        profiler.disable()
        seconds = time.perf_counter() - started
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print(f"\ncProfile of {label} of the first {size:,} events ({seconds:.1f} s under the profiler,"
              f" {size / seconds:,.0f} events/s): by own time, then cumulative")
        stats.sort_stats("tottime").print_stats(18)
        stats.sort_stats("cumulative").print_stats(22)
        print(out.getvalue().strip("\n"))


# =============================================================================================
# Read models and latency
# =============================================================================================


def bring_read_models_up(services, head: int, *, time_access_history: bool) -> list[tuple[str, float, int]]:
    """Catches every read model up to the head; times the first projection of ``access_history``
    (a rebuild of it when it is already at the head and ``time_access_history``) and then the rest."""
    read_models = services.read_models
    done = []
    position = read_models.positions().get("access_history", 0)
    if position < head:
        note(f"  access_history is at {position:,}: projecting it to the head ({head - position:,} events)")
        started = time.perf_counter()
        read_models.projector_for(["access_history"]).catch_up()
        done.append(("access_history, first projection" if position == 0 else "access_history, catch-up",
                     time.perf_counter() - started, head - position))
    elif time_access_history:
        note("  access_history is at the head (an earlier run): rebuilding it to time its projection")
        result = read_models.rebuild(["access_history"])
        done.append(("access_history, rebuilt whole", result.seconds, result.events))
    behind = {name: p for name, p in read_models.positions().items() if p < head}
    started = time.perf_counter()
    read_models.catch_up()
    seconds = time.perf_counter() - started
    if behind:
        lowest = min(behind.values())
        done.append((f"catch_up() of the {len(behind)} other read models behind ({', '.join(sorted(behind))})", seconds, head - lowest))
    else:
        done.append(("catch_up() (all at the head already)", seconds, 0))
    for label, seconds, events in done:
        note(f"  {label}: {seconds:.1f} s" + (f", {events / seconds:,.0f} events/s" if events and seconds else ""))
    return done


def in_threads(client, paths: list[str], clients: int) -> float:
    """Runs ``client(share)`` in ``clients`` threads, each with its share of ``paths``; the seconds it took."""
    threads = [threading.Thread(target=client, args=(paths[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(times: list[float], wall: float, failures: list[str]) -> dict:
    ordered = sorted(times)
    if not ordered:
        return {"calls": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan"), "mean": float("nan"), "per_second": 0.0, "failures": failures}
    return {
        "calls": len(ordered), "p50": percentile(ordered, 0.5), "p99": percentile(ordered, 0.99), "max": ordered[-1],
        "mean": statistics.fmean(ordered), "per_second": len(ordered) / wall, "failures": failures,
    }


def in_process_calls(app, token: str, paths: list[str], clients: int) -> dict:
    """``clients`` threads, one Flask test client each, call their share of ``paths``; each
    call's wall time in the thread (ms): server time, the test client runs in-process."""
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}

    def client(share: list[str]) -> None:
        test_client = app.test_client()
        mine = []
        for path in share:
            started = time.perf_counter()
            response = test_client.get("/api/v1" + path, headers=headers)
            body = response.get_data()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                with lock:
                    failures.append(f"{response.status_code} {path}: {body[:200]!r}")
        with lock:
            times.extend(mine)

    return summary(times, in_threads(client, paths, clients), failures)


def http_calls(port: int, token: str, paths: list[str], clients: int) -> dict:
    """The same over HTTP: ``clients`` threads, one keep-alive connection each; each call's
    time as the client sees it (request sent to body read), in ms."""
    import http.client

    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}

    def client(share: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for path in share:
            started = time.perf_counter()
            connection.request("GET", "/api/v1" + path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                with lock:
                    failures.append(f"{response.status} {path}: {body[:200]!r}")
        connection.close()
        with lock:
            times.extend(mine)

    return summary(times, in_threads(client, paths, clients), failures)


WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {["Authorization"] = "Bearer %(token)s"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n - 1) %% #paths + 1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-result %%d %%d %%.0f %%.0f %%.0f %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_calls(port: int, token: str, paths: list[str], clients: int, seconds: float, work: Path) -> dict:
    """The same calls from wrk, a load generator written in C: one thread, ``clients`` keep-alive
    connections, each sending its next call as soon as its last answer arrived (as the Python
    clients do), through ``paths`` in turn, for ``seconds``. Its latency is each call's time from
    sent to answered, in microseconds; it costs the shared cores a fraction of what 8 Python
    threads parsing HTTP do, which is nearer a server whose clients are elsewhere."""

    quoted = ", ".join('"' + ("/api/v1" + path).replace("\\", "\\\\").replace('"', '\\"') + '"' for path in paths)
    script = work / "calls.lua"
    script.write_text(WRK_SCRIPT % {"paths": quoted, "token": token})
    command = ["wrk", "--threads", "1", "--connections", str(clients), "--duration", f"{seconds:g}s", "--timeout", "30s",
               "--script", str(script), f"http://127.0.0.1:{port}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    result = next((line.split()[1:] for line in finished.stdout.splitlines() if line.startswith("wrk-result ")), None)
    if finished.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed (exit {finished.returncode}): {(finished.stderr or finished.stdout).strip()[:300]}")
    requests, duration, p50, p99, longest, *errors = (int(value) for value in result)
    connect, read, write, status, timeout = errors
    failures = [f"{count} {kind}" for kind, count in
                (("answers not 2xx/3xx", status), ("connection errors", connect), ("read errors", read),
                 ("write errors", write), ("timeouts", timeout)) if count]
    return {"calls": requests, "p50": p50 / 1000, "p99": p99 / 1000, "max": longest / 1000, "mean": float("nan"),
            "per_second": requests / (duration / 1e6), "failures": failures}


def web_server(url: str, key_file: str, workers: int, threads: int):
    """``entitlements web`` (granian: worker processes with threads) on a free port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "entitlements.cli", "web", "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
        cwd=str(ROOT), env={**os.environ, "ENTITLEMENTS_DATABASE_URL": url, "ENTITLEMENTS_AUDIT_KEY_FILE": key_file},
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the web server exited with code {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                server.wait()
                raise RuntimeError("the web server did not start listening within 60 s")
            time.sleep(0.2)


def latency_paths(services, calls: int, rng: random.Random) -> tuple[str, list[str], list[str], dict]:
    """(auditor, /audit/access paths, explain paths, what they were drawn from)."""
    with services.store.transaction(write=False) as tx:
        packages = sorted(row[0] for row in tx.fetchall("SELECT DISTINCT access_package_id FROM access_periods"))
        users = sorted(row[0] for row in tx.fetchall("SELECT DISTINCT user_id FROM access_periods"))
        first, last = tx.fetchone("SELECT MIN(granted_at), MAX(granted_at) FROM access_periods")
        request_ids = sorted(row[0] for row in tx.fetchall("SELECT request_id FROM facts_requests"))
    if not packages or not request_ids:
        raise RuntimeError("no access periods or no requests in the read models: nothing to ask about")
    auditor = AUDITOR
    user = services.read_models.user(auditor)
    if user is None or "auditor" not in (user.get("roles") or []):
        raise RuntimeError(f"{auditor} is not an auditor of this tenant: {user}")
    start = datetime.fromisoformat(first.replace("Z", "+00:00"))
    span = (datetime.fromisoformat(last.replace("Z", "+00:00")) - start).total_seconds()

    def instant() -> str:
        return quote((start + timedelta(seconds=rng.uniform(0, span))).isoformat())

    access = [
        f"/audit/access?access_package_id={rng.choice(packages)}&at={instant()}" if i % 2 == 0
        else f"/audit/access?user_id={rng.choice(users)}&at={instant()}"
        for i in range(calls)
    ]
    explain = [f"/audit/requests/{rng.choice(request_ids)}/explain" for _ in range(calls)]
    drawn = {"packages": len(packages), "users": len(users), "requests": len(request_ids), "from": first, "to": last}
    return auditor, access, explain, drawn


# =============================================================================================
# The report
# =============================================================================================


def print_report(*, backend: str, events: int, origin: str, ceiling: dict, context: dict, steps: dict,
                 projections: list, latency: dict | None, http: dict | None, http_note: str, clients: int,
                 wrk: dict | None = None, wrk_note: str = "",
                 calls: int, drawn: dict | None, loads: tuple[str, str], maintenance: str = "") -> None:
    line = "-" * 118
    raw = ceiling["read+decode"]
    print()
    print(f"Audit benchmark ({backend}): {events:,} log events ({origin})")
    print(f"machine: {loads[0]} at the start, {loads[1]} at the end")
    print(line)
    print(f"{'(1)-(4) throughput':<50}{'events/s':>12}{'seconds':>9}{'/ ceiling':>11}{'target':>11}{'':>8}")
    print(f"{'(1) raw log read + orjson decode  [ceiling]':<50}{raw:>12,.0f}{events / raw:>9.1f}{'1.00x':>11}")
    print(f"{'    raw log read only':<50}{ceiling['read']:>12,.0f}{events / ceiling['read']:>9.1f}{ceiling['read'] / raw:>10.2f}x")
    for label, (rate, seconds) in context.items():
        print(f"{'    ' + label:<50}{rate:>12,.0f}{seconds:>9.1f}{rate / raw:>10.2f}x")
    for label, (rate, seconds) in steps.items():
        targeted = label.startswith(("(2)", "(3)"))
        ok = rate >= raw * TARGET_RATIO if targeted else None
        shown = f">= {TARGET_RATIO:.2f}x" if targeted else "-"
        print(f"{label:<50}{rate:>12,.0f}{seconds:>9.1f}{rate / raw:>10.2f}x{shown:>11}{verdict(ok):>8}")
    print("(the ceiling is scripts/bench_readmodels' read ceiling, in a fresh process: the projector's reader, its pages,")
    print(" every read model's topics, make_event (orjson); the indented rows are context, not targets)")
    print(line)
    if projections:
        print("read models brought to the head before (5):")
        for label, seconds, moved in projections:
            rate = f"{moved / seconds:,.0f} events/s" if moved and seconds else ""
            print(f"    {label}: {seconds:.1f} s" + (f", {rate}" if rate else ""))
        if maintenance:
            print(f"    then {maintenance}")
        print(line)
    if latency is None:
        print("(5) latency: skipped (--skip-latency)")
        print(line)
        return
    print(f"(5) latency, {clients} client threads, {calls:,} calls per endpoint; in-process: Flask test clients in this process,"
          " each call's wall time (server time)")
    if drawn:
        print(f"    random instants from {drawn['from']} to {drawn['to']}, {drawn['packages']} packages, {drawn['users']} users,"
              f" {drawn['requests']:,} requests")
    print(f"{'endpoint':<50}{'clients':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'calls/s':>9}{'failed':>8}{'target p99':>12}{'':>8}")

    def row(label: str, n: int, figures: dict, targeted: bool) -> None:
        ok = (figures["p99"] < TARGET_P99_MS and not figures["failures"]) if targeted else None
        shown = f"< {TARGET_P99_MS:.0f} ms" if targeted else "-"
        print(f"{label:<50}{n:>8}{figures['p50']:>9.1f}{figures['p99']:>9.1f}{figures['max']:>9.1f}{figures['per_second']:>9,.0f}"
              f"{len(figures['failures']):>8}{shown:>12}{verdict(ok):>8}")

    row("/audit/access, in-process", clients, latency["access"], clients == 8 and not http)
    row("/audit/requests/{id}/explain, in-process", clients, latency["explain"], False)
    row("/audit/access, in-process, alone", 1, latency["access alone"], False)
    row("/audit/requests/{id}/explain, in-process, alone", 1, latency["explain alone"], False)
    print(f"(the {clients} threads share one interpreter: with the GIL, on {os.cpu_count()} cores, a call's time includes waiting"
          " for the others; 'alone' is one thread)")
    if http:
        print(http_note)
        row("/audit/access, HTTP", clients, http["access"], clients == 8 and not wrk)
        row("/audit/requests/{id}/explain, HTTP", clients, http["explain"], False)
        row("/audit/access, HTTP, alone", 1, http["access alone"], False)
        row("/healthz, HTTP (the floor: no token, no database)", clients, http["healthz"], False)
        if wrk:
            print(f"the same server, its {clients} clients being wrk (a load generator in C: one thread, {clients} keep-alive"
                  " connections, each sending its next call when its last answer arrived), time seen by wrk:")
            row("/audit/access, HTTP, wrk", clients, wrk["access"], clients == 8)
            row("/audit/requests/{id}/explain, HTTP, wrk", clients, wrk["explain"], False)
            row("/healthz, HTTP, wrk (the floor)", clients, wrk["healthz"], False)
        elif wrk_note:
            print(wrk_note)
        judged = "wrk row" if wrk else "HTTP row"
        print(f"(the target is the {judged}: a server as deployed, its clients elsewhere. Here the clients share the"
              f" {os.cpu_count()} cores with the server and the database: {clients} Python client threads cost the cores about"
              " what the server does, wrk a small part of it; /healthz shows what the HTTP stack alone costs)")
    elif http_note:
        print(http_note)
    print(line)
    for figures in (*latency.values(), *((http or {}).values()), *((wrk or {}).values())):
        for failure in figures["failures"][:3]:
            print(f"  failed: {failure}")


# =============================================================================================
# Main
# =============================================================================================


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_audit",
        description=(
            "Measures the audit trail on scripts/bench_readmodels' synthetic history: the raw log read+decode ceiling, "
            "`entitlements audit export` and its offline verification, the log's tree from empty and the live "
            "verification (events/s, beside the ceiling), and p50/p99 of /audit/access and /audit/requests/{id}/explain "
            "under concurrent clients. Prints a table with the targets; exits 0 when targets are missed, non-zero on "
            "errors. The database it creates (entitlements_bench_*_audit) is dropped at the end unless --keep; "
            "--url reuses one a --keep run left (or any entitlements_bench_* history)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=100_000, help="requests in the history (100,000 make about 1.2M events)")
    parser.add_argument("--users", type=int, default=600, help="users in the generated tenant")
    parser.add_argument("--packages", type=int, default=50, help="access packages in the generated tenant")
    parser.add_argument("--days", type=int, default=730, help="days of history the requests are spread over")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the history and of the calls")
    parser.add_argument("--sqlite", action="store_true", help="on SQLite (a temporary file under /tmp) instead of PostgreSQL")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL), help="PostgreSQL server to create the benchmark database on (env BENCH_POSTGRES_URL)")
    parser.add_argument("--loader", choices=("copy", "recorder"), default="copy", help="PostgreSQL: one COPY into the events table, or the library's recorder.insert_events")
    parser.add_argument("--url", help="reuse the history in this database (postgresql://... or sqlite:///path) instead of loading one; never dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database it creates (its URL is printed) for --url next time")
    parser.add_argument("--calls", type=int, default=2000, help="calls per endpoint in (5)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads in (5)")
    parser.add_argument("--no-access-history-rebuild", action="store_true", help="on a reused history whose access_history is at the head, do not rebuild it to time its projection")
    parser.add_argument("--skip-latency", action="store_true", help="skip (5)")
    parser.add_argument("--skip-http", action="store_true", help="in (5), skip the same calls over HTTP through `entitlements web`")
    parser.add_argument("--skip-context", action="store_true", help="skip the context rows beside the ceiling (export's reader + orjson, the library's decode)")
    parser.add_argument("--web-workers", type=int, default=2, help="`entitlements web` worker processes for the HTTP calls")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per web worker for the HTTP calls")
    parser.add_argument("--wrk-seconds", type=float, default=15, help="seconds wrk calls each endpoint (when wrk is installed)")
    parser.add_argument("--profile", type=int, default=0, metavar="EVENTS", help="also cProfile the export and the verification of the first EVENTS events (e.g. 50000)")
    parser.add_argument("--child-timeout", type=float, default=1800, help="seconds the ceiling's child process may take")
    args = parser.parse_args(argv)
    if args.requests < 100:
        parser.error("--requests must be at least 100")
    if args.url:
        args.sqlite = args.url.startswith("sqlite")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_started = time.perf_counter()
    load_start = load_info()
    note(f"{load_start}")
    backend = "sqlite" if args.sqlite else "postgresql"
    databases = Databases(sqlite=args.sqlite, admin_url=args.admin_url, keep=args.keep)
    work = Path(tempfile.mkdtemp(prefix="bench_audit_"))
    key_file = None
    try:
        url = args.url
        if url is None:
            url = databases.create("audit")
            note(f"loading {args.requests:,} requests into {url}")
            loaded = load_history(url, requests=args.requests, users=args.users, packages=args.packages,
                                  seed=args.seed, days=args.days, loader=args.loader)
            describe_load(loaded)
            origin = f"built in {loaded.seconds:.0f} s: {loaded.requests:,} requests, seed {args.seed}"
            if not args.sqlite:
                note(f"VACUUM (ANALYZE) after loading (untimed): {vacuum_analyze(url):.1f} s")
        else:
            origin = f"reused: {url}"
            note(f"reusing the history in {url}")
        # one signing key per history, kept beside it in the temporary directory, so that a rerun
        # (--url) finds the checkpoints it signed before signed by the same key
        key_file = str(Path(tempfile.gettempdir()) / f"bench_audit_{hashlib.sha1(url.encode()).hexdigest()[:12]}.key")
        services = services_for(url, key_file)
        try:
            events = services.read_models.head()
            note(f"the log: {events:,} events")

            note("step 1: the ceiling, scripts/bench_readmodels' read ceiling in a fresh process")
            ceiling = run_child(["_read", url], timeout=args.child_timeout)
            note("  " + ", ".join(f"{k}: {v:,.0f} events/s" for k, v in ceiling.items()))
            context = {}
            if not args.skip_context:
                rate, seconds, _ = timed("LogTree.log_rows + orjson.loads", events, lambda: rows_and_orjson(services))
                context["export's reader (LogTree.log_rows) + orjson"] = (rate, seconds)
                rate, seconds, _ = timed("the library's decode (select_notifications + mapper)", events, lambda: library_decode(services))
                context["library: select_notifications + mapper"] = (rate, seconds)

            from entitlements.audit import export_log, verify_live
            from transparency_log.export import verify_export
            from transparency_log.note import Verifier

            steps = {}
            signer = services.log_tree.signer
            export_path = work / "log.jsonl"
            note("step 2: audit export of the whole log")
            rate, seconds, exported = timed("export", events, lambda: export_log(services.log_tree, signer, export_path))
            steps["(2) audit export (export_log)"] = (rate, seconds)
            note(f"  {exported.events:,} events, {export_path.stat().st_size / 1e6:,.0f} MB")

            note("step 3: offline verification of the export")
            rate, seconds, report = timed("verify", events, lambda: verify_export(str(export_path), signer.verifier_key))
            steps["(3) offline verify (verify_export)"] = (rate, seconds)
            note(f"  {report}")
            if not report.intact:
                raise RuntimeError(f"the export does not verify: {report}")
            for leftover in work.glob("log.jsonl*"):
                leftover.unlink()

            note("step 4: the log's tree from empty, a checkpoint, then the live database verified")
            services.log_tree.reset()
            with services.store.transaction() as tx:  # a benchmark's history: the checkpoints of earlier runs go too
                tx.execute("DELETE FROM log_checkpoints")
            rate, seconds, _ = timed("append_new from empty", events, services.log_tree.append_new)
            steps["(4) tree from empty (append_new)"] = (rate, seconds)
            services.log_tree.record(force=True)
            rate, seconds, live = timed("verify_live", events, lambda: verify_live(services.log_tree, Verifier.from_text(signer.verifier_key)))
            steps["(4) live verify (verify_live)"] = (rate, seconds)
            note(f"  {live.message}")
            if not live.ok:
                raise RuntimeError(f"the live log does not verify: {live.message}")

            projections: list = []
            latency = http = wrk = drawn = None
            wrk_note = ""
            maintenance = ""
            http_note = ""
            if not args.skip_latency:
                note("step 5: the read models to the head, then /audit/access and /audit/requests/{id}/explain")
                time_it = not args.no_access_history_rebuild
                projections = bring_read_models_up(services, events, time_access_history=time_it)
                if not args.sqlite:  # the read models' tables were just filled: give the planner their statistics
                    vacuum = "on" if autovacuum_on(url) else "OFF (nothing else would ever analyze the new rows)"
                    seconds = vacuum_analyze(url)
                    maintenance = f"autovacuum {vacuum}: VACUUM (ANALYZE) after the projections, untimed ({seconds:.1f} s)"
                    note(f"  {maintenance}")
                    # the earlier steps wrote the whole tree (1.2M rows) and maybe the read models:
                    # their writes are flushed now, so that the flush is not in the calls' times
                    seconds = flush_writes(url)
                    maintenance += f"; CHECKPOINT and sync, untimed ({seconds:.1f} s)"
                from web.app import create_app

                rng = random.Random(args.seed)
                auditor, access_paths, explain_paths, drawn = latency_paths(services, args.calls, rng)
                token = services.tokens.create(auditor, now=services.app.clock.now())
                app = create_app(services, project_inline=True)
                # warm the caches, and the connection pool up to one connection a client thread
                in_process_calls(app, token, access_paths[:200] + explain_paths[:200], args.clients)
                # what this process holds by now (the export steps' leftovers, the paths) is frozen
                # out of the garbage collector: its full collections would be counted in every
                # call's time, the clients' over HTTP too, and they are no part of a server's
                gc.collect()
                gc.freeze()
                latency = {
                    "access": in_process_calls(app, token, access_paths, args.clients),
                    "explain": in_process_calls(app, token, explain_paths, args.clients),
                    "access alone": in_process_calls(app, token, access_paths[: max(1, args.calls // 4)], 1),
                    "explain alone": in_process_calls(app, token, explain_paths[: max(1, args.calls // 4)], 1),
                }
                for name, figures in latency.items():
                    note(f"  {name}: p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, max {figures['max']:.1f} ms,"
                         f" {figures['per_second']:,.0f} calls/s, {len(figures['failures'])} failed")
                if args.skip_http:
                    http_note = "(HTTP through `entitlements web`: skipped, --skip-http)"
                else:
                    http_note = (f"the same calls over HTTP to `entitlements web` ({args.web_workers} granian workers x {args.server_threads}"
                                 f" threads: no GIL shared between workers), {args.clients} keep-alive Python client threads, time seen by the client:")
                    note(f"  over HTTP through `entitlements web` ({args.web_workers} workers x {args.server_threads} threads)")
                    try:
                        server, port = web_server(url, key_file, args.web_workers, args.server_threads)
                        try:
                            # warm every worker, and its connection pool up to what the clients will ask of it
                            http_calls(port, token, access_paths[:400] + explain_paths[:400], args.clients)
                            http = {
                                "access": http_calls(port, token, access_paths, args.clients),
                                "explain": http_calls(port, token, explain_paths, args.clients),
                                "access alone": http_calls(port, token, access_paths[: max(1, args.calls // 4)], 1),
                                "healthz": http_calls(port, token, ["/healthz"] * len(access_paths), args.clients),
                            }
                            if shutil.which("wrk") is None:
                                wrk_note = "(wrk is not installed: no rows from a C client; `apt-get install wrk` adds them)"
                            else:
                                note(f"  the same from wrk, {args.wrk_seconds:g} s an endpoint")
                                try:
                                    wrk = {
                                        "access": wrk_calls(port, token, access_paths, args.clients, args.wrk_seconds, work),
                                        "explain": wrk_calls(port, token, explain_paths, args.clients, args.wrk_seconds, work),
                                        "healthz": wrk_calls(port, token, ["/healthz"], args.clients, args.wrk_seconds, work),
                                    }
                                except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                                    wrk_note = f"(the wrk rows: FAILED: {error})"
                        finally:
                            server.terminate()
                            server.wait(timeout=10)
                    except (RuntimeError, OSError) as error:
                        http_note = f"(HTTP through `entitlements web`: FAILED: {error})"
            profile_size = min(args.profile, events)
        finally:
            services.close()

        print_report(backend=backend, events=events, origin=origin, ceiling=ceiling, context=context, steps=steps,
                     projections=projections, latency=latency, http=http, http_note=http_note, wrk=wrk, wrk_note=wrk_note,
                     clients=args.clients,
                     calls=args.calls, drawn=drawn, loads=(load_start, load_info()), maintenance=maintenance)
        if profile_size:
            services = services_for(url, key_file)
            try:
                profile_export(services, profile_size, work)
            finally:
                services.close()
        print(f"\nthe whole run took {time.perf_counter() - run_started:.0f} s")
    finally:
        for leftover in work.glob("*"):
            leftover.unlink()
        work.rmdir()
        if (databases.created or databases.tmpdir) and not args.keep and key_file and os.path.exists(key_file):
            os.unlink(key_file)
        databases.drop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
