"""Portal benchmark: the Approvals page (Pending tab, first page) of an approver with 1,000 pending
requests, in a history of 100,000 requests, server time.

Run it through ``scripts/bench_portal`` (``--help`` lists the options). It builds (or, with
``--url``, reuses) ``scripts/bench_readmodels``' synthetic history, then adds ``--pending``
requests awaiting one approver (``bench-approver``, a user of its own, approving two packages of
their own that every user of the tenant may request), projects the read models the page reads
(pending, directory; not the others: the embedded mode's pages, which bring every read model
up to date first, are left out, as a projection of the whole history would be timed with them),
and signs the approver in with a one-time link. Then, in this process, one
Flask test client calls (each call's wall time is the server time: no network, no client):

- ``GET /approvals`` (the page: session and person read, the pending page, the people's names,
  the template) with the app as ``entitlements web`` runs it (a projector beside it);
- ``GET /api/v1/approvals/pending`` (the same read model through the JSON API);
- the ceiling: ``read_models.pending(limit=50)`` alone (the read model's query, no web layer),
  and ``GET /healthz`` (the web stack alone).

Target (the issue): the page's p99 under 50 ms. The figures are printed beside it, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_readmodels import DEFAULT_ADMIN_URL, Databases, load_history, note  # noqa: E402

TARGET_P99_MS = 50.0
APPROVER = "bench-approver"
PACKAGES = ("bench-pending-1", "bench-pending-2")


def services_for(url: str, work: Path):
    from entitlements.bootstrap import build_services
    from entitlements.settings import Settings

    return build_services(
        Settings(database_url=url, audit_key_file=str(work / "audit.key"), secret_key_file=str(work / "session.key"))
    )


def add_pending(services, count: int) -> int:
    """``count`` requests awaiting ``APPROVER``, by the tenant's users in turn (one open request per
    user and package); answers how many there are now (a reused history may have them already)."""
    from entitlements.tenant import load_tenant_data

    users = [row[0] for row in _directory(services)]
    if len(users) * len(PACKAGES) < count:
        raise SystemExit(f"{len(users)} users can have at most {len(users) * len(PACKAGES)} open requests on {len(PACKAGES)} packages")
    data = {
        "users": [{"id": APPROVER, "display_name": "Bench Approver", "email": "bench-approver@contoso.example"}],
        "catalogs": [{"id": "bench-pending", "name": "Benchmark"}],
        "access_packages": [
            {"id": p, "catalog": "bench-pending", "name": f"Pending {n}", "resources": [{"id": f"{p}-group", "kind": "group"}]}
            for n, p in enumerate(PACKAGES, 1)
        ],
        "policies": [
            {"id": f"{p}-policy", "access_package": p, "requestors": {"scope": "all_members"},
             "approval": {"required": True, "stages": [{"approvers": [{"user": APPROVER}], "timeout": "P3650D"}]}}
            for p in PACKAGES
        ],
    }
    load_tenant_data(services.app, data, source="<bench_portal>", actor="bench")
    waiting = pending_count(services)
    started, made = time.perf_counter(), 0
    for index in range(count - waiting):
        user = users[(waiting + index) % len(users)]
        package = PACKAGES[(waiting + index) // len(users)]
        services.app.submit_request(requestor_id=user, access_package_id=package)
        made += 1
        if made % 200 == 0:
            note(f"  submitted {made:,} of {count - waiting:,} requests for {APPROVER}")
    if made:
        note(f"  submitted {made:,} requests in {time.perf_counter() - started:.1f} s")
    return count


def _directory(services) -> list[tuple]:
    with services.store.transaction(write=False) as tx:
        return tx.fetchall("SELECT user_id FROM directory_users WHERE user_id <> ? ORDER BY user_id", (APPROVER,))


def pending_count(services) -> int:
    with services.store.transaction(write=False) as tx:
        return tx.fetchone("SELECT COUNT(*) FROM pending_approvals WHERE approver_id = ?", (APPROVER,))[0]


def project(services, names: list[str]) -> None:
    projector = services.read_models.projector_for(names)
    head = services.read_models.head()
    started = time.perf_counter()
    while projector.run_once():
        pass
    note(f"  projected {', '.join(names)} to {head:,} in {time.perf_counter() - started:.1f} s")


def signed_in_client(app, services):
    import re

    from entitlements.sign_in import LINK_PATH

    client = app.test_client()
    secret, _ = services.sign_in.issue_link(APPROVER)
    page = client.get(LINK_PATH + secret)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(LINK_PATH + secret, data={"csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"signing in failed: {response.status_code}")
    return client


def timed_calls(call, calls: int) -> dict:
    for _ in range(min(50, calls)):  # warm: prepared statements, template cache
        call()
    times = []
    started = time.perf_counter()
    for _ in range(calls):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    wall = time.perf_counter() - started
    times.sort()
    return {
        "p50": statistics.median(times),
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max": times[-1],
        "per_s": calls / wall,
    }


def checked(client, path: str, expect: int = 200, **kwargs):
    def call():
        response = client.get(path, **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
        return response

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests in the synthetic history")
    parser.add_argument("--pending", type=int, default=1000, help="requests awaiting the benchmark's approver")
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--packages", type=int, default=50)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000, help="calls per row")
    parser.add_argument("--sqlite", action="store_true", help="on SQLite (a temporary file under /tmp) instead of PostgreSQL")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--url", help="reuse the history in this database instead of loading one; never dropped")
    parser.add_argument("--keep", action="store_true", help="keep the database it creates (its URL is printed)")
    args = parser.parse_args(argv)

    from web.app import create_app

    databases = Databases(sqlite=args.sqlite, admin_url=args.admin_url, keep=args.keep)
    work = Path(tempfile.mkdtemp(prefix="bench_portal_"))
    try:
        url = args.url
        if url is None:
            url = databases.create("portal")
            note(f"loading {args.requests:,} requests into {url}")
            load_history(url, requests=args.requests, users=args.users, packages=args.packages, seed=args.seed,
                         days=args.days, loader="copy")
        services = services_for(url, work)
        try:
            project(services, ["directory", "pending"])
            add_pending(services, args.pending)
            project(services, ["directory", "pending"])
            waiting, head = pending_count(services), services.read_models.head()
            note(f"{APPROVER} has {waiting:,} pending requests; the log has {head:,} events")
            scale_out = create_app(services, project_inline=False)
            api_token = services.tokens.create(APPROVER, now=services.app.clock.now())
            page_client = signed_in_client(scale_out, services)
            api_client = scale_out.test_client()
            first = page_client.get("/approvals")
            rows = first.get_data(as_text=True).count("<tr>") - 1
            note(f"the page: {len(first.data):,} bytes, {rows} rows, next page link: {'Next page' in first.get_data(as_text=True)}")
            gc.collect()
            gc.freeze()
            results = [
                ("/approvals (Pending), as `entitlements web` serves it", timed_calls(checked(page_client, "/approvals"), args.calls), True),
                ("/api/v1/approvals/pending (the JSON API)", timed_calls(
                    checked(api_client, "/api/v1/approvals/pending", headers={"Authorization": f"Bearer {api_token}"}), args.calls), False),
                ("ceiling: read_models.pending(limit=50) alone", timed_calls(
                    lambda: services.read_models.pending(APPROVER, limit=50), args.calls), False),
                ("ceiling: /api/v1/healthz (the web stack alone)", timed_calls(checked(api_client, "/api/v1/healthz"), args.calls), False),
            ]
        finally:
            services.close()
        backend = "sqlite" if url.startswith("sqlite") else "postgresql"
        print()
        origin = f"the history of {args.url} (reused)" if args.url else f"{args.requests:,} synthetic requests"
        print(f"Portal benchmark ({backend}): {head:,} log events, {origin}, {waiting:,} pending for one approver")
        print(f"machine: {os.cpu_count()} cores, load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("-" * 118)
        print(f"{'call (one client, in-process: server time)':<62}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'calls/s':>10}   target p99")
        for label, figures, targeted in results:
            verdict = ""
            if targeted:
                verdict = f"< {TARGET_P99_MS:g} ms  " + ("met" if figures["p99"] < TARGET_P99_MS else "MISSED")
            print(f"{label:<62}{figures['p50']:>9.1f}{figures['p99']:>9.1f}{figures['max']:>9.1f}{figures['per_s']:>10,.0f}   {verdict}")
        print("-" * 118)
        return 0
    finally:
        databases.drop_all()


if __name__ == "__main__":
    sys.exit(main())
