"""Logs written before the input limits (domain/limits.py) are history and cannot be rewritten:
every read model projects them to the head, on SQLite and on PostgreSQL.

The events are built with the aggregates' own classes and saved through the event store, without
the checks commands now make: a requested start in year 1 (before year 1 once in UTC), a requested
end or a start of access in year 9999 pushed past it by its timezone, an end of access in year 1,
and a NUL in a justification (which PostgreSQL's text columns cannot hold).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.access_request import SYSTEM, USER_ADD, AccessRequest
from domain.assignment import Assignment
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant
from projections.store import NUL_ESCAPE

TENANT = Path(__file__).parent.parent / "data" / "notifications.yaml"
YEAR_ONE = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))  # before 0001-01-01 in UTC
YEAR_10000 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))  # 10000-01-01 in UTC
JUSTIFICATION = "on\x00call"


@pytest.fixture
def services(database_url, clock):
    built = build_services(Settings(database_url=database_url, base_url="https://access.contoso.example"), clock=clock)
    load_tenant(built.app, TENANT)
    yield built
    built.close()


def old_request(app, *, user: str, package: str, stages: bool, **fields) -> tuple[AccessRequest, Assignment]:
    """A ``Submitted`` request (and its assignment's claim) as an old version recorded it."""
    now = app.clock.now()
    access_package = app.access_package(package)
    policy = app.policies_of(access_package)[0]
    person = app.user(user)
    assignment = Assignment.create(user_id=user, access_package_id=package, actor=user, now=now)
    request = AccessRequest._create(
        AccessRequest.Submitted,
        request_type=USER_ADD,
        requestor_id=user,
        target_user_id=user,
        access_package_id=package,
        catalog_id=access_package.catalog_id,
        policy_id=policy.key,
        policy_version=policy.version,
        assignment_id=str(assignment.id),
        justification=fields.get("justification"),
        questions=[],
        answers={},
        start=fields.get("start"),
        end=fields.get("end"),
        stages=app._resolve_stages(policy, requestor=person, target=person) if stages else [],
        notifications_enabled=True,
        actor=user,
        timestamp=now,
    )
    assignment.open_request(request_id=str(request.id), request_type=USER_ADD, actor=user, now=now)
    if stages:
        request._start_stage(1, actor=user, now=now)
    return request, assignment


def old_grant(app, *, user: str, package: str, start: datetime, end: datetime | None) -> None:
    """Access granted (``Delivering``) from ``start`` to ``end``, as an old version recorded it."""
    now = app.clock.now()
    request, assignment = old_request(app, user=user, package=package, stages=False)
    request.trigger_event(AccessRequest.Approved, stage=0, actor=SYSTEM, timestamp=now)
    assignment.close_request(request_id=str(request.id), outcome="approved", actor=SYSTEM, now=now)
    policy = app.policy(request.policy_id)
    assignment.start_delivery(
        request_id=str(request.id),
        policy_id=policy.key,
        policy_version=policy.version,
        resources=app.access_package(package).resources,
        start=start,
        end=end,
        expiration=policy.expiration,
        extension={"allowed": True, "approval_required": False, "reminder_before": "P7D"},
        actor=SYSTEM,
        now=now,
    )
    app.save(request, assignment)


def outbox_text(services, number: int, recipient: str) -> str:
    with services.store.transaction(write=False) as tx:
        row = tx.fetchone("SELECT text_body FROM outbox WHERE number = ? AND recipient_id = ?", (number, recipient))
    assert row is not None, f"no email #{number} to {recipient}"
    return row[0]


def test_every_read_model_projects_an_old_log_with_unrepresentable_times_and_nul_to_the_head(services):
    app = services.app
    request, assignment = old_request(
        app, user="rita", package="wiki", stages=True, justification=JUSTIFICATION, start=YEAR_ONE, end=YEAR_10000
    )
    app.save(request, assignment)
    old_grant(app, user="rita", package="vault", start=YEAR_10000, end=None)  # a delayed start past 9999
    old_grant(app, user="rita", package="lonely", start=app.clock.now(), end=YEAR_ONE)  # an end before year 1

    services.read_models.catch_up()

    head = services.read_models.head()
    assert services.read_models.positions() == {name: head for name in services.read_models.positions()}
    details = services.read_models.request(str(request.id))
    assert (details["start"], details["end"], details["justification"]) == (
        YEAR_ONE.isoformat(), YEAR_10000.isoformat(), JUSTIFICATION
    )


def test_the_approvers_email_shows_an_unrepresentable_date_as_given(services):
    app = services.app
    request, assignment = old_request(
        app, user="rita", package="wiki", stages=True, justification=JUSTIFICATION, start=YEAR_ONE, end=YEAR_10000
    )
    app.save(request, assignment)

    services.read_models.catch_up()

    text = outbox_text(services, 2, "amy")
    assert "0001-01-01T00:00:00+14:00" in text and "9999-12-31T23:59:59-12:00" in text
    shown_nul = NUL_ESCAPE if services.store.backend == "postgresql" else "\x00"
    assert f"on{shown_nul}call" in text


def test_an_old_request_with_unrepresentable_times_can_still_be_decided_and_its_emails_written(services):
    app = services.app
    request, assignment = old_request(
        app, user="rita", package="wiki", stages=True, justification=JUSTIFICATION, start=YEAR_ONE, end=YEAR_10000
    )
    app.save(request, assignment)

    receipt = app.decide(request_id=str(request.id), approver_id="amy", decision="approve")
    services.read_models.catch_up()

    assert receipt.state == "delivered"
    assert "0001-01-01T00:00:00+14:00" in outbox_text(services, 7, "bob")
    head = services.read_models.head()
    assert set(services.read_models.positions().values()) == {head}


def test_deadlines_of_old_access_past_9999_or_before_year_one_are_the_last_or_first_moment(services):
    app = services.app
    old_grant(app, user="rita", package="vault", start=YEAR_10000, end=None)
    old_grant(app, user="rita", package="lonely", start=app.clock.now(), end=YEAR_ONE)

    services.read_models.catch_up()

    due = {(kind, due_at) for _, kind, _, _, due_at in services.read_models.dump("deadlines")}
    assert ("access_start", "9999-12-31T23:59:59.999999Z") in due
    assert ("access_expiry", "0001-01-01T00:00:00.000000Z") in due
    assert ("access_expiry_reminder", "0001-01-01T00:00:00.000000Z") in due


def test_a_nul_of_the_log_reaches_every_read_model_shown_as_u_fffd_on_postgresql(services):
    app = services.app
    request, assignment = old_request(app, user="rita", package="wiki", stages=True, justification=JUSTIFICATION)
    app.save(request, assignment)

    services.read_models.catch_up()

    head = services.read_models.head()
    assert set(services.read_models.positions().values()) == {head}
    shown_nul = NUL_ESCAPE if services.store.backend == "postgresql" else "\x00"
    assert f"on{shown_nul}call" in outbox_text(services, 2, "amy")
    assert services.read_models.request(str(request.id))["justification"] == JUSTIFICATION  # JSON text: \u0000


def test_an_old_log_with_unrepresentable_times_and_nul_exports_and_verifies(services, tmp_path):
    from entitlements.audit import export_log
    from transparency_log.export import verify_export
    from transparency_log.note import Signer, generate_signer

    app = services.app
    request, assignment = old_request(
        app, user="rita", package="wiki", stages=True, justification=JUSTIFICATION, start=YEAR_ONE, end=YEAR_10000
    )
    app.save(request, assignment)
    signer = Signer.from_text(generate_signer("example.test/audit"))
    result = export_log(services.log_tree, signer, tmp_path / "log.jsonl")
    assert result.events == services.read_models.head()
    report = verify_export(str(tmp_path / "log.jsonl"), signer.verifier_key)
    assert report.exit_code == 0, str(report)
    assert "on\\u0000call" in (tmp_path / "log.jsonl").read_text(encoding="utf-8")
