"""`recctl` entry point: the admin CLI's one parser, the dispatch to a command's handler, and the
exit status.

Each command group lives in ``recd.cli.commands`` with a ``build_<group>_parser(subparsers)``;
each command has a ``cmd_<group>_<name>(args) -> ExitCode`` handler, set as its parser's
``handler`` default (``recd.cli.kit.command``). Handlers raise ``RecdError``s; ``main`` is the
one place that turns them into ``recctl: <message>`` on stderr and an exit status. Anything
else is a bug and keeps its traceback. Results go to stdout, formatted by ``recd.cli.render``.

The daemon commands (all but ``audit verify|head|ls``) send one request, or for ``delete`` two,
over the admin socket with ``recd.cli.client.call`` (the wire format is ``recd.protocol``); an
error the daemon replies with is raised by ``Reply.unwrap`` with the exit code of its kind.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from recd import __version__
from recd.cli import kit
from recd.cli.commands import audit, backup, delete, guards, holds, records, requests
from recd.cli.kit import EPILOG, Handler
from recd.cli.render.text import printable
from recd.errors import ExitCode, RecdError

DEFAULT_SOCKET = Path("/run/recd/recd.sock")

__all__ = ["DEFAULT_SOCKET", "EPILOG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = kit.Parser(
        prog="recctl",
        description="Administer recd through its admin socket: its state, recordings, "
        "retention policy, scans, breakers, legal holds and early-deletion requests; and check "
        "its audit log.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"recctl {__version__}")
    parser.add_argument(
        "--socket",
        type=Path,
        default=DEFAULT_SOCKET,
        metavar="PATH",
        help=f"recd's admin socket (default: {DEFAULT_SOCKET}); the audit commands read the "
        "log file instead",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    records.build_status_parser(groups)
    records.build_recordings_parser(groups)
    records.build_policy_parser(groups)
    guards.build_breaker_parser(groups)
    guards.build_clock_parser(groups)
    holds.build_hold_parser(groups)
    requests.build_request_parser(groups)
    delete.build_delete_parser(groups)
    audit.build_audit_parser(groups)
    backup.build_backup_parser(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one recctl command; ``--help`` and ``--version`` exit through argparse."""
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except RecdError as exc:
        # The message may quote the daemon or a file name: one line, nothing for the terminal.
        print(f"recctl: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `recctl audit ls | head`: the reader is gone. Point stdout at /dev/null so the flush
        # at exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return ExitCode.FAILED


if __name__ == "__main__":  # pragma: no cover (run as a script; tests call main)
    raise SystemExit(main())
