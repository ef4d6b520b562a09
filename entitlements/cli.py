"""The ``entitlements`` command line. Errors end with a clear message on stderr and a non-zero
exit, never a traceback (``ENTITLEMENTS_DEBUG=1`` shows one for unexpected failures)."""

from __future__ import annotations

import base64
import getpass
import logging
import os
import sys
from pathlib import Path

import click

from domain import limits
from domain.errors import DomainError
from entitlements import audit, processes
from entitlements.bootstrap import build_services
from entitlements.settings import ConfigurationError, Settings
from entitlements.tenant import LOADER, LoadResult, TenantFileError, load_tenant
from entitlements.tokens import DEFAULT_EXPIRES_IN, UnknownToken, parse_expires_in
from projections.read_models import UnknownReadModel
from projections.rebuild import RebuildFailed
from transparency_log.__main__ import main as verifier_main
from transparency_log.checkpoint import CheckpointError
from transparency_log.note import NoteError

DEMO_TENANT = Path(__file__).parent / "demo" / "tenant.yaml"


class Identifier(click.ParamType):
    """A user or token id: text of at most 200 characters, valid Unicode, no NUL (domain/limits.py)."""

    name = "id"

    def convert(self, value, param, ctx):
        problem = limits.text_problem(value, limits.MAX_ID)
        if problem:
            self.fail(problem, param, ctx)
        return value


IDENTIFIER = Identifier()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """entitlements: request, approve and deliver access, with a replayable decision trail.

    Configuration comes from ENTITLEMENTS_* environment variables (or a .env file); the database is
    ENTITLEMENTS_DATABASE_URL (default sqlite:///var/entitlements.db)."""


@cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only the one-line result.")
@click.option("--actor", type=IDENTIFIER, help="Who the changes are recorded as (default: tenant-file:OS-USER).")
def load_command(file: Path, quiet: bool, actor: str | None) -> None:
    """Load a tenant file (YAML or JSON): directory, catalogs, packages, policies.

    The whole file is checked before anything is stored, and stored in one transaction. Loading
    the same file twice changes nothing."""
    settings = Settings.from_env()
    services = build_services(settings)  # with ENTITLEMENTS_CLOCK=manual, changes are recorded at its time
    try:
        result = load_tenant(services.app, file, actor=actor or default_actor())
    finally:
        services.close()
    click.echo(
        f"loaded {file}: {len(result.changed)} item(s) changed, "
        f"{result.tenant.size - len(result.changed)} unchanged"
        f" ({settings.database_url})"
    )
    if not quiet:
        click.echo(describe_tenant(result))


def default_actor() -> str:
    """``tenant-file:root``: the loader and the OS user who ran it."""
    try:
        return f"{LOADER}:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or the password database
        return LOADER


@cli.command("demo-tenant")
def demo_tenant_command() -> None:
    """Print the path of the demo tenant file shipped with entitlements."""
    click.echo(str(DEMO_TENANT))


@cli.group("tokens")
def tokens_group() -> None:
    """API tokens (``Authorization: Bearer TOKEN``): create, list, revoke.

    Each token has a public id (tok_...) that names it in `tokens list` and `tokens revoke`;
    only the token's hash is stored. Expiry and revocation take effect at once."""


class ExpiresIn(click.ParamType):
    """``--expires-in``: an ISO 8601 duration without years or months (P90D, PT12H), or ``never``."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return parse_expires_in(value)
        except ValueError as error:
            self.fail(f"{error}, or 'never'", param, ctx)


def _time(moment) -> str:
    """``2026-03-02T09:00:00Z``: to the second, in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else "never"




def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(1)


@tokens_group.command("create")
@click.argument("user_id", type=IDENTIFIER)
@click.option(
    "--expires-in",
    type=ExpiresIn(),
    default=DEFAULT_EXPIRES_IN,
    show_default=True,
    help="How long the token is valid: an ISO 8601 duration without years or months (P30D, PT12H), or 'never'.",
)
def tokens_create_command(user_id: str, expires_in) -> None:
    """Print a new API token for USER_ID (a user of the directory) on stdout, and its id and
    expiry on stderr, so that TOKEN=$(entitlements tokens create USER_ID) keeps only the token.
    Only its hash is stored: keep the printed token, it cannot be shown again. Expiry counts in
    the application's time (the manual clock with ENTITLEMENTS_CLOCK=manual)."""
    services = build_services(Settings.from_env())
    try:
        services.app.user(user_id)  # UnknownUser: a clear error
        issued = services.tokens.issue(user_id, now=services.app.clock.now(), expires_in=expires_in)
    finally:
        services.close()
    click.echo(issued.token)
    expiry = f"expires {_time(issued.info.expires_at)}" if issued.info.expires_at else "never expires"
    click.echo(f"created token {issued.info.id} for {user_id}; it {expiry}", err=True)


@cli.command("login-link")
@click.argument("user_id", type=IDENTIFIER)
def login_link_command(user_id: str) -> None:
    """Print a one-time portal sign-in URL for USER_ID (a user of the directory), valid 15
    minutes, for deployments without an identity provider. Opening it shows a page that asks to
    sign in as that user; the first sign-in uses it up."""
    services = build_services(Settings.from_env())
    try:
        services.app.user(user_id)  # UnknownUser: a clear error
        secret, expires_at = services.sign_in.issue_link(user_id)
    finally:
        services.close()
    click.echo(services.sign_in.link_url(services.settings.base_url, secret))
    click.echo(f"a one-time sign-in link for {user_id}; valid until {_time(expires_at)}", err=True)


@tokens_group.command("list")
@click.argument("user_id", type=IDENTIFIER)
def tokens_list_command(user_id: str) -> None:
    """List USER_ID's tokens, oldest first: id, created, expires, state (active, expired or
    revoked) and when a revoked one was revoked. Tokens themselves cannot be shown."""
    services = build_services(Settings.from_env())
    try:
        tokens = services.tokens.list(user_id)
        if not tokens:
            services.app.user(user_id)  # UnknownUser: a clear error
        now = services.app.clock.now()
    finally:
        services.close()
    if not tokens:
        click.echo(f"{user_id} has no API tokens", err=True)
        return
    rows = [("ID", "CREATED", "EXPIRES", "STATE", "REVOKED")]
    rows += [
        (info.id, _time(info.created_at), _time(info.expires_at), info.state(now), _time(info.revoked_at) if info.revoked_at else "-")
        for info in tokens
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


@tokens_group.command("revoke")
@click.argument("token_ids", metavar="TOKEN_ID...", nargs=-1, required=True, type=IDENTIFIER)
def tokens_revoke_command(token_ids: tuple[str, ...]) -> None:
    """Revoke tokens by id (tok_..., from `tokens list`): calls with them answer 401 at once, in
    every process. All or none: an unknown id revokes nothing. Revoking a revoked token is a no-op."""
    services = build_services(Settings.from_env())
    try:
        results = services.tokens.revoke(list(token_ids), now=services.app.clock.now())
    except UnknownToken as error:
        _fail(str(error))
    finally:
        services.close()
    for info, revoked in results:
        if revoked:
            click.echo(f"revoked token {info.id} of {info.user_id}")
        else:
            click.echo(f"token {info.id} of {info.user_id} was already revoked at {_time(info.revoked_at)}")


@cli.command("rebuild")
@click.argument("names", nargs=-1)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the closing line.")
def rebuild_command(names: tuple[str, ...], quiet: bool) -> None:
    """Drop and rebuild read models from the event log (all of them without NAMEs).

    Read models: facts, pending, history, requests, assignments, deadlines, directory, notifier
    (rebuilding it adds no email twice: the outbox is kept). The new rows are built beside the
    current ones, which answer every read meanwhile, and replace them in one transaction at the
    end: a rebuild that fails or is interrupted changes nothing. The read models of requests and
    assignments derive their rows from `facts`: named alone, they are rebuilt from the facts as
    they are; name `facts` too (or nothing) to fold the facts again from the log."""
    processes.rebuild(Settings.from_env(), list(names), quiet=quiet)


@cli.command("project")
@click.argument("names", nargs=-1)
@click.option("--interval", default=0.2, show_default=True, help="Seconds between looks at the log when idle.")
def project_command(names: tuple[str, ...], interval: float) -> None:
    """Run the read-model projections alone, following the event log until stopped (scale-out
    mode: one such process beside several `entitlements web` workers on PostgreSQL). All read
    models without NAMEs; with NAMEs, those (and the facts they derive from), e.g. all but the
    notifier when `entitlements notify` runs it as a process of its own."""
    processes.project(Settings.from_env(), interval=interval, names=list(names))


@cli.command("notify")
@click.option("--interval", default=0.2, show_default=True, help="Seconds between looks at the log when idle.")
def notify_command(interval: float) -> None:
    """Run the notifier alone: it follows the event log and writes the numbered emails into the
    outbox (`entitlements send` delivers them). The same as `entitlements project notifier`."""
    processes.project(Settings.from_env(), interval=interval, names=["notifier"])


@cli.command("tick")
def tick_command() -> None:
    """Run the deadlines that are due now, once: remind approvers, escalate, expire requests,
    deliver access that starts now, remind users that access ends, expire access. Prints each
    deadline run (what was already done, e.g. by another scheduler, is skipped). Running it twice,
    or beside `entitlements schedule`, records nothing twice. Exits 1 if a deadline failed."""
    if not processes.tick(Settings.from_env()):
        raise click.exceptions.Exit(1)


@cli.command("schedule")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between looks at the deadlines.")
def schedule_command(interval: float) -> None:
    """Run the deadlines continuously, as they fall due (`entitlements serve` does this too; run
    it alone beside `entitlements project` in the scale-out mode; several at once are safe)."""
    processes.schedule(Settings.from_env(), interval=interval)


@cli.command("send")
@click.option("--once", is_flag=True, help="Send what is due now, then stop.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks at the outbox.")
def send_command(once: bool, interval: float) -> None:
    """Deliver the outbox of numbered emails over SMTP (ENTITLEMENTS_SMTP_URL), each email once:
    temporary failures are retried with backoff, and each email keeps its status. `entitlements
    serve` does this too; run it alone beside `entitlements project` in the scale-out mode."""
    processes.send(Settings.from_env(), once=once, interval=interval)


@cli.command("web")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
def web_command(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the HTTP API alone (granian: worker processes with threads), reading the read models
    that `entitlements project` keeps up to date: the scale-out mode on PostgreSQL."""
    processes.web(Settings.from_env(), host=host, port=port, workers=workers, threads=threads)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads of the WSGI server.")
def serve_command(host: str, port: int, threads: int) -> None:
    """The embedded mode: the HTTP API, the projections (the notifier among them) following the
    log, the scheduler running deadlines as they fall due and, with ENTITLEMENTS_SMTP_URL, the
    sender, in one process (the default SQLite file needs nothing else)."""
    processes.serve(Settings.from_env(), host=host, port=port, threads=threads)


def describe_tenant(result: LoadResult) -> str:
    tenant = result.tenant
    lines = ["", "  " + ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in tenant.counts.items())]
    policies_by_package: dict[str, list[dict]] = {}
    for policy in tenant.policies:
        policies_by_package.setdefault(policy["access_package"], []).append(policy)
    for package in tenant.packages:
        flags = []
        if package.get("hidden"):
            flags.append("hidden")
        if package.get("incompatible_packages") or package.get("incompatible_groups"):
            flags.append("incompatible with " + ", ".join(package["incompatible_packages"] + package["incompatible_groups"]))
        if not package.get("notifications_enabled", True):
            flags.append("no emails")
        resources = ", ".join(f"{r['kind']}:{r['id']}" for r in package["resources"])
        lines.append(f"\n  {package['id']} ({package['catalog']}) - {package.get('name') or package['id']}"
                     + (f" [{'; '.join(flags)}]" if flags else ""))
        lines.append(f"    resources: {resources or 'none'}")
        for policy in policies_by_package.get(package["id"], []):
            stages = policy["approval"]["stages"] if policy["approval"]["required"] else []
            approval = " -> ".join(
                f"stage {n}: " + ", ".join(_approver_label(a) for a in stage["approvers"])
                + (f" (escalates after {stage['escalation']['after']})" if stage["escalation"]["enabled"] else "")
                for n, stage in enumerate(stages, start=1)
            ) or "no approval"
            lines.append(f"    policy {policy['id']}: requestors {policy['requestors']['scope']}; {approval}")
    return "\n".join(lines)


@cli.group("audit")
def audit_group() -> None:
    """For auditors: export the event log, sign and verify checkpoints of it.

    An export is JSON lines (one event a line, in log order) with a signed checkpoint beside it
    (FILE.checkpoint): a C2SP signed note (Ed25519) of the RFC 9162 Merkle tree over the RFC 8785
    bytes of each line. `audit verify` checks it offline; `python -m transparency_log verify`
    does the same with nothing installed but `cryptography` and `rfc8785`."""


@audit_group.command("export")
@click.option("--request", "request_id", type=IDENTIFIER, help="Only this request's trail, each event with its inclusion proof.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write (default: audit-export-TIME.jsonl, or audit-request-ID.jsonl).")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --request: an older checkpoint to prove the log only grew since (FILE.consistency).")
def audit_export_command(request_id: str | None, output: Path | None, since: Path | None) -> None:
    """Write the event log (or one request's trail) and its signed checkpoint."""
    if since is not None and request_id is None:
        raise click.UsageError("--since goes with --request (a whole export is checked against an older checkpoint by `audit verify --since`)")
    services = build_services(Settings.from_env())
    try:
        signer = services.log_tree.signer
        if request_id is None:
            path = output or Path(f"audit-export-{services.app.clock.now().strftime('%Y%m%dT%H%M%SZ')}.jsonl")
            result = audit.export_log(services.log_tree, signer, path)
        else:
            path = output or Path(f"audit-request-{request_id}.jsonl")
            note = since.read_text(encoding="utf-8") if since else None
            result = audit.export_request(services.log_tree, services.read_models, signer, path, request_id, note)
    except (audit.RequestNotFound, audit.LogDiffers) as error:
        _fail(str(error))
    except (NoteError, CheckpointError) as error:
        _fail(f"{since}: {error}")
    finally:
        services.close()
    click.echo(f"wrote {result.events} event(s) to {result.path}; checkpoint {result.path}.checkpoint"
               f" (tree size {result.tree_size}, root {base64.b64encode(result.root).decode()})")


@audit_group.command("key")
def audit_key_command() -> None:
    """Print the verifier key auditors check exports and checkpoints with."""
    settings = Settings.from_env()
    click.echo(audit.load_signer(settings.audit_key_file, settings.base_url).verifier_key)


@audit_group.command("checkpoint")
def audit_checkpoint_command() -> None:
    """Record a signed checkpoint of the log's head now."""
    services = build_services(Settings.from_env())
    try:
        recorded = services.log_tree.record(force=True)
    finally:
        services.close()
    assert recorded is not None
    click.echo(recorded.note, nl=False)


@audit_group.command("verify")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", help="The verifier key (its text or a file holding it); default: this deployment's.")
@click.option("--since", type=click.Path(dir_okay=False, path_type=Path), help="An older checkpoint the log must have grown from.")
def audit_verify_command(file: Path | None, key: str | None, since: Path | None) -> None:
    """Check an export offline, or (no FILE) the live database against its signed checkpoints.

    Exit 0 when intact; 1 naming the first broken line and why; 2 for a usage error."""
    settings = Settings.from_env()
    if key is None:
        key = audit.load_signer(settings.audit_key_file, settings.base_url).verifier_key
    if file is not None:
        argv = ["verify", str(file), "--key", key] + (["--since", str(since)] if since else [])
        raise click.exceptions.Exit(verifier_main(argv))
    if since is not None:
        raise click.UsageError("--since needs FILE: the live database is checked against its own checkpoints")
    services = build_services(settings)
    try:
        report = audit.verify_live(services.log_tree, audit.read_verifier(key))
    finally:
        services.close()
    if report.ok:
        click.echo(report.message)
        return
    click.echo(f"broken: {report.message}", err=True)
    raise click.exceptions.Exit(1)


def _approver_label(approver: dict) -> str:
    if approver.get("user"):
        return approver["user"]
    if approver.get("group"):
        return f"group {approver['group']}"
    return "requestor's manager"


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; turns every expected error into a message and an exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # what the scheduler ran, in serve and schedule; tracebacks of failed deadlines with ENTITLEMENTS_DEBUG
    # and a read model stuck on an event: one line per distinct failure, its traceback with ENTITLEMENTS_DEBUG
    for name in ("entitlements", "projections"):
        logging.getLogger(name).setLevel(logging.DEBUG if os.environ.get("ENTITLEMENTS_DEBUG") else logging.INFO)
    try:
        status = cli.main(args=argv, prog_name="entitlements", standalone_mode=False)
        if isinstance(status, int) and status:  # click.exceptions.Exit(status) from a command
            return status
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except TenantFileError as error:
        click.echo(f"error: {error.source} cannot be loaded ({len(error.problems)} problem(s)):", err=True)
        for problem in error.problems:
            click.echo(f"  - {problem}", err=True)
        return 1
    except (ConfigurationError, DomainError, UnknownReadModel) as error:
        click.echo(f"error: {error}", err=True)
        return 1
    except RebuildFailed as error:
        click.echo(f"error: the rebuild failed: {error}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # last resort: a message, not a traceback
        if os.environ.get("ENTITLEMENTS_DEBUG"):
            raise
        click.echo(f"error: unexpected failure: {type(error).__name__}: {error}", err=True)
        click.echo("(set ENTITLEMENTS_DEBUG=1 to see the traceback)", err=True)
        return 1
    return 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
