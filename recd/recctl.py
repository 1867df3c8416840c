"""`recctl` entry point: the admin CLI's parser, one small handler per command, the exit status.

The only module of recctl that knows argparse. Each command group has a
``build_<group>_parser(subparsers)``; each command a ``cmd_<group>_<name>(args) -> ExitCode``
handler, set as the parser's ``handler`` default. Handlers raise ``RecdError``s; ``main`` is the
one place that turns them into ``recctl: <message>`` on stderr and an exit status. Anything else
is a bug and keeps its traceback. Results go to stdout, formatted by ``render``.

The ``audit`` commands read the audit log file directly (never through the daemon), so an
auditor can check a copy on another machine. They stream: memory does not grow with the log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TypeAlias

from recd import __version__, render
from recd.core.audit import GENESIS, AuditEntry, from_line, parse_time, verify
from recd.errors import AuditCorrupt, ExitCode, RecdError, UsageError

DEFAULT_SOCKET = Path("/run/recd/recd.sock")
DEFAULT_AUDIT_LOG = Path("/var/lib/recd/audit.log")

Handler = Callable[[argparse.Namespace], ExitCode]

EPILOG = (
    "Exit status: 0 ok, 1 failed, 2 usage error, 3 not found or not allowed in this state, "
    "4 done in part, 69 daemon unavailable, 77 permission denied."
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors, reported by ``main`` like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of ``path``, each with its newline (the last may lack it), read as needed."""
    try:
        with path.open("rb") as file:
            yield from file
    except OSError as exc:
        raise RecdError(f"{path}: cannot read: {exc.strerror}") from exc


def _entries(path: Path, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
    """(line number, entry) for each complete line, up to line ``limit``.

    An incomplete last line is left out: it is a write still in progress, or a torn tail that
    the daemon repairs and ``audit verify`` reports.
    """
    for number, line in enumerate(_lines(path), start=1):
        if (limit is not None and number > limit) or not line.endswith(b"\n"):
            return
        try:
            entry = from_line(line)
        except ValueError as exc:
            raise AuditCorrupt(
                f"{path}: line {number}: {exc} (run `recctl audit verify --file {path}`)"
            ) from None
        yield number, entry


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        quoted = json.dumps(value, ensure_ascii=False)
        raise UsageError(f"--since: not an ISO 8601 time: {quoted}") from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


def _action_matcher(patterns: Sequence[str] | None) -> Callable[[str], bool]:
    """Exact actions and ``family.*`` prefixes; no patterns match everything."""
    if not patterns:
        return lambda action: True
    for pattern in patterns:
        if "*" in pattern.removesuffix(".*") or pattern == ".*":
            quoted = json.dumps(pattern, ensure_ascii=False)
            raise UsageError(
                f"--action: use an action such as erase.done or a family such as erase.*, "
                f"not {quoted}"
            )
    exact = frozenset(p for p in patterns if not p.endswith(".*"))
    prefixes = tuple(p.removesuffix("*") for p in patterns if p.endswith(".*"))
    return lambda action: action in exact or action.startswith(prefixes)


def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    """Check the whole chain; print the entry count and the last hash (to anchor elsewhere)."""
    path: Path = args.file
    result = verify(_lines(path))
    if not result.ok:
        raise AuditCorrupt(
            f"{path}: entry {result.bad_seq} (line {result.bad_line}): {result.reason}"
        )
    count = _plural(result.entries, "entry", "entries")
    print(f"{path}: {count}, chain intact, last hash {result.last_hash or GENESIS}")
    return ExitCode.OK


def cmd_audit_ls(args: argparse.Namespace) -> ExitCode:
    """List entries, optionally since a time and of some actions, as a table or JSON."""
    path: Path = args.file
    since = _parse_since(args.since)
    action_matches = _action_matcher(args.action)

    def wanted(entry: AuditEntry) -> bool:
        return action_matches(entry.action) and (since is None or parse_time(entry.time) >= since)

    # Two passes keep memory flat: the first checks every line parses (so nothing is printed
    # from a damaged log) and measures the columns; the second prints. It stops at the first
    # pass's last line, as the daemon may be appending meanwhile.
    widths = render.column_widths((), render.AUDIT_HEADERS)
    lines = 0
    for number, entry in _entries(path):
        lines = number
        if wanted(entry) and not args.json:
            widths = render.widen(widths, render.audit_row(entry))
    selected = (entry for _, entry in _entries(path, limit=lines) if wanted(entry))
    if args.json:
        for text in render.json_array(render.audit_json(entry) for entry in selected):
            sys.stdout.write(text)
        return ExitCode.OK
    print(render.format_row(render.AUDIT_HEADERS, widths))
    for entry in selected:
        print(render.format_row(render.audit_row(entry), widths))
    return ExitCode.OK


def _add_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_AUDIT_LOG,
        metavar="PATH",
        help=f"the audit log to read, e.g. a copy (default: {DEFAULT_AUDIT_LOG})",
    )


def build_audit_parser(subparsers: Subparsers) -> None:
    """``recctl audit verify`` and ``recctl audit ls``."""
    audit = subparsers.add_parser(
        "audit",
        help="check and list the audit log",
        description="Check and list the hash-chained audit log. Reads the file directly, so "
        "it works on a copy and without the daemon.",
        epilog=EPILOG,
    )
    commands = audit.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "verify",
        help="check the whole hash chain",
        description="Check every entry's hash and its link to the one before. Prints the "
        "number of entries and the last hash: keep that hash elsewhere, since only it can "
        "show that entries were removed from, or forged at, the end of the log.",
        epilog="Exit status: 0 chain intact, 1 damaged or unreadable (the first bad entry is "
        "named), 2 usage error.",
    )
    _add_file_argument(check)
    check.set_defaults(handler=cmd_audit_verify)
    ls = commands.add_parser(
        "ls",
        help="list entries",
        description="List audit entries as a table, or as a JSON array with --json.",
        epilog=EPILOG,
    )
    _add_file_argument(ls)
    ls.add_argument(
        "--since",
        metavar="TIME",
        help="only entries at or after TIME (ISO 8601, e.g. 2026-11-23T10:00:00Z; "
        "UTC when no offset is given)",
    )
    ls.add_argument(
        "--action",
        action="append",
        metavar="ACTION",
        help="only this action (erase.done) or family (erase.*); repeat for several",
    )
    ls.add_argument("--json", action="store_true", help="print a JSON array of the entries")
    ls.set_defaults(handler=cmd_audit_ls)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recctl",
        description="Administer recd: legal holds, early-deletion requests, the audit log.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"recctl {__version__}")
    parser.add_argument(
        "--socket",
        type=Path,
        default=DEFAULT_SOCKET,
        metavar="PATH",
        help=f"recd's admin socket (default: {DEFAULT_SOCKET}; the audit commands do not use it)",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    build_audit_parser(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one recctl command; ``--help`` and ``--version`` exit through argparse."""
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except RecdError as exc:
        print(f"recctl: {exc}", file=sys.stderr)
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
