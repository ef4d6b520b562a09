"""Audit benchmark: export and verification throughput beside the raw read of the log, and the
latency of ``/audit/access`` and ``/audit/requests/{id}/explain`` under concurrent clients.

On the synthetic history of ``scripts/bench_readmodels`` (``load_history``; 100,000 requests make
about 1.2M events), in one run:

1. the ceilings: every event of the log read in order and decoded by the library
   (``select_notifications`` and the application's mapper: DESIGN.md's "reading and decoding
   events"), and, lower-level, only its rows read and their JSON parsed (orjson);
2. ``entitlements audit export`` of the whole log (``entitlements.audit.export_log``);
3. its offline verification (``transparency_log.export.verify_export``);
4. the log's Merkle tree appended from empty (what the service does once over an existing log)
   and the live database verified against it and a signed checkpoint (``verify_live``);
5. ``/audit/access`` (a package or a user at a random instant of the history) and
   ``/audit/requests/{id}/explain`` (a random request), each from ``--clients`` threads calling
   the Flask app in-process (one test client per thread): each call's time is server time. The
   threads share one interpreter (the GIL) on this machine's cores: the figures include that
   contention.

Targets (issue 13): export and verify at least half the library's read+decode rate (the other
ratio is printed beside it); ``/audit/access`` p99
under 20 ms. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import orjson  # noqa: E402

from bench_readmodels import DEFAULT_ADMIN_URL, Databases, describe_load, load_history, note, vacuum_analyze  # noqa: E402


def services_for(url: str, key_file: str):
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    return build_services(Settings(database_url=url, audit_key_file=key_file))


def ceiling(services) -> float:
    """Events/s: every row of the log read in pages and its state decoded."""
    started = time.perf_counter()
    count = 0
    for row in services.log_tree.log_rows():
        orjson.loads(bytes(row[4]) if isinstance(row[4], memoryview) else row[4])
        count += 1
    return count / (time.perf_counter() - started)


def library_ceiling(services) -> float:
    """Events/s: the log read and decoded into the domain's events by the library itself
    (``select_notifications`` and the application's mapper), the yardstick DESIGN.md measures."""
    app = services.app
    head = services.read_models.head()
    started = time.perf_counter()
    count, position = 0, 0
    while position < head:
        notifications = app.recorder.select_notifications(position + 1, 5000, stop=head)
        if not notifications:
            break
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
    return count / (time.perf_counter() - started)


def timed(label: str, events: int, action) -> float:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    note(f"  {label}: {seconds:.1f} s, {events / seconds:,.0f} events/s")
    return events / seconds, result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load_calls(app, token: str, paths: list[str], clients: int) -> dict:
    """Each of ``clients`` threads calls its share of ``paths``; the time of each call in ms."""
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(share: list[str]) -> None:
        test_client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        mine = []
        for path in share:
            started = time.perf_counter()
            response = test_client.get("/api/v1" + path, headers=headers)
            mine.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                with lock:
                    failures.append(f"{response.status_code} {path}: {response.get_data(as_text=True)[:200]}")
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client, args=(paths[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "calls": len(times), "p50": percentile(times, 0.5), "p99": percentile(times, 0.99), "max": max(times),
        "mean": statistics.fmean(times), "per_second": len(times) / wall, "failures": failures,
    }


def http_calls(port: int, token: str, paths: list[str], clients: int) -> dict:
    """The same through HTTP: ``clients`` threads, one keep-alive connection each; the time of
    each call in ms, from the client (request sent to body read)."""
    import http.client

    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(share: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
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

    threads = [threading.Thread(target=client, args=(paths[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "calls": len(times), "p50": percentile(times, 0.5), "p99": percentile(times, 0.99), "max": max(times),
        "mean": statistics.fmean(times), "per_second": len(times) / wall, "failures": failures,
    }


def web_server(url: str, key_file: str, workers: int, threads: int):
    """``entitlements web`` (gunicorn: worker processes with threads) on a free port."""
    import os
    import socket
    import subprocess

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
                raise RuntimeError("the web server did not start listening within 60 s")
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="requests in the history (100,000: about 1.2M events)")
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sqlite", action="store_true", help="on SQLite (a temporary file) instead of PostgreSQL")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL server to create the database on")
    parser.add_argument("--url", help="reuse the history already in this database (one a --keep run left) instead of loading one")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed) for --url next time")
    parser.add_argument("--calls", type=int, default=2000, help="calls per endpoint in step 5")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads in step 5")
    parser.add_argument("--web-workers", type=int, default=2, help="`entitlements web` worker processes in step 5")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per web worker in step 5")
    args = parser.parse_args(argv)

    databases = Databases(sqlite=args.sqlite, admin_url=args.admin_url, keep=args.keep or bool(args.url))
    work = Path(tempfile.mkdtemp(prefix="bench_audit_"))
    try:
        url = args.url
        if url is None:
            url = databases.create("audit")
            note(f"loading {args.requests:,} requests into {url}")
            describe_load(load_history(url, requests=args.requests, users=args.users, packages=args.packages,
                                       seed=args.seed, days=args.days, loader="copy"))
            if not args.sqlite:
                note(f"VACUUM (ANALYZE) after loading (untimed): {vacuum_analyze(url):.1f} s")
        # one signing key per history, kept beside it, so that a rerun (--url) checks the
        # checkpoints the earlier run signed instead of finding them signed by another key
        key_file = str(Path(tempfile.gettempdir()) / f"bench_audit_{hashlib.sha1(url.encode()).hexdigest()[:12]}.key")
        services = services_for(url, key_file)
        try:
            events = services.read_models.head()
            note(f"the log: {events:,} events")
            note("step 1: the ceiling (read every event in pages, decode its JSON)")
            raw, _ = timed("read+decode (the library's events)", events, lambda: library_ceiling(services))
            rows_rate, _ = timed("read+orjson.loads (rows only, no events made)", events, lambda: ceiling(services))

            note("step 2: audit export of the whole log")
            from entitlements.audit import export_log, verify_live
            from transparency_log.export import verify_export
            from transparency_log.note import Verifier

            signer = services.log_tree.signer
            export_path = work / "log.jsonl"
            export_rate, _ = timed("export", events, lambda: export_log(services.log_tree, signer, export_path))
            note(f"  {export_path.stat().st_size / 1e6:,.0f} MB")

            note("step 3: offline verification of the export")
            verify_rate, report = timed("verify", events, lambda: verify_export(str(export_path), signer.verifier_key))
            note(f"  {report}")

            note("step 4: the log's tree from empty, then the live database verified")
            services.log_tree.reset()
            with services.store.transaction() as tx:  # a benchmark's history: earlier runs' checkpoints go too
                tx.execute("DELETE FROM log_checkpoints")
            tree_rate, _ = timed("tree append", events, services.log_tree.append_new)
            services.log_tree.record(force=True)
            live_rate, live = timed("live verify", events, lambda: verify_live(services.log_tree, Verifier.from_text(signer.verifier_key)))
            note(f"  {live.message}")

            note("step 5: /audit/access and /audit/requests/{id}/explain")
            started = time.perf_counter()
            services.read_models.projector_for(["facts", "directory", "access_history"]).catch_up()
            note(f"  facts, directory and access_history projected to the head in {time.perf_counter() - started:.0f} s")
            if not args.sqlite:
                note(f"  VACUUM (ANALYZE) after projecting (untimed; autovacuum would): {vacuum_analyze(url):.1f} s")
            with services.store.transaction(write=False) as tx:
                auditor = tx.fetchone("SELECT user_id FROM directory_users WHERE data LIKE ? LIMIT 1", ('%"auditor"%',))[0]
                packages = [row[0] for row in tx.fetchall("SELECT DISTINCT access_package_id FROM access_periods")]
                users = [row[0] for row in tx.fetchall("SELECT DISTINCT user_id FROM access_periods")]
                first, last = tx.fetchone("SELECT MIN(granted_at), MAX(granted_at) FROM access_periods")
                request_ids = [row[0] for row in tx.fetchall("SELECT request_id FROM facts_requests ORDER BY request_id LIMIT 20000")]
            token = services.tokens.create(auditor, now=services.app.clock.now())
            from web.app import create_app

            app = create_app(services, project_inline=True)
            rng = random.Random(args.seed)
            start = datetime.fromisoformat(first.replace("Z", "+00:00"))
            span = (datetime.fromisoformat(last.replace("Z", "+00:00")) - start).total_seconds()

            def instant() -> str:
                return quote((start + timedelta(seconds=rng.uniform(0, span))).isoformat())

            access_paths = [
                f"/audit/access?access_package_id={rng.choice(packages)}&at={instant()}" if i % 2 == 0
                else f"/audit/access?user_id={rng.choice(users)}&at={instant()}"
                for i in range(args.calls)
            ]
            explain_paths = [f"/audit/requests/{rng.choice(request_ids)}/explain" for _ in range(args.calls)]
            load_calls(app, token, access_paths[:50] + explain_paths[:50], 1)  # warm caches and connections
            access = load_calls(app, token, access_paths, args.clients)
            explain = load_calls(app, token, explain_paths, args.clients)
            single = load_calls(app, token, access_paths[: max(1, args.calls // 4)], 1)
            note(f"  in-process: access p99 {access['p99']:.1f} ms with {args.clients} threads, {single['p99']:.1f} ms alone")
            note(f"  the same through `entitlements web` ({args.web_workers} workers x {args.server_threads} threads) and HTTP")
            server, port = web_server(url, key_file, args.web_workers, args.server_threads)
            try:
                http_calls(port, token, access_paths[:100] + explain_paths[:100], 2)  # warm up every worker
                over_http = {
                    "/audit/access": http_calls(port, token, access_paths, args.clients),
                    "/audit/requests/{id}/explain": http_calls(port, token, explain_paths, args.clients),
                }
            finally:
                server.terminate()
                server.wait(timeout=10)
        finally:
            services.close()
    finally:
        databases.drop_all()

    def ratio(rate: float) -> str:
        verdict = "met" if rate >= raw / 2 else "MISSED"
        return f"{rate / raw:.2f}x (target 0.5x: {verdict}) | {rate / rows_rate:.2f}x"

    print()
    print(f"audit benchmark on {'SQLite' if args.sqlite else 'PostgreSQL'}, {events:,} events")
    print("| step | events/s | against the library's read+decode | against reading rows + orjson only |")
    print("| --- | --- | --- | --- |")
    print(f"| read+decode by the library (the ceiling) | {raw:,.0f} | 1.00x | {raw / rows_rate:.2f}x |")
    print(f"| read rows + orjson.loads | {rows_rate:,.0f} | {rows_rate / raw:.2f}x | 1.00x |")
    print(f"| audit export | {export_rate:,.0f} | {ratio(export_rate)} |")
    print(f"| audit verify (offline) | {verify_rate:,.0f} | {ratio(verify_rate)} |")
    print(f"| the log's tree from empty | {tree_rate:,.0f} | {tree_rate / raw:.2f}x | {tree_rate / rows_rate:.2f}x |")
    print(f"| live verify | {live_rate:,.0f} | {live_rate / raw:.2f}x | {live_rate / rows_rate:.2f}x |")
    print()
    print(f"{args.clients} client threads, {args.calls} calls each endpoint (in-process test clients: server time, GIL included)")
    print("| endpoint | p50 ms | p99 ms | max ms | calls/s | failures |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, figures in (("/audit/access", access), ("/audit/requests/{id}/explain", explain)):
        print(f"| {label} | {figures['p50']:.1f} | {figures['p99']:.1f} | {figures['max']:.1f} | {figures['per_second']:,.0f} | {len(figures['failures'])} |")
    print(f"| /audit/access, 1 thread | {single['p50']:.1f} | {single['p99']:.1f} | {single['max']:.1f} | {single['per_second']:,.0f} | {len(single['failures'])} |")
    print()
    print(f"{args.clients} HTTP clients against `entitlements web` ({args.web_workers} workers x {args.server_threads} threads), time seen by the client")
    print("| endpoint | p50 ms | p99 ms | max ms | calls/s | failures |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, figures in over_http.items():
        print(f"| {label} | {figures['p50']:.1f} | {figures['p99']:.1f} | {figures['max']:.1f} | {figures['per_second']:,.0f} | {len(figures['failures'])} |")
    print(f"/audit/access p99 target 20 ms: {'met' if over_http['/audit/access']['p99'] < 20 else 'MISSED'} over HTTP,"
          f" {'met' if access['p99'] < 20 else 'MISSED'} in-process with {args.clients} threads")
    for figures in (access, explain, *over_http.values()):
        for failure in figures["failures"][:3]:
            print(f"  failed: {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
