"""Writes ``group-log-b013bad.sqlite``: a log as commit b013bad (before ``Membership`` aggregates)
recorded it, with grants and withdrawals as ``Group.MembershipGranted`` / ``MembershipWithdrawn``
events on the groups. Run from a checkout of that commit:

    git worktree add /tmp/b013bad b013bad
    cd /tmp/b013bad && .venv/bin/python /path/to/write_group_log.py /path/to/group-log-b013bad.sqlite

(any venv with the project's dependencies will do). tests/integration/test_legacy_group_log.py
reads the file; the moments it checks are the ones below.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from domain.access_package import AccessPackage
from domain.application import EntitlementsApplication
from domain.assignment_policy import AssignmentPolicy
from domain.clock import ManualClock
from tests.unit.builders import NO_APPROVAL, START, standard_items

DAY = timedelta(days=1)


def main(path: Path) -> None:
    path.unlink(missing_ok=True)
    clock = ManualClock(START)
    app = EntitlementsApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}, clock=clock
    )
    share = [{"id": "share", "kind": "group"}]
    extra = [
        (AccessPackage, "wiki", {"catalog": "cat", "name": "Wiki", "hidden": False, "notifications_enabled": True,
                                 "resources": share, "incompatible_packages": [], "incompatible_groups": [],
                                 "policies": ["wiki-pol"]}),
        (AssignmentPolicy, "wiki-pol", {"access_package": "wiki", "name": "Anyone",
                                        "requestors": {"scope": "all_members", "users": [], "groups": []},
                                        "requestor_justification_required": False, "questions": [],
                                        "approval": NO_APPROVAL, "expiration": {"after": "P365D"},
                                        "extension": {"allowed": False}}),
        (AccessPackage, "lead", {"catalog": "cat", "name": "Lead", "hidden": False, "notifications_enabled": True,
                                 "resources": [{"id": "approvers", "kind": "group"}], "incompatible_packages": [],
                                 "incompatible_groups": [], "policies": ["lead-pol"]}),
        (AssignmentPolicy, "lead-pol", {"access_package": "lead", "name": "Anyone",
                                        "requestors": {"scope": "all_members", "users": [], "groups": []},
                                        "requestor_justification_required": False, "questions": [],
                                        "approval": NO_APPROVAL, "expiration": {"after": "P365D"},
                                        "extension": {"allowed": False}}),
    ]
    app.configure(standard_items(extra=extra), actor="loader")
    # day 0: alice gets pkg (approved by bob): share <- alice
    request = app.submit_request(requestor_id="alice", access_package_id="pkg")
    app.decide(request_id=request.id, approver_id="bob", decision="approve", reason="ok")
    clock.advance(DAY)  # day 1: frank gets wiki: share <- frank
    frank = app.submit_request(requestor_id="frank", access_package_id="wiki")
    clock.advance(DAY)  # day 2: alice gets wiki too: share <- alice, a second source
    app.submit_request(requestor_id="alice", access_package_id="wiki")
    clock.advance(DAY)  # day 3: frank's wiki removed: share -> frank
    app.remove_access(assignment_id=app.request(frank.id).assignment_id, admin_id="ada", reason="left the team")
    clock.advance(DAY)  # day 4: dave gets lead: approvers <- dave (bob and carol are directory members)
    app.submit_request(requestor_id="dave", access_package_id="lead")
    assert app.group_members("share") == ["alice"], app.group_members("share")
    assert app.group_members("approvers") == ["bob", "carol", "dave"], app.group_members("approvers")
    app.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
