"""API tokens: ``entitlements tokens create USER_ID`` prints one; only its SHA-256 is stored.

A token is 32 random bytes (URL-safe text); a hash of such a secret needs no salt or slow hash,
since it cannot be guessed from a dictionary. Beside the hash each token has a public id
(``tok_`` and 12 hex digits) that names it in ``tokens list`` and ``tokens revoke`` and in the
401 answers; the id reveals nothing of the token.

A token may expire (``expires_at``, in the application's time: the manual clock when there is one)
and may be revoked (``revoked_at``); either way it is refused at once, in every process, since
the web layer reads the token's row on every request (one primary-key read).

Tables made before expiry existed gain the columns on start-up (SQLite and PostgreSQL); their
tokens get an id and no expiry: they keep working until revoked (``tokens list`` shows them as
expiring ``never``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.durations import parse_duration
from projections.deadlines import fixed, moment
from projections.store import Transaction, ViewStore

TABLE = """CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    token_id TEXT,
    expires_at TEXT,
    revoked_at TEXT
)"""
ADDED_COLUMNS = ("token_id", "expires_at", "revoked_at")  # added to tables made before them
INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_token_id ON api_tokens (token_id)",
    "CREATE INDEX IF NOT EXISTS api_tokens_user_id ON api_tokens (user_id)",
)
PREFIX = "ent_"
ID_PREFIX = "tok_"
DEFAULT_EXPIRES_IN = "P90D"  # the command line's default (``tokens create --expires-in``)
NEVER = "never"

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"
COLUMNS = "token_id, user_id, created_at, expires_at, revoked_at"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_expires_in(text: str) -> timedelta | None:
    """``P90D`` -> 90 days, ``never`` -> None; ``ValueError`` with the reason otherwise (ISO 8601
    durations without years or months, from one second to 100 years, as in the tenant file)."""
    text = text.strip()
    if text.lower() == NEVER:
        return None
    return parse_duration(text)


class UnknownToken(LookupError):
    def __init__(self, token_ids: list[str]) -> None:
        self.token_ids = token_ids
        names = ", ".join(repr(token_id) for token_id in token_ids)
        super().__init__(f"no API token {names} (see `entitlements tokens list USER_ID`)")


@dataclass(frozen=True)
class TokenInfo:
    """What is known of a token apart from its secret."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime | None  # None: never expires
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``revoked``, ``expired`` (at or after ``expires_at``) or ``active``."""
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        return ACTIVE

    @classmethod
    def from_row(cls, row: tuple) -> "TokenInfo":
        token_id, user_id, created_at, expires_at, revoked_at = row
        return cls(
            id=token_id,
            user_id=user_id,
            created_at=moment(created_at),
            expires_at=moment(expires_at) if expires_at else None,
            revoked_at=moment(revoked_at) if revoked_at else None,
        )


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the secret: shown once, never stored
    info: TokenInfo


class TokenStore:
    def __init__(self, store: ViewStore) -> None:
        self.store = store
        with store.transaction() as tx:  # on PostgreSQL under the schema lock of build_services
            tx.execute(TABLE)
            _add_missing_columns(tx)
            for statement in INDEXES:
                tx.execute(statement)

    def issue(self, user_id: str, *, now: datetime, expires_in: timedelta | None) -> IssuedToken:
        """A new token for ``user_id``, valid from ``now`` for ``expires_in`` (None: until
        revoked); the caller checks that the user exists."""
        token = PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=new_token_id(),
            user_id=user_id,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            revoked_at=None,
        )
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_at, token_id, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    token_hash(token),
                    user_id,
                    fixed(info.created_at),
                    info.id,
                    fixed(info.expires_at) if info.expires_at is not None else None,
                ),
            )
        return IssuedToken(token, info)

    def create(self, user_id: str, *, now: datetime, expires_in: timedelta | None = None) -> str:
        """The text of a new token (:meth:`issue`). Without ``expires_in`` it never expires: the
        command line, not this method, applies the default ``DEFAULT_EXPIRES_IN``."""
        return self.issue(user_id, now=now, expires_in=expires_in).token

    def find(self, token: str) -> TokenInfo | None:
        """The token's row (one primary-key read), whatever its state; None for an unknown one."""
        if not token:
            return None
        with self.store.transaction(write=False) as tx:
            row = tx.fetchone(f"SELECT {COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash(token),))
        return TokenInfo.from_row(row) if row else None

    def user_for(self, token: str, *, now: datetime) -> str | None:
        """The user of a token that is active at ``now``; None for an unknown, expired or revoked one."""
        info = self.find(token)
        return info.user_id if info is not None and info.state(now) == ACTIVE else None

    def list(self, user_id: str) -> list[TokenInfo]:
        """The user's tokens, oldest first, revoked and expired ones included."""
        with self.store.transaction(write=False) as tx:
            rows = tx.fetchall(f"SELECT {COLUMNS} FROM api_tokens WHERE user_id = ?", (user_id,))
        return sorted((TokenInfo.from_row(row) for row in rows), key=lambda info: (info.created_at, info.id))

    def revoke(self, token_ids: list[str], *, now: datetime) -> list[tuple[TokenInfo, bool]]:
        """Revokes the tokens named by id, all or none (``UnknownToken`` names the unknown ones).
        Answers each token as it is now, with whether this call revoked it (False: it already was)."""
        token_ids = list(dict.fromkeys(token_ids))
        with self.store.transaction() as tx:
            found = {
                row[0]: TokenInfo.from_row(row)
                for row in tx.fetch_where_in(f"SELECT {COLUMNS} FROM api_tokens", "token_id", token_ids)
            }
            unknown = [token_id for token_id in token_ids if token_id not in found]
            if unknown:
                raise UnknownToken(unknown)
            results = []
            for token_id in token_ids:
                info = found[token_id]
                if info.revoked_at is not None:
                    results.append((info, False))
                    continue
                tx.execute(
                    "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                    (fixed(now), token_id),
                )
                results.append((TokenInfo(info.id, info.user_id, info.created_at, info.expires_at, now), True))
        return results


def new_token_id() -> str:
    return ID_PREFIX + secrets.token_hex(6)


def _add_missing_columns(tx: Transaction) -> None:
    """The migration of tables made before tokens had ids, expiry and revocation: adds the columns
    and gives each old token an id (old tokens keep no expiry)."""
    if tx.backend == "postgresql":  # looked up first: ALTER TABLE locks the table even when it changes nothing
        rows = tx.fetchall(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'api_tokens' AND table_schema = current_schema()"
        )
        present = {row[0] for row in rows}
    else:
        present = {row[1] for row in tx.fetchall("PRAGMA table_info(api_tokens)")}
    for column in ADDED_COLUMNS:
        if column not in present:
            tx.execute(f"ALTER TABLE api_tokens ADD COLUMN {column} TEXT")
    for (key,) in tx.fetchall("SELECT token_hash FROM api_tokens WHERE token_id IS NULL"):
        tx.execute("UPDATE api_tokens SET token_id = ? WHERE token_hash = ?", (new_token_id(), key))
