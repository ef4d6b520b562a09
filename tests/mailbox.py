"""Test helpers for talking over loopback: a real SMTP server (aiosmtpd; the ``mailbox`` fixture) and free ports."""

from __future__ import annotations

import socket
from email import message_from_bytes

from aiosmtpd.controller import Controller


class Mailbox:
    """An aiosmtpd handler: keeps what it accepts; refuses the first ``refusals`` with ``reply``."""

    def __init__(self) -> None:
        self.messages = []
        self.refusals = 0
        self.reply = "451 4.3.0 try again later"

    async def handle_DATA(self, server, session, envelope):
        if self.refusals:
            self.refusals -= 1
            return self.reply
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def running_mailbox():
    """Starts a server on a free port; yields its Mailbox (``.url``: its smtp:// URL)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.url = f"smtp://127.0.0.1:{controller.port}"
    yield box
    controller.stop()
