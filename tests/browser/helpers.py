"""Helpers for browser tests: the Chromium they drive, a WSGI app served on loopback, screenshots,
accessibility checks (axe-core, bundled in axe-playwright-python: nothing is fetched), and mail.

Fixtures that use these are in tests/browser/conftest.py; tests import the plain functions:
``from tests.browser.helpers import assert_accessible, wait_for_message, links_in``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("ENTITLEMENTS_CHROMIUM") or "/usr/bin/chromium"

# --- the browser -------------------------------------------------------------------------------


def browser_required() -> bool:
    """In CI (CI set, other than 0/false) or with REQUIRE_BROWSER=1, a missing Chromium fails the
    browser tests instead of skipping them."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        return True
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def chromium_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"Chromium is not installed at {CHROMIUM} (scripts/setup --browser, which scripts/test runs, "
        "installs Debian's chromium; ENTITLEMENTS_CHROMIUM=/path names another)"
    )


def launch_arguments() -> list[str]:
    # Chromium's sandbox refuses to start as root (CI and these machines run as root).
    return ["--no-sandbox"] if os.geteuid() == 0 else []


# --- a WSGI app on loopback --------------------------------------------------------------------


def closed_before_sent(app: Any) -> Any:
    """``app``, its answers read whole and closed before werkzeug's server sends them. When the
    browser drops a connection mid-answer (a page left while its stylesheet loads), that server
    can skip closing the answer, and the static file it was sending is left open: a
    ResourceWarning, which fails whichever test is running then. The portal's answers are small."""

    def answer(environ: dict, start_response: Any) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return answer


class LiveServer:
    """Serves a WSGI app on 127.0.0.1, on a free port, from a background thread (werkzeug's threaded
    server: one thread a request, so a page's parallel requests and a test's own calls are served
    at once). ``url`` is its base URL, without a trailing slash."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", port, closed_before_sent(app), threaded=True)
        self.port: int = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"live-server-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- screenshots -------------------------------------------------------------------------------


def sanitized(text: str, limit: int = 150) -> str:
    """A file-name-safe form of a test node id or a screenshot name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"
    return name[:limit]


@dataclass
class Screenshots:
    """The screenshots of one test: ``test-artifacts/screenshots/<node id>/NN-<name>.png``, numbered
    in the order they were taken. The folder is emptied when the test starts (made on first use)."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    def path_for(self, name: str) -> Path:
        if not self.taken and self.directory.exists():
            for old in self.directory.glob("*.png"):
                old.unlink()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.taken) + 1:02d}-{sanitized(name, 80)}.png"
        self.taken.append(path)
        return path

    def __call__(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        """Saves a screenshot of ``page`` (the whole page unless ``full_page=False``); answers its path."""
        path = self.path_for(name)
        page.screenshot(path=str(path), full_page=full_page)
        return path


# --- accessibility -----------------------------------------------------------------------------

FAILING_IMPACTS = ("critical", "serious")
# Findings of lesser impact on pages that passed, as (test node id, page URL, summary line): the
# browser conftest prints them at the end of the run (they do not fail a test).
LESSER_FINDINGS: list[tuple[str, str, str]] = []
_axe = None


def _targets(node: dict, limit: int) -> list[str]:
    return [" >>> ".join(t) if isinstance(t, list) else str(t) for t in node.get("target", [])][:limit]


def _describe(violation: dict, targets: int = 3) -> str:
    nodes = violation.get("nodes", [])
    selectors = [s for node in nodes[:targets] for s in _targets(node, 1)]
    more = f" (and {len(nodes) - len(selectors)} more)" if len(nodes) > len(selectors) else ""
    return (
        f"{violation['id']} ({violation.get('impact') or 'minor'}): {violation.get('help', '')}"
        f" [{', '.join(selectors)}{more}] {violation.get('helpUrl', '')}".rstrip()
    )


def axe_violations(page: Any, *, context: str | None = None, disable: tuple[str, ...] = ()) -> list[dict]:
    """Runs axe-core on the page as it is now; answers its violations (dicts as axe reports them).
    ``context``: a CSS selector to check only that part; ``disable``: rule ids not to run."""
    global _axe
    if _axe is None:
        from axe_playwright_python.sync_playwright import Axe

        _axe = Axe()
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    return _axe.run(page, context=context, options=options).response["violations"]


def assert_accessible(page: Any, *, context: str | None = None, disable: tuple[str, ...] = ()) -> list[dict]:
    """Fails, listing them, when axe-core finds violations of serious or critical impact on the
    page (id, impact, help, the first selectors it matched, the rule's help URL). Violations of
    moderate or minor impact do not fail: they are listed at the end of the run, and answered."""
    violations = axe_violations(page, context=context, disable=disable)
    failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    lesser = [v for v in violations if v.get("impact") not in FAILING_IMPACTS]
    if failing:
        lines = [f"{len(failing)} serious or critical accessibility violation(s) on {page.url}:"]
        lines += [f"  - {_describe(v)}" for v in failing]
        if lesser:
            lines.append("and, not failing:")
            lines += [f"  - {_describe(v)}" for v in lesser]
        raise AssertionError("\n".join(lines))
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    LESSER_FINDINGS.extend((test, page.url, _describe(v)) for v in lesser)
    return lesser


# --- mail (the ``mailbox`` fixture of tests/conftest.py: a real SMTP server, tests/mailbox.py) ---


def wait_for_message(mailbox: Any, *, to: str | None = None, after: int = 0, timeout: float = 10.0) -> Message:
    """The first message the mailbox accepted (after the first ``after`` ones) addressed to ``to``
    (any recipient when None), waiting up to ``timeout`` seconds for it to arrive."""
    deadline = time.monotonic() + timeout
    while True:
        for recipients, message in list(mailbox.messages)[after:]:
            if to is None or to in recipients:
                return message
        if time.monotonic() > deadline:
            got = [(r, m.get("Subject")) for r, m in mailbox.messages]
            raise AssertionError(f"no message to {to or 'anyone'} within {timeout}s; the mailbox has {got}")
        time.sleep(0.05)


def message_text(message: Message) -> str:
    """The text/plain body of a message (the first text part of a multipart one)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"message {message.get('Subject')!r} has no text/plain part")


def links_in(message: Message) -> list[str]:
    """The http(s) URLs in a message's text, in order."""
    return re.findall(r"https?://[^\s<>\"')]+", message_text(message))
