"""The read models, projected from the log on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from projections.paging import InvalidCursor

APPROVALS = Path(__file__).parent.parent / "data" / "approvals.yaml"


@pytest.fixture
def services(database_url, clock):
    opened = []

    def open_():
        built = build_services(Settings(database_url=database_url), clock=clock)
        opened.append(built)
        return built

    first = open_()
    load_tenant(first.app, APPROVALS)
    first.open = open_
    yield first
    for built in opened:
        built.close()


@pytest.fixture
def app(services):
    return services.app


@pytest.fixture
def views(services):
    return services.read_models


def pending_ids(views, user):
    views.catch_up()
    return [item["request_id"] for item in views.pending(user, limit=50).items]


def history_of(views, user):
    views.catch_up()
    return {(item["request_id"], item["stage"]): item for item in views.history(user, limit=50).items}


def submit(app, package="wiki", requestor="rita"):
    return app.submit_request(requestor_id=requestor, access_package_id=package)


def test_submitted_request_is_pending_for_every_approver_of_the_stage(app, views):
    request = submit(app)
    assert pending_ids(views, "amy") == [request.id]
    assert pending_ids(views, "bob") == [request.id]
    assert pending_ids(views, "eve") == []  # alternate: only once escalated


def test_request_leaves_every_pending_list_when_one_approver_decides(app, views):
    request = submit(app)
    views.catch_up()
    app.decide(request_id=request.id, approver_id="amy", decision="approve", reason="needed for the launch")
    assert pending_ids(views, "amy") == [] and pending_ids(views, "bob") == []


def test_every_approver_of_the_stage_sees_the_decision_and_who_made_it(app, views):
    request = submit(app)
    app.decide(request_id=request.id, approver_id="amy", decision="deny", reason="not in this team")
    for approver in ("amy", "bob"):
        item = history_of(views, approver)[(request.id, 1)]
        assert (item["decision"], item["decided_by"], item["reason"]) == ("denied", "amy", "not in this team")
        assert item["state"] == "denied" and item["decided_at"]


def test_history_state_follows_the_access_that_was_delivered(app, views):
    request = submit(app)
    app.decide(request_id=request.id, approver_id="bob", decision="approve")
    item = history_of(views, "amy")[(request.id, 1)]
    assert (item["decision"], item["decided_by"], item["state"]) == ("approved", "bob", "delivered")


def test_escalated_stage_is_pending_for_its_alternate_approvers_too(app, views, clock):
    request = submit(app)
    clock.advance(timedelta(days=3))
    app.escalate(request.id)
    assert pending_ids(views, "eve") == [request.id]
    assert pending_ids(views, "amy") == [request.id]


def test_second_stage_moves_the_request_to_the_next_approvers(app, views):
    request = submit(app, package="vault")
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    assert pending_ids(views, "amy") == [] and pending_ids(views, "bob") == []
    assert pending_ids(views, "cyd") == [request.id] and pending_ids(views, "dee") == [request.id]
    item = history_of(views, "bob")[(request.id, 1)]
    assert (item["decision"], item["decided_by"], item["state"], item["current_stage"]) == (
        "approved", "amy", "pending_approval", 2,
    )


def test_expired_request_leaves_pending_and_shows_as_expired_in_history(app, views, clock):
    request = submit(app)
    views.catch_up()
    clock.advance(timedelta(days=14))
    app.expire_request(request.id)
    assert pending_ids(views, "amy") == []
    item = history_of(views, "amy")[(request.id, 1)]
    assert (item["decision"], item["decided_by"], item["state"]) == ("expired", None, "expired")


def test_cancelled_request_leaves_pending_and_shows_as_cancelled_in_history(app, views):
    request = submit(app)
    views.catch_up()
    app.cancel_request(request_id=request.id, actor_id="rita", reason="asked by mistake")
    assert pending_ids(views, "bob") == []
    item = history_of(views, "bob")[(request.id, 1)]
    assert (item["decision"], item["decided_by"], item["reason"]) == ("cancelled", "rita", "asked by mistake")


def test_revoked_approval_shows_as_revoked_with_who_and_why(app, views):
    request = submit(app)
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    app.revoke_approval(request_id=request.id, approver_id="amy", reason="left the team")
    item = history_of(views, "bob")[(request.id, 1)]
    assert (item["decision"], item["decided_by"], item["reason"], item["state"]) == (
        "revoked", "amy", "left the team", "revoked",
    )
    assert (item["stage_decision"], item["stage_decided_by"]) == ("approved", "amy")


def test_request_details_show_each_stage_with_its_approvers_and_decision(app, views):
    request = submit(app, package="vault")
    app.decide(request_id=request.id, approver_id="bob", decision="approve", reason="fine")
    views.catch_up()
    details = views.request(request.id)
    assert details["state"] == "pending_approval" and details["current_stage"] == 2
    assert details["access_package_name"] == "Secrets vault"
    first, second = details["stages"]
    assert (first["state"], first["decided_by"], first["reason"], first["approvers"]) == ("approved", "bob", "fine", ["amy", "bob"])
    assert (second["state"], second["approvers"], second["decision"]) == ("pending", ["cyd", "dee"], None)
    assert details["expires_at"] == second["deadline"]


def test_unknown_request_has_no_details(views):
    views.catch_up()
    assert views.request("00000000-0000-0000-0000-000000000000") is None


def test_my_requests_are_newest_first_and_include_those_made_for_me(app, views):
    first = submit(app, package="wiki")
    second = app.submit_request(requestor_id="mona", target_user_id="rita", access_package_id="vault")
    views.catch_up()
    assert [i["request_id"] for i in views.requests_of("rita", limit=10).items] == [second.id, first.id]
    assert [i["request_id"] for i in views.requests_of("mona", limit=10).items] == [second.id]


def test_my_assignments_show_the_access_with_its_start_and_end(app, views, clock):
    request = submit(app)
    app.decide(request_id=request.id, approver_id="amy", decision="approve")
    views.catch_up()
    (item,) = views.assignments_of("rita", limit=10).items
    assert (item["access_package_id"], item["access_package_name"], item["state"], item["request_id"]) == (
        "wiki", "Team wiki", "delivered", request.id,
    )
    assert item["start"].startswith(clock.now().date().isoformat())
    assert item["end"].startswith((clock.now() + timedelta(days=30)).date().isoformat())


def test_deadlines_list_the_stage_timers_and_then_the_access_timers(app, views, clock):
    request = submit(app)
    views.catch_up()
    due = views.due_deadlines(clock.now() + timedelta(days=365))
    assert [(d["kind"], d["subject_id"]) for d in due] == [
        ("request_escalation", request.id), ("request_reminder", request.id), ("request_expiry", request.id),
    ]
    assert views.due_deadlines(clock.now() + timedelta(days=2)) == []
    receipt = app.decide(request_id=request.id, approver_id="amy", decision="approve")
    views.catch_up()
    assignment_id = app.request(receipt.id).assignment_id
    kinds = [(d["kind"], d["subject_id"]) for d in views.due_deadlines(clock.now() + timedelta(days=365))]
    assert kinds == [("access_expiry_reminder", assignment_id), ("access_expiry", assignment_id)]


def test_lists_page_through_every_item_once_with_a_cursor(app, views):
    users = [f"u{n}" for n in range(7)]
    from entitlements.tenant import load_tenant_data

    load_tenant_data(app, {"users": [{"id": u, "manager": "mona"} for u in users]})
    ids = {submit(app, requestor=user).id for user in users}
    views.catch_up()
    seen, cursor = [], None
    while True:
        page = views.pending("amy", limit=3, cursor=cursor)
        seen += [item["request_id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == ids


def test_a_cursor_not_given_by_the_api_is_refused(views):
    with pytest.raises(InvalidCursor):
        views.pending("amy", limit=3, cursor="not-a-cursor")


def varied_history(app, clock):
    """Approved (one and two stages), escalated, denied, cancelled and still pending requests."""
    for package in ("wiki", "vault"):
        request = submit(app, package=package)
        app.decide(request_id=request.id, approver_id="amy", decision="approve")
    waiting = submit(app, package="wiki", requestor="mona")
    denied = submit(app, package="vault", requestor="uma")
    app.decide(request_id=denied.id, approver_id="bob", decision="deny", reason="no")
    clock.advance(timedelta(days=3))
    app.escalate(waiting.id)
    cancelled = submit(app, package="wiki", requestor="uma")
    app.cancel_request(request_id=cancelled.id, actor_id="uma")
    submit(app, package="vault", requestor="mona")


def test_rebuilding_twice_gives_identical_views(app, views, clock):
    varied_history(app, clock)
    views.catch_up()
    live = {name: views.dump(name) for name in views.models}
    views.rebuild()
    first = {name: views.dump(name) for name in views.models}
    views.rebuild()
    second = {name: views.dump(name) for name in views.models}
    assert first == second == live
    assert all(first[name] for name in views.models)


def test_rebuilding_one_read_model_leaves_the_others_alone(app, views):
    submit(app)
    views.catch_up()
    before = views.dump("history"), views.positions()["history"]
    result = views.rebuild(["pending"])
    assert result.names == ["pending"] and result.events == views.head()
    assert (views.dump("history"), views.positions()["history"]) == before


@pytest.mark.parametrize("name", ["pending", "history", "requests", "assignments", "deadlines"])
def test_a_read_model_rebuilt_alone_from_facts_at_the_head_gets_the_rows_of_the_live_projection(
    app, views, clock, name
):
    varied_history(app, clock)
    views.catch_up()
    live = {model: views.dump(model) for model in views.models}
    views.batch_size = 2  # facts far ahead of each batch
    result = views.rebuild([name])
    assert result.events == views.head() and views.positions()[name] == views.head()
    assert {model: views.dump(model) for model in views.models} == live


def test_rebuilding_the_facts_alone_leaves_the_read_models_derived_from_them_alone(app, views, clock):
    varied_history(app, clock)
    views.catch_up()
    live = {model: views.dump(model) for model in views.models}
    positions = views.positions()
    views.rebuild(["facts"])
    assert views.positions() == positions
    assert {model: views.dump(model) for model in views.models} == live


def test_a_read_model_never_runs_ahead_of_the_facts_it_reads(services, app, views, clock):
    varied_history(app, clock)
    views.catch_up()
    live = {model: views.dump(model) for model in views.models}
    views.projector.reset()
    services.read_models.projector_for(["history"]).run_once()  # the facts are projected first
    positions = views.positions()
    assert positions["facts"] >= positions["history"] > 0
    views.catch_up()
    assert {model: views.dump(model) for model in views.models} == live


def test_small_batches_give_the_same_views_as_one_big_batch(services, app, views):
    for user in ("rita", "mona"):
        request = submit(app, requestor=user)
        app.decide(request_id=request.id, approver_id="bob", decision="approve")
    views.catch_up()
    expected = {name: views.dump(name) for name in views.models}
    small = services.open()
    small.read_models.batch_size = 3
    small.read_models.projector.batch_size = 3
    result = small.read_models.rebuild()
    assert result.events == views.head()
    assert {name: small.read_models.dump(name) for name in views.models} == expected


def test_two_projectors_on_one_database_apply_each_event_once(services, app, views):
    for user in ("rita", "mona", "uma"):
        submit(app, requestor=user)
    views.catch_up()
    expected = {name: views.dump(name) for name in views.models}
    views.projector.reset()
    other = services.open().read_models
    for projector in (views.projector, other.projector):
        projector.batch_size = 2
    threads = [threading.Thread(target=rm.catch_up) for rm in (views, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    views.catch_up()
    assert {name: views.dump(name) for name in views.models} == expected


def test_following_projects_new_events_without_being_asked(app, views):
    stop = threading.Event()
    follower = threading.Thread(target=views.projector.follow, args=(stop,), kwargs={"interval": 0.05})
    follower.start()
    try:
        receipt = submit(app)
        views.projector.wake()
        assert views.wait_for(receipt.position, timeout=10)
        assert [i["request_id"] for i in views.pending("amy", limit=5).items] == [receipt.id]
    finally:
        stop.set()
        views.projector.wake()
        follower.join()


def test_directory_knows_users_and_their_roles(views):
    views.catch_up()
    assert views.user("aud")["roles"] == ["auditor"]
    assert views.user("nobody") is None


def test_catching_up_collects_garbage_less_often_and_restores_the_threshold(views):
    import gc

    from projections.engine import fewer_collections

    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] > before[0]
    assert gc.get_threshold() == before
