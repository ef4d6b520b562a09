"""A log written by commit b013bad, which recorded grants on the ``Group`` aggregate itself
(``tests/data/legacy/write_group_log.py`` wrote it), keeps its meaning on SQLite and PostgreSQL:
its members are members, at the moments they were, and withdrawing access granted then is
recorded on the member's own ``Membership`` aggregate."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.assignment_policy import AssignmentPolicy
from domain.clock import ManualClock
from domain.membership import Membership
from entitlements.bootstrap import build_services
from entitlements.settings import Settings

LOG = Path(__file__).parent.parent / "data" / "legacy" / "group-log-b013bad.sqlite"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the writer's clock (tests/unit/builders.py START)
DAY = timedelta(days=1)


def copy_log(app) -> None:
    """Every stored event of the old log, in log order, into ``app``'s (empty) store."""
    with sqlite3.connect(f"file:{LOG}?mode=ro", uri=True) as source:
        rows = source.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        ).fetchall()
    app.recorder.insert_events(
        [StoredEvent(originator_id=UUID(oid), originator_version=v, topic=t, state=s) for oid, v, t, s in rows]
    )


@pytest.fixture
def services(database_url):
    clock = ManualClock(START + 10 * DAY)
    built = build_services(Settings(database_url=database_url), clock=clock)
    copy_log(built.app)
    yield built
    built.close()


def test_members_granted_on_the_group_by_an_old_log_are_members(services):
    app = services.app

    assert app.group_members("share") == ["alice"]
    assert app.group_members("approvers") == ["bob", "carol", "dave"]
    assert app.is_member("share", "alice") and not app.is_member("share", "frank")


def test_members_of_an_old_log_at_earlier_moments_are_the_members_then(services):
    app = services.app

    assert app.group_members("share", at=START - DAY) == []
    assert app.group_members("share", at=START + DAY + timedelta(hours=12)) == ["alice", "frank"]
    assert app.group_members("share", at=START + 3 * DAY + timedelta(hours=12)) == ["alice"]
    assert app.group_members("approvers", at=START + 3 * DAY) == ["bob", "carol"]


def test_withdrawing_access_granted_by_an_old_log_is_recorded_on_the_members_membership(services):
    app = services.app
    pkg = app.find_assignment("alice", "pkg")
    wiki = app.find_assignment("alice", "wiki")

    app.revoke_approval(request_id=pkg.request_id, approver_id="bob", reason="moved teams")

    membership = app.find(Membership, Membership.id_for("share", "alice"))
    assert [type(e).__name__ for e in app.events.get(membership.id)] == ["Created", "Withdrawn"]
    assert membership.sources == [str(wiki.id)]
    assert app.group_members("share") == ["alice"]  # still through wiki
    app.remove_access(assignment_id=wiki.id, admin_id="ada", reason="left")
    assert app.group_members("share") == []


def test_access_granted_after_an_old_log_adds_to_its_members(services):
    app = services.app

    app.submit_request(requestor_id="frank", access_package_id="wiki")

    assert app.group_members("share") == ["alice", "frank"]


def test_members_granted_by_an_old_log_are_resolved_as_group_approvers(services):
    app = services.app
    policy = app.policy("pol")
    settings = {**policy.settings, "approval": {"required": True, "stages": [
        {"approvers": [{"group": "approvers"}], "timeout": "P14D"}]}}
    app.configure([(AssignmentPolicy, "pol", settings)], actor="loader")

    receipt = app.submit_request(requestor_id="erin", access_package_id="pkg")

    assert app.request(receipt.id).stages[0]["approvers"] == ["bob", "carol", "dave"]
