"""API tokens: ``entitlements tokens create USER_ID`` prints one; only its SHA-256 is stored.

A token is 32 random bytes (URL-safe text); a hash of such a secret needs no salt or slow hash,
since it cannot be guessed from a dictionary."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from projections.store import ViewStore

TABLE = """CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL
)"""
PREFIX = "ent_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, store: ViewStore) -> None:
        self.store = store
        with store.transaction() as tx:
            tx.execute(TABLE)

    def create(self, user_id: str, *, now: datetime) -> str:
        """A new token for ``user_id``; the caller checks that the user exists."""
        token = PREFIX + secrets.token_urlsafe(32)
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
                (token_hash(token), user_id, now.isoformat()),
            )
        return token

    def user_for(self, token: str) -> str | None:
        """The user a token belongs to, or None for an unknown token."""
        if not token:
            return None
        with self.store.transaction(write=False) as tx:
            row = tx.fetchone("SELECT user_id FROM api_tokens WHERE token_hash = ?", (token_hash(token),))
        return row[0] if row else None
