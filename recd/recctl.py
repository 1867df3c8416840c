"""`recctl` entry point: the admin CLI's parser, one small handler per command, the exit status.

The only module of recctl that knows argparse. Each command group has a
``build_<group>_parser(subparsers)``; each command a ``cmd_<group>_<name>(args) -> ExitCode``
handler, set as the parser's ``handler`` default. Handlers raise ``RecdError``s; ``main`` is the
one place that turns them into ``recctl: <message>`` on stderr and an exit status. Anything else
is a bug and keeps its traceback. Results go to stdout, formatted by ``render``.

The daemon commands (``status``, ``ls``, ``show``, ``policy``, ``scan``, ``breaker``) send one
request over the admin socket with ``client.call`` (the wire format is ``recd.protocol``); an
error the daemon replies with is raised by ``Reply.unwrap`` with the exit code of its kind.

The ``audit`` commands read the audit log file directly (never through the daemon), so an
auditor can check a copy on another machine. They stream: memory does not grow with the log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from recd import __version__, auditfile, client, render
from recd.errors import ExitCode, RecdError, UsageError
from recd.protocol import ProtocolError, Reply, Request

DEFAULT_SOCKET = Path("/run/recd/recd.sock")
DEFAULT_AUDIT_LOG = Path("/var/lib/recd/audit.log")
DEFAULT_LIMIT = 1000
STATES = ("present", "erased", "missing", "all")
#: Seconds to wait for the daemon's reply; ``scan`` waits as long as the scan takes.
TIMEOUT = client.DEFAULT_TIMEOUT

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


def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    return auditfile.verify_file(args.file)


def cmd_audit_ls(args: argparse.Namespace) -> ExitCode:
    return auditfile.list_file(args.file, args.since, args.action, as_json=args.json)


# --- the daemon commands -------------------------------------------------------------------------


def _ask(
    args: argparse.Namespace,
    command: str,
    request_args: dict[str, Any] | None = None,
    *,
    wait: bool = False,
) -> Reply:
    """The daemon's reply to one request; ``wait`` for as long as it takes (else ``TIMEOUT``)."""
    timeout = None if wait else TIMEOUT
    return client.call(args.socket, Request(command, request_args or {}), timeout=timeout)


def _shaped(command: str, result: Any, shape: type[list[Any]] | type[dict[str, Any]]) -> Any:
    if not isinstance(result, shape):
        raise _unexpected(command, f"a JSON {'array' if shape is list else 'object'} expected")
    return result


def _unexpected(command: str, detail: str) -> ProtocolError:
    return ProtocolError(
        f"recd's reply to `{command}` is not what this recctl expects ({detail}); "
        "use the recctl that came with this recd"
    )


def _show(command: str, lines: Callable[[], list[str]]) -> None:
    """Print what ``lines`` renders from a reply; a field missing or of another type is the
    daemon's reply not fitting this recctl, not a bug here."""
    try:
        text = lines()
    except KeyError as exc:
        raise _unexpected(command, f"no field {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise _unexpected(command, str(exc)) from None
    print("\n".join(text))


def _print_json(result: Any) -> None:
    if isinstance(result, list):
        for text in render.json_array(result):
            sys.stdout.write(text)
    else:
        print(render.to_json(result))


def _listing(
    args: argparse.Namespace,
    command: str,
    reply: Reply,
    headers: Sequence[str],
    row: Callable[[Any], list[str]],
) -> list[Any]:
    """Print a list result as a table of ``row``s under ``headers``, or as JSON."""
    items: list[Any] = _shaped(command, reply.unwrap(), list)
    if args.json:
        _print_json(items)
    else:
        _show(command, lambda: [render.table([row(item) for item in items], headers)])
    return items


def cmd_status(args: argparse.Namespace) -> ExitCode:
    """The daemon's state: counts, next deadline, guards, sources and licences."""
    status = _shaped("status", _ask(args, "status").unwrap(), dict)
    if args.json:
        _print_json(status)
    else:
        _show("status", lambda: render.status_lines(status))
    return ExitCode.OK


def cmd_ls(args: argparse.Namespace) -> ExitCode:
    """Recordings, filtered by the daemon; at most ``--limit`` of them."""
    request: dict[str, Any] = {"limit": args.limit, "state": args.state}
    if args.licence is not None:
        request["licence"] = args.licence
    if args.unclassified:
        request["unclassified"] = True
    if args.due_before is not None:
        request["due_before"] = args.due_before
    reply = _ask(args, "ls", request)
    items = _listing(args, "ls", reply, render.RECORDING_HEADERS, render.recording_row)
    if reply.truncated:
        sys.stdout.flush()
        print(
            f"recctl: showing the first {render.plural(len(items), 'recording', 'recordings')}; "
            "use --limit to see more",
            file=sys.stderr,
        )
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> ExitCode:
    """One recording, with where each classified field and its deadline come from."""
    recording = _shaped("show", _ask(args, "show", {"id": args.id}).unwrap(), dict)
    if args.json:
        _print_json(recording)
    else:
        _show("show", lambda: render.show_lines(recording))
    return ExitCode.OK


def cmd_policy(args: argparse.Namespace) -> ExitCode:
    """Each licence's retention, where it was configured, and its breaker."""
    _listing(args, "policy", _ask(args, "policy"), render.POLICY_HEADERS, render.policy_row)
    return ExitCode.OK


def cmd_scan(args: argparse.Namespace) -> ExitCode:
    """Scan one source or all, wait for the scan to finish, and print what it found."""
    request = {} if args.source is None else {"source": args.source}
    # A full scan of millions of files takes as long as it takes: no timeout.
    scans = _shaped("scan", _ask(args, "scan", request, wait=True).unwrap(), list)
    if args.json:
        _print_json(scans)
    elif scans:
        _show("scan", lambda: [render.scan_line(scan) for scan in scans])
    return ExitCode.OK


def cmd_breaker_ls(args: argparse.Namespace) -> ExitCode:
    """Tripped breakers, and released ones the daemon still remembers."""
    reply = _ask(args, "breaker ls")
    _listing(args, "breaker ls", reply, render.BREAKER_HEADERS, render.breaker_row)
    return ExitCode.OK


def cmd_breaker_release(args: argparse.Namespace) -> ExitCode:
    """Let the next sweep erase what a licence's breaker held back."""
    reply = _ask(args, "breaker release", {"licence": args.licence})
    released = _shaped("breaker release", reply.unwrap(), dict)

    def lines() -> list[str]:
        due = render.plural(released["due"], "due recording", "due recordings")
        licence = render.printable(str(released["licence"]))
        return [f"breaker for {licence} released: the next sweep erases its {due}"]

    _show("breaker release", lines)
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


def _utc_time(value: str) -> str:
    """An ISO 8601 time argument as ISO 8601 UTC (``2026-12-01T00:00:00Z``); naive is UTC."""
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
    except (ValueError, OverflowError):
        quoted = json.dumps(value, ensure_ascii=False)
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {quoted} (use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)"
        ) from None
    return when.isoformat().replace("+00:00", "Z")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        quoted = json.dumps(value, ensure_ascii=False)
        raise argparse.ArgumentTypeError(f"not a positive integer: {quoted}")
    return number


def _add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def build_status_parser(subparsers: Subparsers) -> None:
    """``recctl status``."""
    status = subparsers.add_parser(
        "status",
        help="the daemon's state",
        description="Show the daemon's version and mode, counts of recordings (unclassified "
        "and overdue among them), the next deadline, the clock guard and tripped breakers, "
        "then each source and each licence.",
        epilog=EPILOG,
    )
    _add_json_argument(status, "the state as a JSON object")
    status.set_defaults(handler=cmd_status)


def build_policy_parser(subparsers: Subparsers) -> None:
    """``recctl policy`` and ``recctl scan``: the configuration as the daemon applies it."""
    policy = subparsers.add_parser(
        "policy",
        help="retention per licence",
        description="List each licence's retention period, where it was configured, its "
        "recordings and whether its mass-deletion breaker is tripped.",
        epilog=EPILOG,
    )
    _add_json_argument(policy, "a JSON array of the licences")
    policy.set_defaults(handler=cmd_policy)
    scan = subparsers.add_parser(
        "scan",
        help="scan sources now",
        description="Reconcile one source, or every source, with the catalogue now; wait for "
        "the scan to finish and print one line per source.",
        epilog=EPILOG,
    )
    scan.add_argument("source", nargs="?", metavar="SOURCE", help="the source to scan")
    _add_json_argument(scan, "a JSON array, one object per source")
    scan.set_defaults(handler=cmd_scan)


def build_recordings_parser(subparsers: Subparsers) -> None:
    """``recctl ls`` and ``recctl show``."""
    ls = subparsers.add_parser(
        "ls",
        help="list recordings",
        description="List recordings as a table, or as a JSON array with --json.",
        epilog=EPILOG,
    )
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--licence", metavar="LICENCE", help="only this licence's recordings")
    which.add_argument(
        "--unclassified", action="store_true", help="only recordings with no licence"
    )
    ls.add_argument(
        "--due-before",
        type=_utc_time,
        metavar="TIME",
        help="only recordings whose deadline is before TIME (ISO 8601; UTC when no offset "
        "is given)",
    )
    ls.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list at most N recordings (default: {DEFAULT_LIMIT})",
    )
    ls.add_argument(
        "--state",
        choices=STATES,
        default="present",
        metavar="STATE",
        help="only recordings in STATE: present (the default), erased, missing or all",
    )
    _add_json_argument(ls, "a JSON array of the recordings (sizes in bytes)")
    ls.set_defaults(handler=cmd_ls)
    show = subparsers.add_parser(
        "show",
        help="one recording in detail",
        description="Show one recording: where each classified field came from, and how its "
        "deadline was reached.",
        epilog=EPILOG,
    )
    show.add_argument("id", metavar="ID", help="the recording's id, as ls shows it")
    _add_json_argument(show, "the recording as a JSON object")
    show.set_defaults(handler=cmd_show)


def build_breaker_parser(subparsers: Subparsers) -> None:
    """``recctl breaker ls`` and ``recctl breaker release``."""
    breaker = subparsers.add_parser(
        "breaker",
        help="list and release mass-deletion breakers",
        description="List and release the mass-deletion breakers, which stop a licence's "
        "erasures when too many of its recordings fall due at once.",
        epilog=EPILOG,
    )
    commands = breaker.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ls = commands.add_parser(
        "ls",
        help="list breakers",
        description="List tripped breakers and when they were released.",
        epilog=EPILOG,
    )
    _add_json_argument(ls, "a JSON array of the breakers")
    ls.set_defaults(handler=cmd_breaker_ls)
    release = commands.add_parser(
        "release",
        help="let a licence's due recordings be erased",
        description="Release a licence's tripped breaker: the next sweep erases its due "
        "recordings.",
        epilog=EPILOG,
    )
    release.add_argument(
        "--licence", required=True, metavar="LICENCE", help="the licence whose breaker to release"
    )
    release.set_defaults(handler=cmd_breaker_release)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recctl",
        description="Administer recd through its admin socket: its state, recordings, "
        "retention policy, scans and breakers; and check its audit log.",
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
    build_status_parser(groups)
    build_recordings_parser(groups)
    build_policy_parser(groups)
    build_breaker_parser(groups)
    build_audit_parser(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one recctl command; ``--help`` and ``--version`` exit through argparse."""
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except RecdError as exc:
        # The message may quote the daemon or a file name: one line, nothing for the terminal.
        print(f"recctl: {render.printable(str(exc))}", file=sys.stderr)
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
