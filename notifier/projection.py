"""The notifier read model: turns events into the numbered emails, written into the outbox with
its position in one transaction.

Each email's id is derived from its event (originator and version), its number and its recipient;
its key in the outbox is its place, its event's position and ``seq`` (its rank among the event's
emails: the log's order, so the key index is only appended to), and the outbox only ever gains rows
it does not hold (``ON CONFLICT (position, seq) DO NOTHING``). Only the emails the sender may still
take (``pending``, ``sending``) are in its indexes by id and by due time (partial indexes). Replaying or
rebuilding the notifier never adds an email twice, and a rebuild keeps the outbox (it is the record
of what was sent) while it drops the rest of the notifier's rows. The sender (``notifier.sender``)
delivers the outbox.

The request details come from the facts (what a request's emails show does not change after it
is submitted); which access an assignment holds is tracked here, from its own events, so that an
assignment's emails name the request that granted the access at that moment.

**The horizon** (``ENTITLEMENTS_NOTIFIER_HORIZON``, default ``PT24H``): a projection of the notifier
from the start of the log (a new deployment of the notifier over an existing history, a reset, or a
rebuild, which is how a lost outbox is written again) never mails the past. When it begins, it
fixes its horizon once, in its own table (so that a restart half-way keeps it): the application's
time then (``started_at``), ``cutoff = started_at - horizon`` and the log head then (``until``). An
email is *skipped* when its event is at most ``until`` (it was already in the log when the
projection began) and its timestamp is before the cutoff: it is written to the outbox with the
status ``skipped`` and the reason in ``last_error``, with its subject and address, but is never
rendered (no template runs, which is what makes a first projection fast) and never sent (the
sender only takes ``pending`` and ``sending`` emails). Every later event, whatever its timestamp,
is mailed: steady-state projection never skips, nor does a jump of the manual clock (the events it
causes come after ``until``), nor a clock set back (the system clock after a manual one).

The horizon begins when a projector first prepares the notifier at position 0 (its tables are
created: the first start of a deployment, before it reads a page), or at the notifier's first batch
from position 0 when no horizon is recorded (a rebuild builds into tables of its own, and a reset
clears it). Emails already in the outbox are never touched again: a rebuild neither sends them
again nor turns them into skipped ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha1
from typing import Any, Callable, Sequence
from urllib.parse import quote

from notifier.render import Renderer, subject_line
from notifier.rules import ASSIGNMENT_KINDS, REQUEST_KINDS, Planned, assignment_emails, request_emails
from projections.deadlines import earlier, fixed, moment
from projections.directory import DirectoryReadModel
from projections.engine import LogEvent, topics
from projections.facts import ASSIGNMENT, REQUEST, FactsModel, FactsReadModel
from projections.paging import Page, keyset_page
from projections.store import Transaction, sql_text

NAME = "notifier"
OUTBOX = "outbox"
GRANTS = "notifier_grants"
HORIZON = "notifier_horizon"
EMAIL_IDS = uuid.UUID("6f1f4c52-3a53-4d59-9a55-2f0c61b0e7a1")  # namespace of the emails' ids

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
DUE = (PENDING, SENDING)  # the only statuses the sender ever takes; a skipped email is never sent
DUE_SQL = "status IN ('pending', 'sending')"  # the same, as the predicate of the sender's partial index


def email_id(event: LogEvent, number: int, recipient: str) -> str:
    """``uuid5(EMAIL_IDS, "originator/version/number/recipient")`` as text, computed without
    building UUID objects (a first projection makes one per email of the history)."""
    return email_ids(event, number)(recipient)


def email_ids(event: LogEvent, number: int) -> Callable[[str], str]:
    """:func:`email_id` of each recipient of the email ``number`` of ``event``: the hash of what
    they share is taken once."""
    shared = sha1(_EMAIL_IDS_BYTES + f"{event.originator_id}/{event.version}/{number}/".encode())

    def of(recipient: str) -> str:
        hashed = shared.copy()
        hashed.update(recipient.encode())
        return _as_uuid5(hashed.digest())

    return of


def _as_uuid5(sha1_digest: bytes) -> str:
    digest = bytearray(sha1_digest[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_EMAIL_IDS_BYTES = EMAIL_IDS.bytes


def stamp(value: datetime | str) -> str:
    """:func:`fixed` of an event's time, without parsing the ``2026-03-09T09:00:00.123456+00:00``
    the log holds (a first projection takes one per event of the history)."""
    if type(value) is str and len(value) == 32 and value[26:] == "+00:00" and value[19] == ".":
        return value[:26] + "Z"
    return fixed(value)


@dataclass(frozen=True)
class HorizonSetting:
    """``ENTITLEMENTS_NOTIFIER_HORIZON``, and where a projection that begins reads the time (the
    application's clock: with ``ENTITLEMENTS_CLOCK=manual`` events are stamped by it, not by the
    wall clock) and the log head (in the batch's own transaction)."""

    text: str  # "PT24H", as configured
    duration: timedelta
    now: Callable[[], datetime]
    log_head: Callable[[Transaction], int]


@dataclass(frozen=True)
class Horizon:
    """The horizon of one projection of the notifier from the start, fixed when it began."""

    setting: str  # "PT24H"
    started_at: datetime  # the application's time when the projection began
    cutoff: datetime  # started_at - the horizon
    until: int  # the log head when it began: no later event is ever skipped
    cutoff_text: str = ""  # fixed(cutoff): text order is time order, compared with stamp()

    @property
    def reason(self) -> str:
        return f"older than the notifier horizon ({self.setting} before {self.started_at:%Y-%m-%dT%H:%M:%SZ})"

    def skips(self, event: LogEvent) -> bool:
        """Whether the emails of ``event`` are skipped: it was in the log when the projection began
        and happened before the cutoff (a time that cannot be read is not before it)."""
        if event.position > self.until:
            return False
        try:
            if self.cutoff_text:
                return stamp(event.timestamp) < self.cutoff_text
            return moment(event.timestamp) < self.cutoff
        except (ValueError, TypeError, AttributeError, KeyError):
            return False


class NotifierReadModel(FactsReadModel):
    name = NAME
    # only the events that cause emails, and those that say which access an assignment holds
    topics = topics("access_request", *(f"{REQUEST}.{kind}" for kind in REQUEST_KINDS)) + topics(
        "assignment", *(f"{ASSIGNMENT}.{kind}" for kind in ("Delivering", "Extended", *ASSIGNMENT_KINDS))
    )
    kept_tables = (OUTBOX,)  # rebuilt, the notifier drops what it tracks but never the outbox: it adds nothing
    tables = (
        f"""CREATE TABLE IF NOT EXISTS {OUTBOX} (
            id TEXT NOT NULL,
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
            sent_at TEXT,
            request_position BIGINT)""",
        # an email's place, (its event's position, its number among the event's emails), is its key:
        # replays and rebuilds add an email only where the outbox holds none (ON CONFLICT), in the
        # order of the log, so the key index is appended to, not written all over as a random id's
        f"DROP INDEX IF EXISTS {OUTBOX}_by_order",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {OUTBOX}_by_place ON {OUTBOX} (position, seq)",
        # the sender's queue, and its emails by id: only the emails it may still take (a skipped,
        # sent or failed one is no entry of them; its queries spell the predicate, with literals)
        f"DROP INDEX IF EXISTS {OUTBOX}_due",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due_queue ON {OUTBOX} (next_attempt_at, position, seq) WHERE {DUE_SQL}",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due_by_id ON {OUTBOX} (id) WHERE {DUE_SQL}",
        # a request's emails: keyed first by the position of its submission, which grows with the
        # log, so that an email's entry goes where its request's are, among the recent ones (keyed
        # by the request's random id, every email wrote all over the index). An outbox written
        # before that column has no position in its rows (NULL): found by the same index
        f"DROP INDEX IF EXISTS {OUTBOX}_by_request",
        f"CREATE INDEX IF NOT EXISTS {OUTBOX}_by_request_position ON {OUTBOX} (request_position, request_id, position, seq)",
        # an outbox filtered by recipient matches the user id or the address, which no index serves
        # (the one by recipient alone was never read, and cost every email an entry written at random)
        f"DROP INDEX IF EXISTS {OUTBOX}_by_recipient",
        f"""CREATE TABLE IF NOT EXISTS {GRANTS} (
            assignment_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            access_end TEXT)""",
        # at most one row: the horizon of the projection from position 0 (see the module's docstring)
        f"""CREATE TABLE IF NOT EXISTS {HORIZON} (
            id INTEGER PRIMARY KEY,
            horizon TEXT NOT NULL,
            started_at TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            until_position BIGINT NOT NULL)""",
    )

    def __init__(
        self,
        source: FactsModel,
        directory: DirectoryReadModel,
        *,
        base_url: str,
        mail_domain: str,
        horizon: HorizonSetting | None = None,
    ) -> None:
        """``horizon`` None: nothing is ever skipped."""
        super().__init__(source)
        self.directory = directory
        self.sources = (source, directory)
        self.base_url = base_url.rstrip("/")
        self.mail_domain = mail_domain
        self.renderer = Renderer()
        self.horizon = horizon

    # --- the horizon -------------------------------------------------------------------------

    def create(self, tx: Transaction) -> None:
        if tx.table_exists(OUTBOX) and "request_position" not in tx.columns(OUTBOX):
            tx.execute(f"ALTER TABLE {OUTBOX} ADD COLUMN request_position BIGINT")  # an outbox of before
        super().create(tx)
        row = tx.fetchone("SELECT position FROM projection_positions WHERE name = ?", (self.name,))
        if self.horizon is not None and row is not None and int(row[0]) == 0:
            self._begin(tx)  # a first projection begins: the deployment's first start

    def _begin(self, tx: Transaction) -> None:
        """Fixes the horizon of a projection from position 0, unless one is recorded already (by
        another process, or before a restart)."""
        setting = self.horizon
        assert setting is not None
        now = moment(setting.now())
        tx.execute(
            f"INSERT INTO {HORIZON} (id, horizon, started_at, cutoff, until_position) VALUES (1, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (setting.text, fixed(now), fixed(earlier(now, setting.duration)), setting.log_head(tx)),
        )

    def horizon_in(self, tx: Transaction, *, after: int | None = None) -> Horizon | None:
        """The horizon recorded for this projection (None: none, nothing is skipped); with
        ``after`` 0 (its first batch), one begins now when none is recorded."""
        row = tx.fetchone(f"SELECT horizon, started_at, cutoff, until_position FROM {HORIZON} WHERE id = 1")
        if row is None and after == 0 and self.horizon is not None:
            self._begin(tx)
            row = tx.fetchone(f"SELECT horizon, started_at, cutoff, until_position FROM {HORIZON} WHERE id = 1")
        if row is None:
            return None
        setting, started_at, cutoff, until = row
        return Horizon(
            setting=setting, started_at=moment(started_at), cutoff=moment(cutoff), until=int(until), cutoff_text=fixed(cutoff)
        )

    def dump(self, tx: Transaction) -> list[tuple]:
        """The rows, without the horizon: like the position, it records when the projection began,
        not what it shows (two rebuilds at different times give the same rows)."""
        return [row for row in super().dump(tx) if row[0] != HORIZON]

    # --- one batch ---------------------------------------------------------------------------

    def apply(self, tx: Transaction, events: Sequence[LogEvent], *, after: int) -> None:
        horizon = self.horizon_in(tx, after=after)
        if horizon is not None and after >= horizon.until:
            horizon = None  # every event of the batch came after the projection began
        facts = self.source.facts
        grants = self._load_grants(tx, {e.originator_id for e in events if e.kind.startswith(ASSIGNMENT + ".")})
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
        requests = facts.requests_by_id(tx, {subject[1] for subject in subjects})
        users = self._users_of(tx, {subject[2] for subject in subjects if subject[2] is not None})
        planned = []
        for event, request_id, assignment_id, access_end in subjects:
            request = requests.get(request_id)
            if request is None:
                continue
            if assignment_id is None:
                plans = request_emails(event.kind, event.data, request)
            elif assignment_id in users:
                plans = assignment_emails(event.kind, event.data, users[assignment_id], request)
            else:
                continue
            planned += [(event, plan, request, assignment_id, access_end) for plan in plans]
        if planned:
            self._write(tx, planned, horizon)

    def _users_of(self, tx: Transaction, assignment_ids: set[str]) -> dict[str, str]:
        """Whose each assignment is (it never changes): one narrow read of the facts' table, which
        holds this batch's facts too (they are saved before the notifier runs)."""
        table = self.source.facts.assignments_table
        return dict(tx.fetch_where_in(f"SELECT assignment_id, user_id FROM {table}", "assignment_id", assignment_ids))

    def _load_grants(self, tx: Transaction, assignment_ids: set[str]) -> dict[str, tuple[str, str | None]]:
        rows = tx.fetch_where_in(f"SELECT assignment_id, request_id, access_end FROM {GRANTS}", "assignment_id", assignment_ids)
        return {aid: (request_id, end) for aid, request_id, end in rows}

    def _write(self, tx: Transaction, planned: list, horizon: Horizon | None) -> None:
        # an email's seq is its rank among its event's emails; the emails of an event older than
        # the horizon are skipped (kept as plans: their rows are formed straight from them)
        fresh = []  # (id, seq, event, plan, recipient, request, assignment id, access end)
        skipped = []  # (first seq, event, plan, request, assignment id)
        skips = False
        for index, (event, plan, request, assignment_id, access_end) in enumerate(planned):
            if index == 0 or planned[index - 1][0] is not event:
                seq = 0
                skips = horizon is not None and horizon.skips(event)
            if skips:
                skipped.append((seq, event, plan, request, assignment_id))
                seq += len(plan.recipients)
                continue
            for recipient in plan.recipients:
                fresh.append((email_id(event, plan.number, recipient), seq, event, plan, recipient, request, assignment_id, access_end))
                seq += 1
        # a replay or a rebuild meets emails already written (sent, pending, skipped...): they are
        # neither rendered nor touched, and a skipped one stays skipped. An email has its event's
        # position: when the outbox holds nothing between the batch's first and last, none is
        # written (one probe of the position index, instead of one lookup per email)
        first, last = planned[0][0].position, planned[-1][0].position
        written: set[str] = set()
        if tx.fetchone(f"SELECT 1 FROM {OUTBOX} WHERE position >= ? AND position <= ? LIMIT 1", (first, last)):
            written = {row[0] for row in tx.fetchall(f"SELECT id FROM {OUTBOX} WHERE position >= ? AND position <= ?", (first, last))}
            fresh = [email for email in fresh if email[0] not in written]
            skipped = [
                plan for plan in skipped if any(email_id(plan[1], plan[2].number, r) not in written for r in plan[2].recipients)
            ]
        if not skipped and not fresh:
            return
        people: set[str] = set()
        for _, _, plan, request, _ in skipped:  # only what their subjects and addresses need
            people.update(plan.recipients)
            people.add(request["requestor_id"])
        for _, _, event, plan, recipient, request, _, _ in fresh:
            people.update((recipient, request["requestor_id"], request["target_user_id"], event.data.get("actor") or ""))
        users = self.directory.get_many(tx, people)
        names = self.source.facts.names_of(
            tx, {plan[3]["access_package_id"] for plan in skipped} | {email[5]["access_package_id"] for email in fresh}
        )
        if skipped:
            self._insert_skipped(tx, self._skipped_rows(skipped, written, users, names), horizon.reason)
        if not fresh:
            return
        tx.insert_many(
            f"INSERT INTO {OUTBOX} ({', '.join(OUTBOX_COLUMNS)})",
            [self._row(*email, users, names) for email in fresh],
            conflict="ON CONFLICT (position, seq) DO NOTHING",
            types=OUTBOX_TYPES,
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
        created = stamp(event.timestamp)
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
            request.get("submitted_position"),
        )

    def _skipped_rows(self, skipped: list, written: set[str], users: dict, names: dict) -> list[tuple]:
        """What the emails of plans older than the horizon keep for the trail: their subjects and
        addresses, no bodies (they are never rendered); none of the ids ``written`` already. A
        subject is formed once per plan (its recipients share it), the time once per event. Rows of
        ``(id, position, seq, number, recipient_id, to_address, subject, request_id, assignment_id,
        created_at, request_position)``."""
        rows = []
        last_event = None
        for seq, event, plan, request, assignment_id in skipped:
            if event is not last_event:
                last_event, created, position = event, stamp(event.timestamp), event.position
            requestor_id = request["requestor_id"]
            requestor = (users.get(requestor_id) or {}).get("display_name") or requestor_id
            title = subject_line(plan.number, plan.due, requestor, names[request["access_package_id"]])
            request_id, request_position = request["id"], request.get("submitted_position")
            number, id_of = plan.number, email_ids(event, plan.number)
            for recipient in plan.recipients:
                identifier = id_of(recipient)
                if identifier not in written:
                    address = (users.get(recipient) or {}).get("email")
                    rows.append((identifier, position, seq, number, recipient, address, title, request_id, assignment_id, created,
                                 request_position))
                seq += 1
        return rows

    def _insert_skipped(self, tx: Transaction, rows: list[tuple], reason: str) -> None:
        """Inserts skipped emails (status ``skipped``, ``reason`` as their ``last_error``, empty
        bodies, never sent); emails already in the outbox are left as they are."""
        if not rows:
            return
        # in the order of the request index: its pages are visited in turn
        rows.sort(key=lambda row: (row[10] or 0, row[7] or "", row[1], row[2]))
        if tx.backend != "postgresql":
            # one parameter per column that varies (?1 to ?11, a row of _skipped_rows), the constants as literals
            tx.execute_many(
                f"INSERT INTO {OUTBOX} ({', '.join(OUTBOX_COLUMNS)})"
                f" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', '', ?8, ?9, '<' || ?1 || {sql_text('@' + self.mail_domain + '>')},"
                f" {sql_text(SKIPPED)}, 0, ?10, {sql_text(reason)}, ?10, NULL, ?11) ON CONFLICT (position, seq) DO NOTHING",
                rows,
            )
            return
        # PostgreSQL: none of them is in the outbox (the batch's probe), so one COPY, the fastest way
        # in; should another writer (a rebuild beside the projector) have added one since, or a
        # value need escaping, the rows go in with an INSERT that leaves the ones there as they are
        suffix = f"@{self.mail_domain}>"
        full = [
            (i, position, seq, number, recipient, address, title, "", "", request_id, assignment_id,
             f"<{i}{suffix}", SKIPPED, 0, created, reason, created, None, request_position)
            for i, position, seq, number, recipient, address, title, request_id, assignment_id, created, request_position in rows
        ]
        if not tx.copy_rows(OUTBOX, OUTBOX_COLUMNS, full):
            tx.insert_many(
                f"INSERT INTO {OUTBOX} ({', '.join(OUTBOX_COLUMNS)})",
                full,
                conflict="ON CONFLICT (position, seq) DO NOTHING",
                types=OUTBOX_TYPES,
            )

    # --- queries -----------------------------------------------------------------------------

    def outbox(
        self, tx: Transaction, *, request_id: str | None, to: str | None, limit: int, cursor: str | None
    ) -> Page:
        """The outbox, newest first; ``to`` is a user id or an email address."""
        conditions, params = ["1 = 1"], []
        if request_id:
            # by the index: the request's emails have the position of its submission (or none, in
            # an outbox written before that column)
            submitted = tx.fetchone(f"SELECT submitted_position FROM {self.source.facts.requests_table} WHERE request_id = ?", (request_id,))
            if submitted is None:
                conditions.append("request_position IS NULL AND request_id = ?")
            else:
                conditions.append("(request_position = ? OR request_position IS NULL) AND request_id = ?")
                params.append(int(submitted[0]))
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


OUTBOX_COLUMNS = (
    "id", "position", "seq", "number", "recipient_id", "to_address", "subject", "text_body", "html_body", "request_id",
    "assignment_id", "message_id", "status", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at",
    "request_position",
)
OUTBOX_TYPES = (
    "text", "bigint", "integer", "integer", "text", "text", "text", "text", "text", "text", "text", "text", "text",
    "integer", "text", "text", "text", "text", "bigint",
)

OUTBOX_ITEM = (
    "id", "number", "subject", "to_address", "recipient_id", "request_id", "assignment_id", "status", "attempts",
    "last_error", "message_id", "created_at", "sent_at",
)


def outbox_item(row: tuple) -> dict[str, Any]:
    item = dict(zip(OUTBOX_ITEM, row))
    item["to"] = item.pop("to_address")
    return item
