"""The notifier read model: turns events into the numbered emails, written into the outbox with
its position in one transaction.

Each email's id is derived from its event (originator and version), its number and its recipient,
and the outbox only ever gains rows it does not hold (``ON CONFLICT DO NOTHING``): replaying or
rebuilding the notifier never adds an email twice, and a rebuild keeps the outbox (it is the record
of what was sent) while it drops the rest of the notifier's rows. The sender (``notifier.sender``)
delivers the outbox.

The request details come from the facts (what a request's emails show does not change after it
is submitted); which access an assignment holds is tracked here, from its own events, so that an
assignment's emails name the request that granted the access at that moment.
"""

from __future__ import annotations

import uuid
from typing import Any, Sequence
from urllib.parse import quote

from notifier.render import Renderer
from notifier.rules import Planned, assignment_emails, request_emails
from projections.deadlines import fixed
from projections.directory import DirectoryReadModel
from projections.engine import LogEvent
from projections.facts import (
    ASSIGNMENT,
    ASSIGNMENT_TOPICS,
    REQUEST,
    REQUEST_TOPICS,
    FactsModel,
    FactsReadModel,
)
from projections.paging import Page, keyset_page
from projections.store import Transaction

NAME = "notifier"
OUTBOX = "outbox"
GRANTS = "notifier_grants"
EMAIL_IDS = uuid.UUID("6f1f4c52-3a53-4d59-9a55-2f0c61b0e7a1")  # namespace of the emails' ids

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


def email_id(event: LogEvent, number: int, recipient: str) -> str:
    return str(uuid.uuid5(EMAIL_IDS, f"{event.originator_id}/{event.version}/{number}/{recipient}"))


class NotifierReadModel(FactsReadModel):
    name = NAME
    topics = REQUEST_TOPICS + ASSIGNMENT_TOPICS
    kept_tables = (OUTBOX,)  # rebuilt, the notifier drops what it tracks but never the outbox: it adds nothing
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {OUTBOX} (
            id TEXT PRIMARY KEY,
            position BIGINT NOT NULL,
            seq INTEGER NOT NULL,
            number INTEGER NOT NULL,
            recipient_id TEXT NOT NULL,
            to_address TEXT,
            subject TEXT NOT NULL,
            text_body TEXT NOT NULL,
            html_body TEXT NOT NULL,
            request_id TEXT,
            assignment_id TEXT,
            message_id TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT)""",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_by_order ON {OUTBOX} (position, seq)",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due ON {OUTBOX} (status, next_attempt_at)",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_by_request ON {OUTBOX} (request_id, position, seq)",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_by_recipient ON {OUTBOX} (recipient_id, position, seq)",
        f"""CREATE TABLE IF NOT EXISTS {GRANTS} (
            assignment_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            access_end TEXT)""",
    )

    def __init__(self, source: FactsModel, directory: DirectoryReadModel, *, base_url: str, mail_domain: str) -> None:
        super().__init__(source)
        self.directory = directory
        self.sources = (source, directory)
        self.base_url = base_url.rstrip("/")
        self.mail_domain = mail_domain
        self.renderer = Renderer()

    # --- one batch ---------------------------------------------------------------------------

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        facts = self.source.facts
        touched = facts.touched(tx, events, grants=False)
        grants = self._load_grants(tx, set(touched.assignments))
        changed_grants: dict[str, None] = {}
        subjects: list[tuple] = []  # (event, request id, assignment id, access end then)
        for event in events:
            if event.kind.startswith(REQUEST + "."):
                subjects.append((event, event.originator_id, None, None))
                continue
            assignment_id = event.originator_id
            if event.kind in (f"{ASSIGNMENT}.Delivering", f"{ASSIGNMENT}.Extended"):
                held = grants.get(assignment_id)
                granted_by = held[0] if held and event.kind.endswith("Extended") else event.data["request_id"]
                grants[assignment_id] = (granted_by, event.data.get("end"))
                changed_grants[assignment_id] = None
            elif assignment_id in grants:
                granted_by, access_end = grants[assignment_id]
                subjects.append((event, granted_by, assignment_id, access_end))
        tx.insert_many(
            f"INSERT INTO {GRANTS} (assignment_id, request_id, access_end)",
            ((aid, *grants[aid]) for aid in changed_grants),
            conflict="ON CONFLICT (assignment_id) DO UPDATE SET request_id = excluded.request_id,"
            " access_end = excluded.access_end",
            types=("text", "text", "text"),
        )
        requests = dict(touched.requests)
        requests.update(facts.requests_by_id(tx, {subject[1] for subject in subjects if subject[1] not in requests}))
        planned = []
        for event, request_id, assignment_id, access_end in subjects:
            request = requests.get(request_id)
            if request is None:
                continue
            if assignment_id is None:
                plans = request_emails(event.kind, event.data, request)
            else:
                plans = assignment_emails(event.kind, event.data, touched.assignments[assignment_id], request)
            planned += [(event, plan, request, assignment_id, access_end) for plan in plans]
        if planned:
            self._write(tx, planned)

    def _load_grants(self, tx: Transaction, assignment_ids: set[str]) -> dict[str, tuple[str, str | None]]:
        rows = tx.fetch_where_in(f"SELECT assignment_id, request_id, access_end FROM {GRANTS}", "assignment_id", assignment_ids)
        return {aid: (request_id, end) for aid, request_id, end in rows}

    def _write(self, tx: Transaction, planned: list) -> None:
        emails = []  # (id, seq, event, plan, recipient, request, assignment id, access end)
        for index, (event, plan, request, assignment_id, access_end) in enumerate(planned):
            if index == 0 or planned[index - 1][0] is not event:
                seq = 0
            for recipient in plan.recipients:
                identifier = email_id(event, plan.number, recipient)
                emails.append((identifier, seq, event, plan, recipient, request, assignment_id, access_end))
                seq += 1
        # a replay or a rebuild meets emails already written: they are neither rendered nor touched
        written = {row[0] for row in tx.fetch_where_in(f"SELECT id FROM {OUTBOX}", "id", [e[0] for e in emails])}
        emails = [email for email in emails if email[0] not in written]
        if not emails:
            return
        people: set[str] = set()
        for _, _, event, plan, recipient, request, _, _ in emails:
            people.update((recipient, request["requestor_id"], request["target_user_id"], event.data.get("actor") or ""))
        users = self.directory.get_many(tx, people)
        names = self.source.facts.names_of(tx, {email[5]["access_package_id"] for email in emails})
        rows = [self._row(*email, users, names) for email in emails]
        tx.insert_many(
            f"INSERT INTO {OUTBOX} (id, position, seq, number, recipient_id, to_address, subject, text_body,"
            " html_body, request_id, assignment_id, message_id, status, attempts, next_attempt_at, last_error,"
            " created_at, sent_at)",
            rows,
            conflict="ON CONFLICT (id) DO NOTHING",
            types=("text", "bigint", "integer", "integer", "text", "text", "text", "text", "text", "text", "text",
                   "text", "text", "integer", "text", "text", "text", "text"),
        )

    def _row(
        self, identifier: str, seq: int, event: LogEvent, plan: Planned, recipient: str, request: dict,
        assignment_id: str | None, access_end: str | None, users: dict, names: dict,
    ) -> tuple:
        def person(user_id: str) -> dict[str, Any]:
            user = users.get(user_id) or {}
            return {
                "id": user_id,
                "display_name": user.get("display_name") or user_id,
                "email": user.get("email"),
                "organization": user.get("organization"),
            }

        stage_number = event.data.get("stage")
        stage = request["stages"][stage_number - 1] if stage_number and stage_number <= len(request["stages"]) else None
        decided = event.kind.endswith(("StageApproved", "Denied"))
        assignment = None
        if plan.number >= 18:
            assignment = {"id": assignment_id, "end": access_end}
            link = f"{self.base_url}/access/{quote(assignment_id)}"
        else:
            link = f"{self.base_url}/requests/{quote(request['id'])}"
        context = {
            "recipient": person(recipient),
            "requestor": person(request["requestor_id"]),
            "target": person(request["target_user_id"]),
            "access_package": {"id": request["access_package_id"], "name": names[request["access_package_id"]]},
            "request": {
                "id": request["id"],
                "request_type": request["request_type"],
                "justification": request.get("justification"),
                "start": request.get("start"),
                "end": request.get("end"),
                "submitted_at": request["submitted_at"],
                "expires_at": stage["deadline"] if stage else None,
                "stage": stage_number,
                "stage_count": len(request["stages"]),
                "decided_by": person(event.data["actor"])["display_name"] if decided else None,
                "reason": event.data.get("reason") if decided else None,
            },
            "assignment": assignment,
            "due": plan.due,
            "link": link,
        }
        rendered = self.renderer.render(plan.number, context)
        address = context["recipient"]["email"]
        created = fixed(event.timestamp)
        return (
            identifier,
            event.position,
            seq,
            plan.number,
            recipient,
            address,
            rendered.subject,
            rendered.text,
            rendered.html,
            request["id"],
            assignment_id,
            f"<{identifier}@{self.mail_domain}>",
            PENDING if address else FAILED,
            0,
            created,
            None if address else f"{recipient} has no email address in the directory",
            created,
            None,
        )

    # --- queries -----------------------------------------------------------------------------

    def outbox(
        self, tx: Transaction, *, request_id: str | None, to: str | None, limit: int, cursor: str | None
    ) -> Page:
        """The outbox, newest first; ``to`` is a user id or an email address."""
        conditions, params = ["1 = 1"], []
        if request_id:
            conditions.append("request_id = ?")
            params.append(request_id)
        if to:
            conditions.append("(recipient_id = ? OR to_address = ?)")
            params += [to, to]
        return keyset_page(
            tx,
            select=f"SELECT {', '.join(OUTBOX_ITEM)}, position, seq FROM {OUTBOX}",
            where=" AND ".join(conditions),
            params=params,
            key_columns=("position", "seq"),
            key_types=(int, int),
            limit=limit,
            cursor=cursor,
            row_to_item=outbox_item,
        )


OUTBOX_ITEM = (
    "id", "number", "subject", "to_address", "recipient_id", "request_id", "assignment_id", "status", "attempts",
    "last_error", "message_id", "created_at", "sent_at",
)


def outbox_item(row: tuple) -> dict[str, Any]:
    item = dict(zip(OUTBOX_ITEM, row))
    item["to"] = item.pop("to_address")
    return item
