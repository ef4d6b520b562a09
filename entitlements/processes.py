"""The long-running parts of entitlements: rebuilding, projecting, scheduling, sending, serving.

``serve`` is the embedded mode (one process: WSGI server, projections, scheduler and sender);
``web``, ``project``, ``schedule`` and ``send`` run the parts alone, for several web workers and one
process of each other part on one PostgreSQL."""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import click
from tqdm import tqdm

from entitlements.bootstrap import Services, build_services
from entitlements.settings import ConfigurationError, Settings
from projections.read_models import check_names

T = TypeVar("T")

log = logging.getLogger(__name__)


def rebuild(settings: Settings, names: list[str], *, quiet: bool = False) -> None:
    names = check_names(names) if names else []
    services = build_services(settings)
    try:
        head = services.read_models.head()
        label = ", ".join(names) if names else "all read models"
        with tqdm(
            total=head,
            unit="ev",
            unit_scale=True,
            desc=f"rebuilding {label}",
            disable=quiet,
            file=sys.stderr,
            dynamic_ncols=True,
        ) as bar:

            def progress(passed: int, position: int) -> None:
                bar.update(min(passed, max(0, head - bar.n)))

            result = services.read_models.rebuild(names or None, progress=progress)
        click.echo(
            f"rebuilt {', '.join(result.names)}: {result.events} log events in {result.seconds:.2f} s"
            f" ({result.events_per_second:,.0f} events/s)"
        )
    finally:
        services.close()


@contextmanager
def _in_background(
    name: str, follow: Callable[..., None], *, interval: float, join_timeout: float, woken: Callable[[], None] | None = None
) -> Iterator[threading.Thread]:
    """Runs ``follow(stop, interval=...)`` in a daemon thread while the block runs, then stops it
    (``woken`` interrupts its wait) and gives it ``join_timeout`` seconds to finish its batch."""
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(stop,), kwargs={"interval": interval}, name=name, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        if woken is not None:
            woken()
        thread.join(timeout=join_timeout)


@contextmanager
def following(services: Services, *, interval: float = 0.2) -> Iterator[threading.Thread]:
    """The read models follow the log in a background thread while the block runs."""
    projector = services.read_models.projector
    with _in_background("projections", projector.follow, interval=interval, join_timeout=10, woken=projector.wake) as thread:
        yield thread


@contextmanager
def sending(services: Services, *, interval: float = 1.0) -> Iterator[threading.Thread | None]:
    """The outbox is sent over SMTP in a background thread while the block runs (nothing happens
    without ``ENTITLEMENTS_SMTP_URL``: emails stay in the outbox)."""
    sender = services.sender()
    if sender is None:
        yield None
        return
    with _in_background("sender", sender.follow, interval=interval, join_timeout=35) as thread:
        yield thread


@contextmanager
def scheduling(services: Services, *, interval: float = 1.0) -> Iterator[threading.Thread]:
    """The scheduler runs the due deadlines in a background thread while the block runs."""
    with _in_background("scheduler", services.scheduler.follow, interval=interval, join_timeout=35) as thread:
        yield thread


def follow_checkpoints(services: Services, stop: threading.Event, *, interval: float = 5.0) -> None:
    """Records a signed checkpoint of the log whenever one is due (``projections.log_tree``:
    every 1,000 events, or 10 minutes after the last when anything was recorded since)."""
    last_error = None
    while not stop.is_set():
        try:
            services.log_tree.record(force=False)
            last_error = None
        except Exception as error:  # the database or the key file: said once, retried
            text = f"{type(error).__name__}: {error}"
            if text != last_error:
                log.error("recording a checkpoint of the log failed (%s); retrying", text)
            last_error = text
        stop.wait(interval)


@contextmanager
def checkpointing(services: Services, *, interval: float = 5.0) -> Iterator[threading.Thread]:
    """Signed checkpoints of the log are recorded in a background thread while the block runs."""
    follow = functools.partial(follow_checkpoints, services)
    with _in_background("checkpoints", follow, interval=interval, join_timeout=35) as thread:
        yield thread


def tick(settings: Settings) -> bool:
    """Runs the deadlines due now once; prints what it did. False when a deadline failed."""
    services = build_services(settings)
    try:
        report = services.scheduler.tick()
        for item in report.outcomes:
            if item.outcome != "skipped":
                line = f"{item.outcome:7} {item.kind} {item.subject_id}" + (f" (stage {item.stage})" if item.stage else "")
                click.echo(line + (f": {item.state}" if item.state else "") + (f": {item.detail}" if item.outcome == "failed" else ""))
        click.echo(f"{report.summary()} at {services.app.clock.now().isoformat()}", err=True)
        return not report.failed
    finally:
        services.close()


def schedule(settings: Settings, *, interval: float) -> None:
    """Runs the due deadlines continuously, every ``interval`` seconds."""
    services = build_services(settings)
    _stop_on_sigterm()
    try:
        click.echo(
            f"running the deadlines of {settings.database_url} every {interval:g} s and recording signed checkpoints"
            " of its log; Ctrl-C to stop",
            err=True,
        )
        with checkpointing(services):
            _until_interrupted(services.scheduler.follow, interval=interval)
    finally:
        services.close()


def send(settings: Settings, *, once: bool, interval: float) -> None:
    """Delivers the outbox over SMTP: what is due now (``once``), or continuously."""
    if not settings.smtp_url:
        raise ConfigurationError("ENTITLEMENTS_SMTP_URL is not set: there is nowhere to send the outbox to")
    services = build_services(settings)
    _stop_on_sigterm()
    try:
        sender = services.sender()
        assert sender is not None
        if once:
            report = sender.send_due()
            click.echo(f"sent {report.sent}, to retry {report.retried}, failed {report.failed}", err=True)
            return
        click.echo(f"sending the outbox of {settings.database_url} to {settings.smtp_url}; Ctrl-C to stop", err=True)
        _until_interrupted(sender.follow, interval=interval)
    finally:
        services.close()


def _until_interrupted(follow: Callable[..., None], *, interval: float) -> None:
    """Runs ``follow(stop, interval=...)`` in this thread until Ctrl-C or ``kill`` (SIGTERM)."""
    stop = threading.Event()
    try:
        follow(stop, interval=interval)
    except KeyboardInterrupt:
        stop.set()


def _stop_on_sigterm() -> None:
    """``kill`` (SIGTERM) ends the process like Ctrl-C: the current batch commits or rolls back."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def project(settings: Settings, *, interval: float = 0.2, names: list[str] | None = None) -> None:
    """Follows the log with the read models ``names`` (all when None or empty)."""
    names = check_names(names) if names else []
    services = build_services(settings)
    _stop_on_sigterm()
    try:
        projector = services.read_models.projector_for(names) if names else services.read_models.projector
        click.echo(
            f"projecting {', '.join(model.name for model in projector.models)} from {settings.database_url}"
            f" (head {services.read_models.head()}); Ctrl-C to stop",
            err=True,
        )
        _until_interrupted(projector.follow, interval=interval)
    finally:
        services.close()


def settled(app: T) -> T:
    """``app``, with everything made so far (the application, its caches, the OpenAPI document:
    about 90,000 objects, some holding large dicts) moved out of the garbage collector's reach.
    They live as long as the process, yet every full collection walked them: 50 ms with every
    request of the process waiting, which was most of the slowest answers' time under load
    (``scripts/bench_audit``). Objects made later are collected as always."""
    gc.collect()
    gc.freeze()
    return app


WORKERS_KILL_TIMEOUT = 10  # seconds `entitlements web` waits for a worker to stop before killing it
# The settings of `entitlements web`, for its worker processes (which make their app themselves).
WEB_SETTINGS_VARIABLE = "ENTITLEMENTS_WEB_WORKER_SETTINGS"


def web(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Several worker processes, each with its own connections, reading the read models that
    ``entitlements project`` keeps up to date. The HTTP server is granian (its HTTP handling is
    in Rust): each worker runs the WSGI app in ``threads`` Python threads. It took the place of
    gunicorn's threaded workers, whose Python HTTP handling cost each call about three times what
    Flask did for ``/healthz``, on cores the app needs (``scripts/bench_audit``)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    probe = build_services(settings)  # a bad database URL or session key is a clear error here, before the workers
    try:
        probe.secret_key()
    finally:
        probe.close()
    os.environ[WEB_SETTINGS_VARIABLE] = json.dumps(dataclasses.asdict(settings))
    click.echo(
        f"entitlements portal at http://{host}:{port}/ and API at /api/v1 ({workers} worker(s) x {threads} thread(s)); Ctrl-C to stop",
        err=True,
    )
    Granian(
        "entitlements.processes:web_worker_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        log_access=False,
        log_level=LogLevels.warning,
        respawn_failed_workers=True,
        # a worker still starting when SIGTERM comes misses it and would serve on, with the
        # command waiting for it forever: it is killed after this many seconds (in-flight calls
        # of the others finish well within them)
        workers_kill_timeout=WORKERS_KILL_TIMEOUT,
    ).serve()


def web_worker_app():
    """In each worker of ``entitlements web``: the app, with the settings the command was given
    (its connections are the worker's own, never shared across processes)."""
    from web.app import create_app

    settings = Settings(**json.loads(os.environ[WEB_SETTINGS_VARIABLE]))
    return settled(create_app(build_services(settings), project_inline=False))


def serve(settings: Settings, *, host: str, port: int, threads: int) -> None:
    import waitress

    from web.app import create_app

    services = build_services(settings)
    _stop_on_sigterm()
    try:
        services.read_models.catch_up()
        with following(services), scheduling(services), sending(services), checkpointing(services):
            app = settled(create_app(services, project_inline=True))
            click.echo(
                f"entitlements portal at http://{host}:{port}/ and API at /api/v1 (OpenAPI: /api/v1/openapi.json); Ctrl-C to stop",
                err=True,
            )
            waitress.serve(app, host=host, port=port, threads=threads, ident="entitlements", _quiet=True)
    finally:
        services.close()
