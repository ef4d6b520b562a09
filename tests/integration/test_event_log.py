"""The projections' own reading of the event log agrees with the library's."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant

APPROVALS = Path(__file__).parent.parent / "data" / "approvals.yaml"


def as_text(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def test_events_read_for_projections_match_the_library_decoding(database_url, clock):
    services = build_services(Settings(database_url=database_url), clock=clock)
    try:
        app = services.app
        load_tenant(app, APPROVALS)
        denied = app.submit_request(requestor_id="rita", access_package_id="vault")
        app.decide(request_id=denied.id, approver_id="amy", decision="approve", reason="ok")
        app.decide(request_id=denied.id, approver_id="cyd", decision="deny", reason="no")
        granted = app.submit_request(requestor_id="rita", access_package_id="wiki", end=clock.now() + timedelta(days=20))
        clock.advance(timedelta(days=3))
        app.escalate(granted.id)
        app.decide(request_id=granted.id, approver_id="eve", decision="approve")
        app.revoke_approval(request_id=granted.id, approver_id="eve", reason="moved teams")

        log = services.read_models.projector.log
        ours = log.read(0, stop=log.head(), limit=10_000, topics=[n.topic for n in app.recorder.select_notifications(1, 10_000)])
        theirs = app.recorder.select_notifications(1, 10_000)
        assert [e.position for e in ours] == [n.id for n in theirs]
        kinds = set()
        for event, notification in zip(ours, theirs):
            domain_event = app.mapper.to_domain_event(notification)
            assert event.originator_id == str(domain_event.originator_id)
            assert event.version == domain_event.originator_version
            assert event.kind == notification.topic.split(":", 1)[1]
            for name, value in vars(domain_event).items():
                if name in ("originator_id", "originator_version"):
                    continue
                assert event.data[name] == as_text(value), (event.kind, name)
            kinds.add(event.kind.split(".")[1])
        assert {"Submitted", "StageStarted", "StageApproved", "Denied", "Escalated", "Approved", "Revoked",
                "Delivering", "Delivered", "Removed"} <= kinds
    finally:
        services.close()
