"""Fixtures for browser tests: Debian's Chromium driven by Playwright (sync API, headless).

- ``browser``: one Chromium for all of tests/browser (``ENTITLEMENTS_CHROMIUM``, default
  /usr/bin/chromium, which scripts/setup --browser installs; Playwright's own download is never
  used). Without it the tests skip, saying why; in CI (``CI`` set) or with ``REQUIRE_BROWSER=1``
  they fail instead.
- ``page`` (1280x900) and ``phone_page`` (390x844, touch, honours the page's meta viewport): a
  page in a fresh context (no cookies shared with any other page); ``new_page(...)`` for more,
  e.g. a requester and an approver signed in at once.
- ``shoot(page, name)``: saves test-artifacts/screenshots/<test node id>/NN-<name>.png. When a
  test fails, each of its open pages is saved there too (NN-failure-pageN.png), and the report
  names them, with what the pages logged as errors.
- ``live_server(app)``: serves a WSGI app on 127.0.0.1 on a free port; answers its base URL.
- ``mailbox`` (tests/conftest.py): a real SMTP server; ``wait_for_message`` and ``links_in`` in
  tests/browser/helpers.py read what it got.
- ``assert_accessible(page)`` (tests/browser/helpers.py): axe-core; serious and critical
  violations fail, lesser ones are listed at the end of the run.

Pages reach loopback only: a request to any other host is refused (and named in a failure's
report). Actions and assertions wait at most 10 s (Playwright's default is 30 s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import (
    CHROMIUM,
    LESSER_FINDINGS,
    SCREENSHOTS,
    LiveServer,
    Screenshots,
    browser_required,
    chromium_unavailable,
    launch_arguments,
    sanitized,
)

HERE = Path(__file__).resolve().parent
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Any request to a host other than loopback (a CDN, a font service) is refused: the tests use no
# network, and a page that needs one is a finding (listed with a failure as "blocked: URL").
NOT_LOOPBACK = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$))[a-z]+://")
_open_pages = pytest.StashKey[list[tuple[Any, list[str]]]]()
_screenshots = pytest.StashKey[Screenshots]()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """When a test fails, saves a screenshot of each page it has open, and adds them (and what
    the pages logged as errors) to its report as a section "browser at the failure"."""
    report = yield
    opened = item.stash.get(_open_pages, None)
    if report.when == "call" and report.failed and opened:
        lines = []
        for number, (context, errors) in enumerate(opened, start=1):
            for page in context.pages:
                try:
                    lines.append(f"page {number} {page.url}: {item.stash[_screenshots](page, f'failure-page{number}')}")
                except Exception as error:  # a crashed or hung page: say so and go on
                    lines.append(f"page {number}: no screenshot ({str(error).splitlines()[0]})")
            lines += [f"page {number} {line}" for line in errors]
        report.sections.append(("browser at the failure", "\n".join(lines)))
    return report


def pytest_terminal_summary(terminalreporter):
    if not LESSER_FINDINGS:
        return
    terminalreporter.section("accessibility: moderate and minor findings (not failing)", sep="-")
    for test, url, summary in LESSER_FINDINGS:
        terminalreporter.line(f"{test} {url}: {summary}")


# Package scope: one Chromium for every test under tests/browser, ended after the last of them.
# Not session scope, because while Playwright's sync API runs, its asyncio loop counts as running
# on the main thread, and asyncio.run() in any later test would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``)."""
    reason = chromium_unavailable()
    if reason:
        if browser_required():
            pytest.fail(f"{reason} (CI or REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, chromium_sandbox=False, args=launch_arguments()
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shoot(request) -> Screenshots:
    """``shoot(page, name, full_page=True) -> Path``: saves a PNG of the page under
    test-artifacts/screenshots/<this test's node id>/, numbered in order (01-name.png, ...)."""
    screenshots = Screenshots(SCREENSHOTS / sanitized(request.node.nodeid))
    request.node.stash[_screenshots] = screenshots
    return screenshots


@pytest.fixture
def new_page(request, browser, shoot) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=DESKTOP, **context_options) -> Page``: a page in a fresh browser context
    (Playwright's ``browser.new_context`` options), closed after the test. It reaches loopback only
    (other requests are refused). If the test fails, each open page is saved as a screenshot and
    its console errors and refused requests are added to the report."""
    opened: list[tuple[Any, list[str]]] = []
    request.node.stash[_open_pages] = opened

    def open_page(viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        context = browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        page.on("console", lambda message: message.type == "error" and errors.append(f"console: {message.text}"))

        def refuse(route: Any) -> None:
            errors.append(f"blocked: {route.request.url}")
            route.abort("blockedbyclient")

        context.route(NOT_LOOPBACK, refuse)
        opened.append((context, errors))
        return page

    yield open_page
    for context, _ in opened:
        context.close()


@pytest.fixture
def page(new_page) -> Any:
    """A 1280x900 page in a fresh context."""
    return new_page(DESKTOP)


@pytest.fixture
def phone_page(new_page) -> Any:
    """A 390x844 touch page in a fresh context, laid out as a phone would (it honours the page's
    <meta name="viewport">)."""
    return new_page(PHONE, is_mobile=True, has_touch=True)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], str]]:
    """``live_server(app, port=0) -> "http://127.0.0.1:PORT"``: serves a WSGI app (a Flask app) on
    ``port`` (0: a free one) from a background thread until the test ends. Call it once per app (the portal, a mock
    OpenID provider such as ``oidc_provider_mock.app()``, ...)."""
    servers: list[LiveServer] = []

    def serve(app: Any, port: int = 0) -> str:
        server = LiveServer(app, port)
        servers.append(server)
        return server.url

    yield serve
    for server in reversed(servers):
        server.stop()
