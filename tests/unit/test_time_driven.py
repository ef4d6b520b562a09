"""Deadlines of pending requests: expiry at the request timeout, escalation to alternate approvers,
and reminders to undecided approvers. Time moves only through the manual clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import START, escalation, stage
from domain import errors

DAY = timedelta(days=1)


def escalating(**overrides):
    """One stage: bob, 14 days, reminder after 7 days, escalation to erin after 3 days."""
    settings = {"timeout": "P14D", "reminder": "P7D", "escalate_to": escalation("erin", after="P3D")}
    settings.update(overrides)
    return [stage("bob", **settings)]


# --- expiry ------------------------------------------------------------------------------------


def test_expiring_before_the_deadline_is_not_yet_due(tenant, submit, app, clock):
    tenant()
    receipt = submit()
    clock.advance(14 * DAY - timedelta(seconds=1))

    with pytest.raises(errors.NotYetDue):
        app.expire_request(receipt.id)


def test_request_nobody_decided_expires_at_its_deadline(tenant, submit, app, clock):
    tenant()
    receipt = submit()
    clock.advance(14 * DAY)

    assert app.expire_request(receipt.id).state == "expired"


def test_decision_after_the_deadline_records_the_expiry(tenant, submit, app, clock, event_names):
    tenant()
    receipt = submit()
    clock.advance(15 * DAY)

    with pytest.raises(errors.RequestExpired):
        app.decide(request_id=receipt.id, approver_id="bob", decision="approve")

    assert event_names(receipt.id) == ["Submitted", "StageStarted", "Expired"]
    assert app.request_state(receipt.id) == "expired"


def test_expired_request_stays_expired_when_another_approver_tries(tenant, submit, app, clock):
    tenant()
    receipt = submit()
    clock.advance(14 * DAY)
    app.expire_request(receipt.id)

    with pytest.raises(errors.RequestExpired):
        app.decide(request_id=receipt.id, approver_id="carol", decision="approve")
    assert app.request_state(receipt.id) == "expired"
    assert app.group_members("share") == []


def test_request_expires_at_stage_two_when_stage_two_is_undecided(tenant, submit, app, clock, events):
    tenant(stages=[stage("bob"), stage("dave", timeout="P5D")])
    receipt = submit()
    clock.advance(2 * DAY)
    app.decide(request_id=receipt.id, approver_id="bob", decision="approve")
    clock.advance(5 * DAY)

    app.expire_request(receipt.id)

    expired = events(receipt.id)[-1]
    assert (type(expired).__name__, expired.stage, expired.deadline) == ("Expired", 2, START + 7 * DAY)


# --- escalation --------------------------------------------------------------------------------


def test_escalating_a_stage_without_escalation_is_refused(tenant, submit, app, clock):
    tenant(stages=[stage("bob")])
    receipt = submit()
    clock.advance(5 * DAY)

    with pytest.raises(errors.EscalationNotEnabled):
        app.escalate(receipt.id)


def test_escalating_before_the_escalation_delay_is_not_yet_due(tenant, submit, app, clock):
    tenant(stages=escalating())
    receipt = submit()
    clock.advance(3 * DAY - timedelta(seconds=1))

    with pytest.raises(errors.NotYetDue):
        app.escalate(receipt.id)


def test_escalation_forwards_the_stage_to_its_alternate_approvers(tenant, submit, app, clock, events):
    tenant(stages=escalating())
    receipt = submit()
    clock.advance(3 * DAY)

    app.escalate(receipt.id)

    escalated = events(receipt.id)[-1]
    assert (type(escalated).__name__, escalated.stage, escalated.alternate_approvers) == ("Escalated", 1, ["erin"])


def test_second_escalation_of_the_same_stage_is_refused(tenant, submit, app, clock):
    tenant(stages=escalating())
    receipt = submit()
    clock.advance(3 * DAY)
    app.escalate(receipt.id)

    with pytest.raises(errors.AlreadyEscalated):
        app.escalate(receipt.id)


def test_escalation_time_of_stage_two_counts_from_when_stage_two_started(tenant, submit, app, clock):
    tenant(stages=[stage("bob"), stage("dave", escalate_to=escalation("erin", after="P3D"))])
    receipt = submit()
    clock.advance(4 * DAY)
    app.decide(request_id=receipt.id, approver_id="bob", decision="approve")

    assert app.request(receipt.id).stage["escalation_at"] == START + 7 * DAY


def test_escalating_after_the_deadline_is_refused_as_expired(tenant, submit, app, clock):
    tenant(stages=escalating())
    receipt = submit()
    clock.advance(14 * DAY)

    with pytest.raises(errors.RequestExpired):
        app.escalate(receipt.id)
    assert app.request_state(receipt.id) == "expired"


# --- reminders ---------------------------------------------------------------------------------


def test_reminding_before_the_reminder_time_is_not_yet_due(tenant, submit, app, clock):
    tenant(stages=[stage("bob", "carol", reminder="P7D")])
    receipt = submit()
    clock.advance(7 * DAY - timedelta(seconds=1))

    with pytest.raises(errors.NotYetDue):
        app.remind_approvers(receipt.id)


def test_reminder_records_the_undecided_approvers_of_the_stage(tenant, submit, app, clock, events):
    tenant(stages=[stage("bob", "carol", reminder="P7D")])
    receipt = submit()
    clock.advance(7 * DAY)

    app.remind_approvers(receipt.id)

    reminded = events(receipt.id)[-1]
    assert (type(reminded).__name__, reminded.stage, reminded.approvers) == ("ApproverReminded", 1, ["bob", "carol"])


def test_reminder_after_escalation_goes_to_the_primary_approvers_only(tenant, submit, app, clock, events):
    tenant(stages=escalating())
    receipt = submit()
    clock.advance(7 * DAY)
    app.escalate(receipt.id)

    app.remind_approvers(receipt.id)

    assert events(receipt.id)[-1].approvers == ["bob"]


def test_second_reminder_for_the_same_stage_is_refused(tenant, submit, app, clock):
    tenant(stages=[stage("bob", reminder="P7D")])
    receipt = submit()
    clock.advance(7 * DAY)
    app.remind_approvers(receipt.id)

    with pytest.raises(errors.AlreadyReminded):
        app.remind_approvers(receipt.id)


def test_reminding_after_the_deadline_is_refused_as_expired(tenant, submit, app, clock):
    tenant(stages=[stage("bob", reminder="P7D")])
    receipt = submit()
    clock.advance(14 * DAY)

    with pytest.raises(errors.RequestExpired):
        app.remind_approvers(receipt.id)
    assert app.request_state(receipt.id) == "expired"


def test_cancelling_after_the_deadline_records_the_expiry_instead(tenant, submit, app, clock, event_names):
    tenant()
    receipt = submit()
    clock.advance(14 * DAY)

    with pytest.raises(errors.RequestExpired):
        app.cancel_request(request_id=receipt.id, actor_id="alice")
    assert event_names(receipt.id)[-1] == "Expired"
