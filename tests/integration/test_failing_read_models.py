"""A read model that fails on an event stops alone, just before that event, reports it, and is
tried again; rebuilds build beside the serving rows and leave them as they were when they fail."""

from __future__ import annotations

import logging

import pytest

from projections.facts import FactsModel
from projections.history import HistoryReadModel
from projections.read_models import ReadModels
from projections.rebuild import RebuildFailed
from tests.integration.test_read_models import app, services, views  # noqa: F401 (the same fixtures)

SUBMITTED = "domain.access_request:AccessRequest.Submitted"


@pytest.fixture
def poison(monkeypatch):
    """``poison.history`` / ``poison.facts``: ids of requests whose events make that read model
    raise (every instance of it, rebuilds included)."""

    class Poison:
        history: set[str] = set()
        facts: set[str] = set()

    real_project, real_apply = HistoryReadModel.project, FactsModel.apply

    def project(self, tx, touched):
        if Poison.history & set(touched.requests):
            raise RuntimeError("history cannot show this request")
        return real_project(self, tx, touched)

    def apply(self, tx, events, *, after):
        if Poison.facts & {event.originator_id for event in events}:
            raise ValueError("facts cannot fold this request")
        return real_apply(self, tx, events, after=after)

    monkeypatch.setattr(HistoryReadModel, "project", project)
    monkeypatch.setattr(FactsModel, "apply", apply)
    Poison.history, Poison.facts = set(), set()
    return Poison


def submit(app, requestor="rita", package="wiki"):
    return app.submit_request(requestor_id=requestor, access_package_id=package)


def submitted(views, request) -> int:
    """The log position of the request's ``Submitted`` event."""
    events = views.projector.log.read(0, stop=views.head(), limit=10_000, topics=[SUBMITTED])
    return next(event.position for event in events if event.originator_id == request.id)


def test_a_read_model_that_fails_stays_before_the_event_while_the_others_go_on(app, views, poison):
    first = submit(app)
    poisoned = submit(app, requestor="mona")
    poison.history.add(poisoned.id)
    last = submit(app, requestor="uma")
    views.catch_up()
    positions, head = views.positions(), views.head()
    assert positions["history"] == submitted(views, poisoned) - 1
    assert all(position == head for name, position in positions.items() if name != "history")
    assert [item["request_id"] for item in views.pending("amy", limit=10).items] == [last.id, poisoned.id, first.id]


def test_a_failing_read_model_keeps_what_precedes_the_failing_event_of_its_batch(app, views, poison):
    first = submit(app)
    app.decide(request_id=first.id, approver_id="amy", decision="deny", reason="no")
    poisoned = submit(app, requestor="mona")
    poison.history.add(poisoned.id)
    views.catch_up()  # one batch: the denial is shown, the poisoned request is not
    assert [item["request_id"] for item in views.history("amy", limit=10).items] == [first.id]


def test_a_failure_is_recorded_with_the_position_the_event_and_the_error(app, views, poison):
    poisoned = submit(app)
    poison.history.add(poisoned.id)
    views.catch_up()
    failure = views.failures()["history"]
    assert (failure.position, failure.event_position) == (submitted(views, poisoned) - 1, submitted(views, poisoned))
    assert failure.event_type == "AccessRequest.Submitted"
    assert failure.error == "RuntimeError: history cannot show this request"
    assert failure.attempts == 1 and list(views.failures()) == ["history"]


def test_read_models_derived_from_failing_facts_wait_at_their_position(app, views, poison):
    submit(app)
    poisoned = submit(app, requestor="mona")
    poison.facts.add(poisoned.id)
    views.catch_up()
    positions = views.positions()
    derived = ("pending", "history", "requests", "assignments", "deadlines", "notifier")
    assert {positions[name] for name in ("facts", *derived)} == {submitted(views, poisoned) - 1}
    assert positions["directory"] == views.head()
    assert list(views.failures()) == ["facts"]


def test_a_read_model_that_no_longer_fails_catches_up_and_its_failure_is_cleared(app, views, poison):
    poisoned = submit(app)
    poison.history.add(poisoned.id)
    views.catch_up()
    poison.history.clear()
    views.retry_failed()
    views.catch_up()
    assert set(views.positions().values()) == {views.head()}
    assert views.failures() == {}
    assert [item["request_id"] for item in views.pending("amy", limit=10).items] == [poisoned.id]


def test_a_failing_read_model_waits_for_its_backoff_before_it_is_tried_again(app, views, poison):
    poisoned = submit(app)
    poison.history.add(poisoned.id)
    views.catch_up()
    poison.history.clear()
    views.catch_up()  # within the first second: not tried
    assert views.failures()["history"].attempts == 1
    assert views.positions()["history"] == submitted(views, poisoned) - 1


def test_the_same_failure_is_logged_once(app, views, poison, caplog):
    poison.history.add(submit(app).id)
    with caplog.at_level(logging.DEBUG, logger="projections"):
        for _ in range(3):
            views.retry_failed()
            views.catch_up()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "history" in errors[0].getMessage() and errors[0].exc_info is None
    assert views.failures()["history"].attempts == 3


def test_a_rebuild_that_fails_half_way_leaves_every_read_model_as_it_was(app, views, poison):
    for requestor in ("rita", "mona", "uma"):
        submit(app, requestor=requestor)
    poisoned = submit(app, package="vault")
    views.catch_up()
    before = {name: views.dump(name) for name in views.models}
    positions = views.positions()
    poison.history.add(poisoned.id)
    views.batch_size = 3  # several batches were swapped in before the failure, in the old way
    with pytest.raises(RebuildFailed) as failed:
        views.rebuild()
    assert f"fails on event {submitted(views, poisoned)}" in str(failed.value)
    assert "nothing was changed" in str(failed.value)
    assert {name: views.dump(name) for name in views.models} == before
    assert views.positions() == positions and views.failures() == {}
    assert views.user("rita")["id"] == "rita"


def test_reads_during_a_rebuild_answer_what_they_answered_before(services, app, views):
    for requestor in ("rita", "mona", "uma"):
        app.decide(request_id=submit(app, requestor=requestor).id, approver_id="amy", decision="approve")
    submit(app, package="vault")
    views.catch_up()
    reads = lambda: (  # noqa: E731
        [item["request_id"] for item in views.pending("amy", limit=50).items],
        views.history("amy", limit=50).items,
        views.requests_of("rita", limit=50).items,
        views.user("amy"),
        views.positions(),
    )
    before = reads()
    during = []
    rebuilding = ReadModels(app, services.store, batch_size=2)
    result = rebuilding.rebuild(progress=lambda passed, position: during.append(reads()))
    assert len(during) > 3 and all(answer == before for answer in during)
    assert reads() == before and result.events == views.head()
