"""What the views of one app work with, kept on the Flask app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from entitlements.bootstrap import Services

EXTENSION = "entitlements"


@dataclass(frozen=True)
class WebContext:
    services: Services
    project_inline: bool  # no projector process: reads that need newer read models project themselves
    read_wait_seconds: float  # how long a read with X-Min-Position waits for the projector


def web_context() -> WebContext:
    return current_app.extensions[EXTENSION]


def services() -> Services:
    return web_context().services
