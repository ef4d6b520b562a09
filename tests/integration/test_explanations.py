"""``/audit/requests/{id}/explain`` from the log alone: who could decide each stage and why, as the
directory was at submission; reminders and escalation; what the approver was shown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.clock import ManualClock
from entitlements.bootstrap import build_services
from entitlements.settings import Settings
from entitlements.tenant import load_tenant

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TENANT = """
users:
  - {id: ann, email: ann@example.test, organization: Contoso, manager: mia}
  - {id: ned, email: ned@example.test}
  - {id: mia, email: mia@example.test}
  - {id: gus, email: gus@example.test}
  - {id: erin, email: erin@example.test}
  - {id: fay, email: fay@example.test}
groups:
  - {id: reviewers, members: [gus]}
catalogs: [{id: it}]
access_packages:
  - {id: wiki, catalog: it, name: Wiki, resources: [{id: wiki-editors, kind: group}]}
policies:
  - id: wiki-policy
    access_package: wiki
    approval:
      required: true
      stages:
        - approvers: [{requestor_manager: true}, {group: reviewers}]
          fallback_approvers: [{user: fay}]
          timeout: P14D
          reminder: P2D
          escalation: {enabled: true, after: P3D, approvers: [{user: erin}]}
"""


@pytest.fixture
def services(database_url, tmp_path):
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(TENANT, encoding="utf-8")
    clock = ManualClock(START)
    services = build_services(Settings(database_url=database_url), clock=clock)
    load_tenant(services.app, tenant)
    services.clock = clock
    yield services
    services.close()


def run_until(services, moment) -> None:
    services.clock.set(moment)
    services.read_models.catch_up()
    services.scheduler.tick()


def test_each_approver_is_explained_by_the_rule_that_named_them_as_the_directory_was_at_submission(services):
    app = services.app
    receipt = app.submit_request(requestor_id="ann", access_package_id="wiki")
    (stage,) = services.read_models.explanation(receipt.id)["stages"]
    assert stage["approvers"] == [
        {"user_id": "mia", "why": ["manager of ann, the user the access is for"]},
        {"user_id": "gus", "why": ["member of group reviewers"]},
    ]
    assert stage["used_fallback"] is False
    assert stage["alternate_approvers"] == [{"user_id": "erin", "why": ["named in the policy"]}]
    assert services.read_models.explanation(receipt.id)["directory_at_submission"] == {
        "manager_of_target": "mia", "group_members": {"reviewers": ["gus"]},
    }


def test_fallback_approvers_are_explained_as_such_when_the_rules_named_nobody(services):
    # gus has no manager and is the only reviewer, and nobody approves their own request
    receipt = services.app.submit_request(requestor_id="gus", access_package_id="wiki")
    (stage,) = services.read_models.explanation(receipt.id)["stages"]
    assert stage["approvers"] == [{"user_id": "fay", "why": ["fallback approver, named in the policy"]}]
    assert stage["used_fallback"] is True


def test_reminders_escalation_and_the_decision_are_in_order_with_what_the_approver_was_shown(services):
    receipt = services.app.submit_request(requestor_id="ann", access_package_id="wiki")
    run_until(services, START + timedelta(days=2, hours=1))
    run_until(services, START + timedelta(days=3, hours=1))
    services.app.decide(request_id=receipt.id, approver_id="erin", decision="approve", reason="covering for mia")
    (stage,) = services.read_models.explanation(receipt.id)["stages"]
    assert [r["by"] for r in stage["reminders"]] == ["system"]
    assert stage["escalation"]["alternate_approvers"] == ["erin"] and stage["escalation"]["by"] == "system"
    assert (stage["decision"], stage["decided_by"], stage["reason"]) == ("approved", "erin", "covering for mia")
    shown = stage["shown_to_approver"]
    assert shown["requestor"] == {"user_id": "ann", "display_name": "ann", "organization": "Contoso", "email": "ann@example.test"}
    assert shown["access_package"] == {"id": "wiki", "name": "Wiki"} and shown["expires_at"] == stage["deadline"]
