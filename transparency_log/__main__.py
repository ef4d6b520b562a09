"""``python -m transparency_log verify FILE --key KEY [--since OLD.checkpoint]``.

Exit status: 0 for an intact export (the summary on stdout), 1 for a broken one (``broken:
REASON`` on stderr), 2 for a usage error (a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .export import UsageError, verify_export


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m transparency_log", description="Verify an audit export offline.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="verify")
    verify = commands.add_parser("verify", help="verify a full or request export against the log's key")
    verify.add_argument("file", help="the export (its .checkpoint, and .hashes or .consistency, lie beside it)")
    verify.add_argument("--key", required=True, help="the log's verifier key text, or a file holding it")
    verify.add_argument("--since", metavar="OLD.checkpoint", help="an older checkpoint the log must have grown from")
    return parser


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as file:
        return file.read()


def _verifier_key_text(argument: str) -> str:
    """The key text itself, or the content of the file it names."""
    return _read_text(argument) if os.path.isfile(argument) else argument


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line with ``argv`` (default: sys.argv[1:]) and returns the exit status."""
    try:
        arguments = _parser().parse_args(argv)
    except _ArgumentError as error:
        print(f"usage error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    try:
        since = None if arguments.since is None else _read_text(arguments.since)
        report = verify_export(arguments.file, _verifier_key_text(arguments.key), since)
    except (UsageError, OSError, UnicodeDecodeError) as error:
        print(f"usage error: {error}", file=sys.stderr)
        return 2
    print(report, file=sys.stdout if report.intact else sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
