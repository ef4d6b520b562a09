"""Access over time: it expires at its end, the user is reminded before and may extend where the
policy allows; an approver may revoke an approval they gave."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import START, WITH_WEBHOOK
from domain import errors
from domain.assignment_policy import end_of_day

DAY = timedelta(days=1)
END = START + 30 * DAY  # the standard policy grants 30 days from approval (at START)
EXTENSION_NEEDS_APPROVAL = {"extension": {"allowed": True, "approval_required": True, "reminder_before": "P7D"}}


def extend(app, assignment_id, user_id="alice"):
    return app.request_extension(user_id=user_id, assignment_id=assignment_id, justification="still needed")


# --- access expiry -----------------------------------------------------------------------------


def test_expiring_access_before_its_end_is_not_yet_due(granted, app, clock):
    assignment_id = granted()
    clock.set(END - timedelta(seconds=1))

    with pytest.raises(errors.NotYetDue):
        app.expire_access(assignment_id)


def test_access_expires_at_its_end_and_withdraws_group_membership(granted, app, clock):
    assignment_id = granted()
    clock.set(END)

    assert app.expire_access(assignment_id).state == "access_expired"
    assert app.group_members("share") == []


def test_expired_access_can_be_requested_again(granted, app, clock, submit):
    assignment_id = granted()
    clock.set(END)
    app.expire_access(assignment_id)

    assert submit().state == "pending_approval"


# --- expiry reminder ---------------------------------------------------------------------------


def test_expiry_reminder_before_its_time_is_not_yet_due(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 7 * DAY - timedelta(seconds=1))

    with pytest.raises(errors.NotYetDue):
        app.remind_access_expiry(assignment_id)


def test_expiry_reminder_is_recorded_when_due(granted, app, clock, events):
    assignment_id = granted()
    clock.set(END - 7 * DAY)

    app.remind_access_expiry(assignment_id)

    reminded = events(assignment_id)[-1]
    assert (type(reminded).__name__, reminded.end) == ("ExpiryReminded", END)


def test_expiry_reminder_is_sent_once_per_end_date(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 7 * DAY)
    app.remind_access_expiry(assignment_id)

    with pytest.raises(errors.AlreadyReminded):
        app.remind_access_expiry(assignment_id)


def test_access_past_its_end_is_not_reminded_it_expires(granted, app, clock):
    assignment_id = granted()
    clock.set(END)

    with pytest.raises(errors.AccessNotActive):
        app.remind_access_expiry(assignment_id)
    assert app.expire_access(assignment_id).state == "access_expired"


def test_no_expiry_reminder_where_the_policy_allows_no_extension(granted, app, clock):
    assignment_id = granted(policy={"extension": {"allowed": False}})
    clock.set(END - 7 * DAY)

    with pytest.raises(errors.ExtensionNotAllowed):
        app.remind_access_expiry(assignment_id)


def test_extended_access_is_reminded_again_before_its_new_end(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 7 * DAY)
    app.remind_access_expiry(assignment_id)
    extend(app, assignment_id)
    clock.set(END + 30 * DAY - 7 * DAY)

    app.remind_access_expiry(assignment_id)

    assert app.assignment(assignment_id).expiry_reminded_for == END + 30 * DAY


# --- extension ---------------------------------------------------------------------------------


def test_extension_without_approval_moves_the_end_at_once(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 5 * DAY)

    receipt = extend(app, assignment_id)

    assert receipt.state == "access_extended"
    assert app.assignment(assignment_id).end == END + 30 * DAY


def test_extension_requiring_approval_waits_for_the_approver(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 5 * DAY)

    receipt = extend(app, assignment_id)

    assert (receipt.state, app.request(receipt.id).request_type) == ("pending_approval", "user_extend")
    assert app.assignment(assignment_id).end == END


def test_approved_extension_moves_the_end(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 5 * DAY)
    receipt = extend(app, assignment_id)

    answer = app.decide(request_id=receipt.id, approver_id="carol", decision="approve")

    assert answer.state == "access_extended"
    assert app.assignment(assignment_id).end == END + 30 * DAY


def test_extended_access_does_not_expire_at_its_old_end(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 5 * DAY)
    extend(app, assignment_id)
    clock.set(END)

    with pytest.raises(errors.NotYetDue):
        app.expire_access(assignment_id)


def test_extension_is_refused_once_access_has_ended(granted, app, clock):
    assignment_id = granted()
    clock.set(END)
    app.expire_access(assignment_id)

    with pytest.raises(errors.AccessNotActive):
        extend(app, assignment_id)


def test_extension_is_refused_where_the_policy_allows_none(granted, app):
    assignment_id = granted(policy={"extension": {"allowed": False}})

    with pytest.raises(errors.ExtensionNotAllowed):
        extend(app, assignment_id)


def test_access_lasting_until_the_policys_fixed_end_date_cannot_be_extended(granted, app):
    assignment_id = granted(policy={"expiration": {"on": "2026-06-30"}})

    with pytest.raises(errors.ExtensionPastFixedEnd) as refused:
        extend(app, assignment_id)

    assert isinstance(refused.value, errors.ExtensionNotAllowed)
    assert "2026-06-30" in refused.value.message


def test_extension_under_a_fixed_end_date_moves_the_end_up_to_that_date_and_not_past_it(tenant, submit, approve, app, clock):
    tenant(policy={"expiration": {"on": "2026-06-30"}})
    approve(submit(end=START + 30 * DAY).id)
    assignment_id = app.find_assignment("alice", "pkg").id
    clock.set(END - 5 * DAY)

    extend(app, assignment_id)

    assert app.assignment(assignment_id).end == end_of_day("2026-06-30")
    clock.set(end_of_day("2026-06-30") - 5 * DAY)
    with pytest.raises(errors.ExtensionPastFixedEnd):
        extend(app, assignment_id)


def test_extension_asked_for_before_the_reminder_window_is_too_early(granted, app, clock):
    assignment_id = granted()  # reminded (and extendable) 7 days before the end
    clock.set(END - 7 * DAY - timedelta(seconds=1))

    with pytest.raises(errors.ExtensionTooEarly) as refused:
        extend(app, assignment_id)

    assert refused.value.details["extension_opens_at"] == (END - 7 * DAY).isoformat()
    assert app.assignment(assignment_id).end == END


def test_too_early_extension_says_in_words_from_when_it_can_be_asked_for(granted, app):
    assignment_id = granted()

    with pytest.raises(errors.ExtensionTooEarly) as refused:
        extend(app, assignment_id)

    assert refused.value.message == (
        "it is too early to extend this access: it ends on 2026-01-31 00:00 UTC, and an extension can be "
        "asked for only in its last 7 days, from 2026-01-24 00:00 UTC"
    )


def test_extension_may_be_asked_for_from_reminder_before_the_end(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 7 * DAY)

    assert extend(app, assignment_id).state == "access_extended"


def test_a_second_extension_right_after_an_approved_one_is_too_early(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 5 * DAY)
    extend(app, assignment_id)

    with pytest.raises(errors.ExtensionTooEarly):
        extend(app, assignment_id)
    assert app.assignment(assignment_id).end == END + 30 * DAY


def test_access_can_be_extended_again_within_the_window_before_its_new_end(granted, app, clock):
    assignment_id = granted()
    clock.set(END - 5 * DAY)
    extend(app, assignment_id)
    clock.set(END + 30 * DAY - 7 * DAY)

    extend(app, assignment_id)

    assert app.assignment(assignment_id).end == END + 60 * DAY


def test_without_reminder_before_an_extension_may_be_asked_for_in_the_last_period_of_access(granted, app):
    assignment_id = granted(policy={"extension": {"allowed": True, "approval_required": False}})

    assert extend(app, assignment_id).state == "access_extended"  # at once: within the last 30 days
    with pytest.raises(errors.ExtensionTooEarly):
        extend(app, assignment_id)


def test_a_pending_extension_blocks_another(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 5 * DAY)
    pending = extend(app, assignment_id)

    with pytest.raises(errors.ExtensionAlreadyRequested) as refused:
        extend(app, assignment_id)

    assert isinstance(refused.value, errors.OpenRequestExists)
    assert refused.value.details["request_id"] == pending.id


def test_an_extension_may_be_asked_for_again_once_the_pending_one_was_denied(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 5 * DAY)
    denied = extend(app, assignment_id)
    app.decide(request_id=denied.id, approver_id="carol", decision="deny", reason="not yet")

    assert extend(app, assignment_id).state == "pending_approval"


def test_only_the_holder_may_ask_to_extend(granted, app):
    assignment_id = granted()

    with pytest.raises(errors.NotTheAssignee):
        extend(app, assignment_id, user_id="mike")


def test_access_can_be_requested_again_after_it_expired_with_an_extension_pending(granted, app, clock, submit):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 2 * DAY)
    extend(app, assignment_id)
    clock.set(END)
    app.expire_access(assignment_id)

    assert submit().state == "pending_approval"


def test_pending_extension_is_withdrawn_by_the_system_when_access_expires(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 2 * DAY)
    extension = extend(app, assignment_id)
    clock.set(END)

    app.expire_access(assignment_id)

    events = list(app.events.get(app.request(extension.id).id))
    assert (app.request(extension.id).state, events[-1].actor) == ("cancelled", "system")


def test_pending_extension_is_withdrawn_when_an_administrator_removes_access(granted, app, clock):
    assignment_id = granted(policy=EXTENSION_NEEDS_APPROVAL)
    clock.set(END - 2 * DAY)
    extension = extend(app, assignment_id)

    app.remove_access(assignment_id=assignment_id, admin_id="ada", reason="left the company")

    assert app.request(extension.id).state == "cancelled"
    assert app.assignment(assignment_id).open_request_id is None


def test_failed_resource_can_still_be_retried_after_an_extension(granted, app, clock):
    assignment_id = granted(package=WITH_WEBHOOK)
    assert app.assignment(assignment_id).state == "partially_delivered"
    clock.set(END - 5 * DAY)
    extend(app, assignment_id)

    app.deliver(assignment_id)

    assert app.assignment(assignment_id).resource_status["crm"] == "delivered"


# --- revocation --------------------------------------------------------------------------------


@pytest.fixture
def approved_by_bob(tenant, submit, approve):
    tenant()
    receipt = submit()
    approve(receipt.id, "bob")
    return receipt.id


def test_approver_who_approved_can_revoke_and_the_access_is_removed(approved_by_bob, app):
    receipt = app.revoke_approval(request_id=approved_by_bob, approver_id="bob", reason="approved by mistake")

    assert (receipt.state, app.find_assignment("alice", "pkg").state) == ("revoked", "removed")
    assert app.group_members("share") == []


def test_revocation_by_someone_who_did_not_approve_is_refused(approved_by_bob, app):
    with pytest.raises(errors.NotTheApprover) as refused:
        app.revoke_approval(request_id=approved_by_bob, approver_id="carol", reason="no")

    assert refused.value.details["approved_by"] == ["bob"]


def test_revocation_without_a_reason_is_refused(approved_by_bob, app):
    with pytest.raises(errors.ReasonRequired):
        app.revoke_approval(request_id=approved_by_bob, approver_id="bob", reason=" ")


def test_request_that_was_not_approved_cannot_be_revoked(tenant, submit, app):
    tenant()
    receipt = submit()
    app.decide(request_id=receipt.id, approver_id="bob", decision="deny", reason="no")

    with pytest.raises(errors.NotRevocable):
        app.revoke_approval(request_id=receipt.id, approver_id="bob", reason="undo")


def test_extension_needing_approval_goes_through_the_stages_of_a_policy_without_approval(granted, app, clock):
    assignment_id = granted(policy={
        "approval": {"required": False, "stages": [{"approvers": [{"user": "bob"}], "timeout": "P14D",
                                                     "escalation": {"enabled": False}}]},
        **EXTENSION_NEEDS_APPROVAL,
    })
    clock.set(END - 2 * DAY)

    assert extend(app, assignment_id).state == "pending_approval"


def test_earlier_request_keeps_the_state_its_access_ended_in_after_access_is_granted_again(granted, app, clock, submit):
    assignment_id = granted()
    first = app.assignment(assignment_id).request_id
    clock.set(END)
    app.expire_access(assignment_id)
    second = submit()
    app.decide(request_id=second.id, approver_id="bob", decision="approve")

    assert (app.request_state(first), app.request_state(second.id)) == ("access_expired", "delivered")
