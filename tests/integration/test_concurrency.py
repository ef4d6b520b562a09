"""First decision wins, and one submission wins, across threads and across processes."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain import errors
from entitlements.tenant import load_tenant_data

APPROVERS = [f"approver{n}" for n in range(8)]
TENANT = {
    "users": [{"id": "requester"}] + [{"id": a} for a in APPROVERS],
    "groups": [{"id": "approvers", "members": APPROVERS}],
    "catalogs": [{"id": "c"}],
    "access_packages": [{"id": "p", "catalog": "c", "resources": [{"id": "g", "kind": "group"}]}],
    "policies": [{
        "id": "pol", "access_package": "p",
        "approval": {"required": True, "stages": [{"approvers": [{"group": "approvers"}], "timeout": "P14D"}]},
    }],
}


def decide_all_at_once(decide, deciders):
    """Runs ``decide(approver)`` for every approver at the same moment; returns {approver: outcome}."""
    barrier = threading.Barrier(len(deciders))

    def one(approver):
        barrier.wait()
        try:
            decide(approver)
            return approver, "won"
        except errors.AlreadyDecided as error:
            return approver, error

    with ThreadPoolExecutor(len(deciders)) as pool:
        return dict(pool.map(one, deciders))


def stage_decisions(app, request_id) -> list[str]:
    return [type(e).__name__ for e in app.events.get(app.request(request_id).id)
            if type(e).__name__ in ("StageApproved", "Denied")]


def test_eight_threads_deciding_at_once_record_exactly_one_decision(app):
    load_tenant_data(app, TENANT)
    receipt = app.submit_request(requestor_id="requester", access_package_id="p")

    outcomes = decide_all_at_once(
        lambda approver: app.decide(request_id=receipt.id, approver_id=approver,
                                    decision="approve" if approver.endswith(("0", "2", "4", "6")) else "deny"),
        APPROVERS,
    )

    winners = [a for a, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1
    losers = [outcome for outcome in outcomes.values() if outcome != "won"]
    assert len(losers) == 7 and all(error.details["decided_by"] == winners[0] for error in losers)
    assert len(stage_decisions(app, receipt.id)) == 1


def test_two_concurrent_submissions_for_the_same_user_and_package_one_wins(app):
    load_tenant_data(app, TENANT)
    barrier = threading.Barrier(2)

    def submit(_):
        barrier.wait()
        try:
            return app.submit_request(requestor_id="requester", access_package_id="p")
        except errors.OpenRequestExists as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(submit, range(2)))

    receipts = [o for o in outcomes if not isinstance(o, Exception)]
    refusals = [o for o in outcomes if isinstance(o, errors.OpenRequestExists)]
    assert len(receipts) == 1 and len(refusals) == 1
    assert refusals[0].details["request_id"] == receipts[0].id
    assert app.find_assignment("requester", "p").open_request_id == receipts[0].id


def _decide_in_process(database_url, now, request_id, approver, barrier, results):
    from domain.clock import ManualClock
    from entitlements.bootstrap import build_application
    from entitlements.settings import Settings

    try:
        app = build_application(Settings(database_url=database_url), clock=ManualClock(now))
        try:
            barrier.wait(timeout=300)
            app.decide(request_id=request_id, approver_id=approver, decision="approve")
            results.put((approver, "won"))
        except errors.AlreadyDecided as error:
            results.put((approver, error.details["decided_by"]))
        finally:
            app.close()
    except BaseException as error:  # report it to the test instead of dying silently
        results.put((approver, f"failed: {error!r}"))
        barrier.abort()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_four_processes_deciding_at_once_record_exactly_one_decision(app, database_url, clock):
    load_tenant_data(app, TENANT)
    receipt = app.submit_request(requestor_id="requester", access_package_id="p")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_decide_in_process, args=(database_url, clock.now(), receipt.id, approver, barrier, results))
        for approver in APPROVERS[:4]
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert not [o for o in outcomes.values() if o.startswith("failed")], outcomes

    winners = [a for a, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1
    assert all(outcome == winners[0] for a, outcome in outcomes.items() if a not in winners)
    assert len(stage_decisions(app, receipt.id)) == 1


GRANTEES = [f"grantee{n}" for n in range(8 * 5)]
OPEN_PACKAGE = {
    "users": [{"id": g} for g in GRANTEES],
    "catalogs": [{"id": "c"}],
    "groups": [{"id": "g", "members": []}],
    "access_packages": [{"id": "open", "catalog": "c", "resources": [{"id": "g", "kind": "group"}]}],
    "policies": [{"id": "open-pol", "access_package": "open", "approval": {"required": False}}],
}


def test_eight_threads_granting_into_one_group_lose_no_grant_and_never_collide(app, monkeypatch):
    load_tenant_data(app, OPEN_PACKAGE)
    conflicts = []
    retrying = app._retrying

    def counting(attempt):
        def once():
            try:
                return attempt()
            except Exception as error:
                conflicts.append(error)
                raise
        return retrying(once)

    monkeypatch.setattr(app, "_retrying", counting)
    barrier = threading.Barrier(8)

    def grant_five(n):
        barrier.wait()
        return [app.submit_request(requestor_id=g, access_package_id="open").state for g in GRANTEES[n::8]]

    with ThreadPoolExecutor(8) as pool:
        states = [state for states in pool.map(grant_five, range(8)) for state in states]

    assert states == ["delivered"] * len(GRANTEES)
    assert app.group_members("g") == sorted(GRANTEES)
    assert conflicts == []  # each grant wrote its own member's aggregates: nobody waited for anybody
