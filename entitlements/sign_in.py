"""Portal sign-in: one-time sign-in links and the sessions they (or OpenID Connect) open.

A **sign-in link** (``entitlements login-link USER_ID``) carries 32 random bytes; only their
SHA-256 is stored, with the user, when it was made and when it lapses (``LINK_VALID_FOR``, 15
minutes). Redeeming it marks it used in the same statement that checks it, so two browsers racing
with one link get one session between them.

A **session** is the same kind of secret, kept in the portal's signed cookie; its row says whose
it is, when it began, when it was last used and whether it was ended (Sign out). It lapses after
``IDLE_TIMEOUT`` without use and ``ABSOLUTE_TIMEOUT`` after it began, whatever the use. The web
layer reads its row on every page (one primary-key read) and the user's directory entry, so that
a session ended elsewhere, or a user removed from the directory, is refused at once.

Times here are the wall clock (``now``), not the application's clock: a manual clock moved a
month ahead for a demo must not sign everybody out, and a person's idleness is real time.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from entitlements.keyfiles import read_or_create
from entitlements.settings import ConfigurationError
from projections.deadlines import fixed, moment
from projections.store import ViewStore

LINK_PATH = "/sign-in/link/"  # + the secret: the portal page that signs in with a link
LINK_VALID_FOR = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per session

TABLES = (
    """CREATE TABLE IF NOT EXISTS portal_sign_in_links (
        link_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS portal_sessions (
        session_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL,
        ended_at TEXT,
        method TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS portal_sessions_user_id ON portal_sessions (user_id)",
)

# Why a link gives no session, in words for the page that says so.
LINK_UNKNOWN = "unknown"
LINK_USED = "used"
LINK_EXPIRED = "expired"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def system_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Redemption:
    """A link redeemed: ``user_id`` when it opened a session, else ``refused`` says why."""

    user_id: str | None
    refused: str | None = None


@dataclass(frozen=True)
class PortalSession:
    user_id: str
    created_at: datetime
    last_used_at: datetime
    method: str


class SignInStore:
    """Sign-in links and portal sessions, in the read-model database (tables of their own)."""

    def __init__(self, store: ViewStore, *, now: Callable[[], datetime] = system_now) -> None:
        self.store = store
        self.now = now
        with store.transaction() as tx:  # on PostgreSQL under the schema lock of build_services
            for statement in TABLES:
                tx.execute(statement)

    # --- links -------------------------------------------------------------------------------

    def issue_link(self, user_id: str) -> tuple[str, datetime]:
        """A new one-time link secret for ``user_id`` (who the caller checked exists), and when it lapses."""
        secret = secrets.token_urlsafe(32)
        now = self.now()
        expires_at = now + LINK_VALID_FOR
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO portal_sign_in_links (link_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (secret_hash(secret), user_id, fixed(now), fixed(expires_at)),
            )
        return secret, expires_at

    def link_url(self, base_url: str, secret: str) -> str:
        return f"{base_url.rstrip('/')}{LINK_PATH}{secret}"

    def link_user(self, secret: str) -> Redemption:
        """Whose the link is, without using it (the page that asks "sign in as ...?")."""
        with self.store.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT user_id, expires_at, used_at FROM portal_sign_in_links WHERE link_hash = ?", (secret_hash(secret),)
            )
        return self._judge(row)

    def redeem_link(self, secret: str) -> Redemption:
        """Uses the link once: the user whose it is, or why not (unknown, used, expired)."""
        now = fixed(self.now())
        with self.store.transaction() as tx:
            row = tx.fetchone(
                "UPDATE portal_sign_in_links SET used_at = ? WHERE link_hash = ? AND used_at IS NULL AND expires_at > ?"
                " RETURNING user_id",
                (now, secret_hash(secret), now),
            )
            if row is not None:
                return Redemption(row[0])
            row = tx.fetchone(
                "SELECT user_id, expires_at, used_at FROM portal_sign_in_links WHERE link_hash = ?", (secret_hash(secret),)
            )
        judged = self._judge(row)
        return judged if judged.refused else Redemption(None, LINK_USED)  # used between the two statements

    def _judge(self, row: tuple | None) -> Redemption:
        if row is None:
            return Redemption(None, LINK_UNKNOWN)
        user_id, expires_at, used_at = row
        if used_at is not None:
            return Redemption(None, LINK_USED)
        if moment(expires_at) <= self.now():
            return Redemption(None, LINK_EXPIRED)
        return Redemption(user_id)

    # --- sessions ----------------------------------------------------------------------------

    def start_session(self, user_id: str, *, method: str) -> str:
        """A new session for ``user_id``; answers its secret (for the cookie). ``method``:
        ``link`` or ``oidc``, kept for the operators."""
        secret = secrets.token_urlsafe(32)
        now = fixed(self.now())
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO portal_sessions (session_hash, user_id, created_at, last_used_at, method) VALUES (?, ?, ?, ?, ?)",
                (secret_hash(secret), user_id, now, now, method),
            )
        return secret

    def session(self, secret: str) -> PortalSession | None:
        """The live session of this secret, marked as used now; None when unknown, ended, idle
        for ``IDLE_TIMEOUT`` or older than ``ABSOLUTE_TIMEOUT``."""
        key = secret_hash(secret)
        with self.store.transaction(write=False) as tx:
            row = tx.fetchone(
                "SELECT user_id, created_at, last_used_at, ended_at, method FROM portal_sessions WHERE session_hash = ?", (key,)
            )
        if row is None or row[3] is not None:
            return None
        now = self.now()
        found = PortalSession(user_id=row[0], created_at=moment(row[1]), last_used_at=moment(row[2]), method=row[4])
        if now - found.last_used_at >= IDLE_TIMEOUT or now - found.created_at >= ABSOLUTE_TIMEOUT:
            return None
        if now - found.last_used_at >= TOUCH_EVERY:
            with self.store.transaction() as tx:
                tx.execute(
                    "UPDATE portal_sessions SET last_used_at = ? WHERE session_hash = ? AND ended_at IS NULL", (fixed(now), key)
                )
        return found

    def end_session(self, secret: str) -> None:
        """Sign out: the session is refused from now on, in every process."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE portal_sessions SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL",
                (fixed(self.now()), secret_hash(secret)),
            )


def session_secret(configured: str | None, key_file: str) -> str:
    """The key that signs portal cookies: ``ENTITLEMENTS_SECRET_KEY`` when set, else one made on
    first use and kept in ``key_file`` (``var/session-secret.key``), so that sessions outlive a
    restart and every web worker signs alike."""
    if configured:
        return long_enough(configured, "ENTITLEMENTS_SECRET_KEY")
    try:
        kept = read_or_create(key_file, lambda: secrets.token_urlsafe(48))
    except OSError as error:
        raise ConfigurationError(
            f"cannot keep the portal's session key in {key_file}: {error}; set ENTITLEMENTS_SECRET_KEY instead"
        ) from error
    return long_enough(kept, f"the session key in {key_file}", remedy=f"delete {key_file} to have a new one made")


# A shorter key could be guessed offline from one signed cookie; 32 characters of token_urlsafe
# hold 192 bits.
MIN_SECRET_KEY_LENGTH = 32


def long_enough(key: str, what: str, remedy: str = "set one of at least 32 characters") -> str:
    """``key`` when it is long enough to sign cookies; ``ConfigurationError`` saying so otherwise
    (an empty key would leave Flask with no sessions at all: every portal page would fail)."""
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"{what} has {len(key)} characters; a key that signs the portal's cookies needs at least"
            f" {MIN_SECRET_KEY_LENGTH}: {remedy} (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return key
