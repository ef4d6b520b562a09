"""Delivers the outbox over SMTP, each email once, with retries on temporary failures.

The sender reads a batch of due emails without claiming them, then takes them one at a time: just
before an email is handed to the SMTP server it is marked in flight (status ``sending``, with a
lease of its own, the attempt counted) by one small UPDATE that only succeeds while the email is
still due and unchanged, so that two senders never both take it. Once the server answered, the
email is marked ``sent`` (or back to ``pending`` / ``failed``). If the process dies, the emails of
its batch that it had not reached are still due and go out on the next round; only the one in
flight waits for its lease, then is sent again with the same Message-ID, so that mail systems can
recognise the duplicate, and with its attempts counting both tries.

Temporary failures (4xx replies, a server that cannot be reached or hangs up) are retried with
exponential backoff up to ``max_attempts``; permanent ones (5xx replies, no address) fail at once.
Each email keeps its status, its attempts and the last error in the outbox.

Only ``pending`` and ``sending`` emails are ever read or claimed (``DUE``): an email the notifier
skipped (``skipped``: older than its horizon when it first projected the history) is never sent,
and has no body to send.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import parse_qs, unquote, urlsplit

from domain.clock import Clock
from projections.configuration import ConfigurationError
from notifier.projection import DUE, DUE_SQL, FAILED, OUTBOX, PENDING, SENDING, SENT
from projections.deadlines import fixed
from projections.store import ViewStore

log = logging.getLogger(__name__)

BATCH = 50
MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=5)  # an email in flight (handed to SMTP) not marked by then is sent again


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        """``smtp://[user:password@]host[:port][?starttls=true]`` or ``smtps://...`` (TLS from
        the start, port 465 by default)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(
                f"ENTITLEMENTS_SMTP_URL must look like smtp://host:port or smtps://user:password@host, not {url!r}"
            )
        try:
            port = parts.port
        except ValueError as error:
            raise ConfigurationError(f"ENTITLEMENTS_SMTP_URL has a bad port: {url!r}") from error
        ssl = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=port or (465 if ssl else 25),
            ssl=ssl,
            starttls=(query.get("starttls") or ["false"])[0].lower() in ("1", "true", "yes"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def connect(self) -> smtplib.SMTP:
        kind = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        connection = kind(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                connection.starttls()
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        return connection


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


def classify(error: Exception) -> Exception:
    """A delivery error as a temporary or a permanent failure, with a readable message."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(error.recipients.values()))
        text = f"{code} {message.decode(errors='replace') if isinstance(message, bytes) else message}"
        return TemporaryFailure(text) if 400 <= code < 500 else PermanentFailure(text)
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        text = f"{error.smtp_code} {message.decode(errors='replace') if isinstance(message, bytes) else message}"
        return TemporaryFailure(text) if 400 <= error.smtp_code < 500 else PermanentFailure(text)
    if isinstance(error, (smtplib.SMTPException, OSError)):  # disconnected, refused, timed out
        return TemporaryFailure(f"{type(error).__name__}: {error}".rstrip(": "))
    return PermanentFailure(f"{type(error).__name__}: {error}")


def connection_lost(error: Exception) -> bool:
    """The SMTP connection is unusable after ``error`` (smtplib's errors are OSErrors too)."""
    return isinstance(error, smtplib.SMTPServerDisconnected) or (
        isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)
    )


class Sender:
    """Delivers due emails of the outbox in ``store`` to ``server``, as ``mail_from``."""

    def __init__(
        self,
        store: ViewStore,
        server: SmtpServer,
        clock: Clock,
        *,
        mail_from: str,
        batch: int = BATCH,
        max_attempts: int = MAX_ATTEMPTS,
        first_delay: timedelta = FIRST_DELAY,
        max_delay: timedelta = MAX_DELAY,
        lease: timedelta = LEASE,
    ) -> None:
        self.store = store
        self.server = server
        self.clock = clock
        self.mail_from = mail_from
        self.batch = batch
        self.max_attempts = max_attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.lease = lease

    def delay(self, attempts: int) -> timedelta:
        """The wait before attempt ``attempts + 1``: 30 s, 1 min, 2 min ... at most an hour."""
        return min(self.first_delay * (2 ** (attempts - 1)), self.max_delay)

    # --- one round ---------------------------------------------------------------------------

    def send_due(self) -> SendReport:
        """Sends every email due now, in batches; returns what happened."""
        report = SendReport()
        while True:
            due = self._due()
            if not due or not self._deliver(due, report) or len(due) < self.batch:
                return report

    def _due(self) -> list[tuple]:
        """The next emails due, read without claiming them (each is claimed when it is its turn)."""
        with self.store.transaction(write=False) as tx:
            return tx.fetchall(
                f"SELECT id, to_address, subject, text_body, html_body, message_id, attempts, number FROM {OUTBOX}"
                f" WHERE {DUE_SQL} AND next_attempt_at <= ? ORDER BY next_attempt_at, position, seq"
                f" LIMIT {int(self.batch)}",  # the predicate spelled as the partial index's: it is used
                (fixed(self.clock.now()),),
            )

    def _deliver(self, due: list[tuple], report: SendReport) -> bool:
        """Sends ``due`` one by one; False when the server cannot be reached (the round ends)."""
        connection: smtplib.SMTP | None = None
        try:
            for index, (email_id, address, subject, text, html, message_id, attempts, number) in enumerate(due):
                if connection is None and address:
                    try:
                        connection = self.server.connect()
                    except Exception as error:  # noqa: BLE001 - unreachable, refused, bad login
                        # not the emails' fault: they all wait for the next round, no attempt counted
                        reason = f"cannot connect to {self.server.host}:{self.server.port}: {classify(error)}"
                        log.error("%s", reason)
                        self._release([row[0] for row in due[index:]], reason)
                        return False
                if attempts >= self.max_attempts:  # in flight that often: each try ended the sender
                    stopped = PermanentFailure(f"the sender stopped while handing it to the server {attempts} times")
                    self._failed(email_id, attempts, stopped, report)
                    continue
                if not self._in_flight(email_id, attempts):
                    continue  # another sender took it, or it is no longer due
                attempts += 1
                try:
                    if not address:
                        raise PermanentFailure("no email address")
                    message = self._message(address, subject, text, html, message_id, number)
                    connection.send_message(message, from_addr=self.mail_from, to_addrs=[address])
                except Exception as error:  # noqa: BLE001 - every failure is recorded on the email
                    failure = error if isinstance(error, (TemporaryFailure, PermanentFailure)) else classify(error)
                    self._failed(email_id, attempts, failure, report)
                    if connection is not None and connection_lost(error):
                        connection.close()
                        connection = None
                    if connection is None and isinstance(failure, TemporaryFailure):
                        # the server cannot be reached: leave the rest of the batch for the next round
                        self._release([row[0] for row in due[index + 1 :]], str(failure))
                        return False
                    continue
                self._sent(email_id, report)
            return True
        finally:
            if connection is not None:
                try:
                    connection.quit()
                except (smtplib.SMTPException, OSError):
                    connection.close()

    def _in_flight(self, email_id: str, attempts: int) -> bool:
        """Claims one email just before it is handed to the server: ``sending`` with a lease of its
        own and the attempt counted, only if it is still due with the ``attempts`` read (so two
        senders never both take it). One small UPDATE; True when this sender has it."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            claimed = tx.fetchall(
                f"UPDATE {OUTBOX} SET status = ?, attempts = ?, next_attempt_at = ?"
                f" WHERE id = ? AND attempts = ? AND {DUE_SQL} AND next_attempt_at <= ? RETURNING id",
                (SENDING, attempts + 1, fixed(now + self.lease), email_id, attempts, fixed(now)),
            )
        return bool(claimed)

    def _message(self, address: str, subject: str, text: str, html: str, message_id: str, number: int) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = address
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(self.clock.now())
        message["X-Entitlements-Email"] = str(number)
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def _sent(self, email_id: str, report: SendReport) -> None:
        with self.store.transaction() as tx:  # the attempt was counted when it went in flight
            tx.execute(
                f"UPDATE {OUTBOX} SET status = ?, sent_at = ?, last_error = NULL WHERE id = ? AND {DUE_SQL}",
                (SENT, fixed(self.clock.now()), email_id),
            )
        report.sent += 1

    def _failed(self, email_id: str, attempts: int, failure: Exception, report: SendReport) -> None:
        now = self.clock.now()
        give_up = isinstance(failure, PermanentFailure) or attempts >= self.max_attempts
        with self.store.transaction() as tx:
            tx.execute(
                f"UPDATE {OUTBOX} SET status = ?, next_attempt_at = ?, last_error = ?"
                f" WHERE id = ? AND status = ? AND attempts = ? AND {DUE_SQL}",  # still this sender's claim
                (
                    FAILED if give_up else PENDING,
                    fixed(now if give_up else now + self.delay(attempts)),
                    str(failure),
                    email_id,
                    SENDING,
                    attempts,
                ),
            )
        if give_up:
            report.failed += 1
            log.warning("email %s failed after %d attempt(s): %s", email_id, attempts, failure)
        else:
            report.retried += 1

    def _release(self, ids: list[str], reason: str) -> None:
        """Puts due emails off to a later round, without counting an attempt (not those another
        sender has in flight meanwhile)."""
        if not ids:
            return
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.execute(
                f"UPDATE {OUTBOX} SET status = ?, next_attempt_at = ?, last_error = ?"
                f" WHERE id IN {tx.in_list(ids)} AND {DUE_SQL} AND next_attempt_at <= ?",
                (PENDING, fixed(now + self.first_delay), reason, *ids, fixed(now)),
            )

    # --- following ---------------------------------------------------------------------------

    def follow(self, stop: threading.Event, *, interval: float = 1.0) -> None:
        """Sends what is due until ``stop`` is set, looking again every ``interval`` seconds."""
        while not stop.is_set():
            try:
                self.send_due()
            except Exception:  # keep going: the database may be back next round
                log.exception("sending the outbox failed; retrying")
            stop.wait(interval)
