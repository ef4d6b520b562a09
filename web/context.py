"""What the views of one app work with, kept on the Flask app by ``create_app``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from entitlements.bootstrap import Services

EXTENSION = "entitlements"


class RecentCallers:
    """The directory entries of recent callers, by user id, for a few seconds: a request then
    needs no directory look-up of its own. A role change in the directory takes effect within
    ``ttl``. Tokens are not remembered here: each request reads its token's row, so that a
    revoked or expired token is refused at once."""

    def __init__(self, *, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] < time.monotonic():
                return None
            return entry[1]

    def remember(self, key: str, user: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, user)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class WebContext:
    services: Services
    project_inline: bool  # no projector process: reads that need newer read models project themselves
    read_wait_seconds: float  # how long a read with X-Min-Position waits for the projector
    callers: RecentCallers = field(default_factory=RecentCallers)


def web_context() -> WebContext:
    return current_app.extensions[EXTENSION]


def services() -> Services:
    return web_context().services
