"""`recctl` entry point: the admin CLI's parser, one small handler per command, the exit status.

Each command group has a ``build_<group>_parser(subparsers)``; each command a
``cmd_<group>_<name>(args) -> ExitCode`` handler, set as the parser's ``handler`` default. The
legal and backup commands live in their own modules under ``recd.cli.commands`` (``holds``:
``hold``; ``requests``: ``request``; ``delete``: ``delete``; ``backup``: ``backup``), the helpers
every command module shares in ``recd.cli.kit``; this module builds the one parser from them all.
Handlers raise ``RecdError``s; ``main`` is the one place that turns them into
``recctl: <message>`` on stderr and an exit status. Anything else is a bug and keeps its
traceback. Results go to stdout, formatted by ``recd.cli.render`` (``tables`` and ``legal``).

The daemon commands (all but ``audit``) send one request, or for ``delete`` two, over the admin
socket with ``client.call`` (the wire format is ``recd.protocol``); an error the daemon replies
with is raised by ``Reply.unwrap`` with the exit code of its kind.

The ``audit`` commands read the audit log file directly (never through the daemon), so an
auditor can check a copy on another machine. They stream: memory does not grow with the log.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recd import __version__
from recd.cli import auditfile
from recd.cli import kit as clikit
from recd.cli.commands import backup as recctlbackup
from recd.cli.commands import delete as recctldelete
from recd.cli.commands import holds as recctlholds
from recd.cli.commands import requests as recctlrequests
from recd.cli.kit import EPILOG, Handler, Subparsers
from recd.cli.render import tables as render
from recd.errors import ExitCode, RecdError

DEFAULT_SOCKET = Path("/run/recd/recd.sock")
DEFAULT_AUDIT = Path("/var/lib/recd")  # the state directory: segments and audit.log
DEFAULT_LIMIT = 1000
STATES = ("present", "erased", "missing", "all")

__all__ = ["DEFAULT_AUDIT", "DEFAULT_SOCKET", "EPILOG", "build_parser", "main"]


def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    return auditfile.verify_file(args.file, args.expect)


def cmd_audit_head(args: argparse.Namespace) -> ExitCode:
    return auditfile.head_file(args.file, as_json=args.json)


def cmd_audit_ls(args: argparse.Namespace) -> ExitCode:
    return auditfile.list_file(args.file, args.since, args.action, as_json=args.json)


def cmd_audit_acknowledge(args: argparse.Namespace) -> ExitCode:
    """Take the audit log as it is: erasing paused by the check at start resumes."""
    reply = clikit.ask(args, "audit acknowledge", {"reason": args.reason})
    done = clikit.shaped("audit acknowledge", reply.unwrap(), dict)

    def lines() -> list[str]:
        problem = render.printable(str(done["problem"]))
        return [f"audit log acknowledged (entry {done['seq']}): erasing resumes (it was "
                f"paused: {problem})"]  # fmt: skip

    clikit.show("audit acknowledge", lines)
    return ExitCode.OK


# --- the daemon commands -------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> ExitCode:
    """The daemon's state: counts, next deadline, guards, sources and licences."""
    status = clikit.shaped("status", clikit.ask(args, "status").unwrap(), dict)
    if args.json:
        clikit.print_json(status)
    else:
        clikit.show("status", lambda: render.status_lines(status))
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
    reply = clikit.ask(args, "ls", request)
    items = clikit.listing(args, "ls", reply, render.RECORDING_HEADERS, render.recording_row)
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
    recording = clikit.shaped("show", clikit.ask(args, "show", {"id": args.id}).unwrap(), dict)
    if args.json:
        clikit.print_json(recording)
    else:
        clikit.show("show", lambda: render.show_lines(recording))
    return ExitCode.OK


def cmd_policy(args: argparse.Namespace) -> ExitCode:
    """Each licence's retention, where it was configured, and its breaker."""
    clikit.listing(
        args, "policy", clikit.ask(args, "policy"), render.POLICY_HEADERS, render.policy_row
    )
    return ExitCode.OK


def cmd_scan(args: argparse.Namespace) -> ExitCode:
    """Scan one source or all, wait for the scan to finish, and print what it found."""
    request = {} if args.source is None else {"source": args.source}
    # A full scan of millions of files takes as long as it takes: no timeout.
    scans = clikit.shaped("scan", clikit.ask(args, "scan", request, wait=True).unwrap(), list)
    if args.json:
        clikit.print_json(scans)
    elif scans:
        clikit.show("scan", lambda: [render.scan_line(scan) for scan in scans])
    return ExitCode.OK


def cmd_breaker_ls(args: argparse.Namespace) -> ExitCode:
    """Tripped breakers, and released ones the daemon still remembers."""
    reply = clikit.ask(args, "breaker ls")
    clikit.listing(args, "breaker ls", reply, render.BREAKER_HEADERS, render.breaker_row)
    return ExitCode.OK


def cmd_breaker_release(args: argparse.Namespace) -> ExitCode:
    """Let the next sweep erase what a licence's breaker held back."""
    reply = clikit.ask(args, "breaker release", {"licence": args.licence})
    released = clikit.shaped("breaker release", reply.unwrap(), dict)

    def lines() -> list[str]:
        due = render.plural(released["due"], "due recording", "due recordings")
        licence = render.printable(str(released["licence"]))
        return [f"breaker for {licence} released: the next sweep erases its {due}"]

    clikit.show("breaker release", lines)
    return ExitCode.OK


def _add_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_AUDIT,
        metavar="PATH",
        help="what to read, e.g. a copy: a state directory (every segment "
        "audit.log.FIRST-LAST[.gz] in order, then audit.log: the whole chain), one segment, or "
        f"the live audit.log (default: {DEFAULT_AUDIT})",
    )


def build_audit_parser(subparsers: Subparsers) -> None:
    """``recctl audit verify``, ``recctl audit head`` and ``recctl audit ls``."""
    audit = subparsers.add_parser(
        "audit",
        help="check and list the audit log",
        description="Check and list the hash-chained audit log. verify, head and ls read the "
        "file directly, so they work on a copy and without the daemon; acknowledge asks the "
        "daemon.",
        epilog=EPILOG,
    )
    commands = audit.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "verify",
        help="check the whole hash chain",
        description="Check every entry's hash and its link to the one before. Prints the "
        "number of entries and the last hash: keep that hash elsewhere (`recctl audit head` "
        "prints it as SEQ:HASH), since only it can show that entries were removed from, or "
        "forged at, the end of the log; --expect checks the log still holds it.",
        epilog="Exit status: 0 chain intact (and holding every expected entry), 1 damaged, "
        "unreadable, cut or rewritten (the first bad or missing entry is named), 2 usage error.",
    )
    _add_file_argument(check)
    check.add_argument(
        "--expect",
        action="append",
        metavar="SEQ:HASH",
        help="fail unless the chain still holds entry SEQ with this hash, as `recctl audit "
        "head` printed it earlier (finds a cut or rewritten tail); repeat for several",
    )
    check.set_defaults(handler=cmd_audit_verify)
    head = commands.add_parser(
        "head",
        help="print the entry count and the last entry's SEQ:HASH",
        description="Check the whole chain, as verify does, then print the number of "
        "entries and the head of the chain, SEQ:HASH (seq and hash of the last entry). Keep "
        "the head where the host's administrators cannot change it; later, "
        "`recctl audit verify --expect SEQ:HASH` shows whether the log still holds it.",
        epilog="Exit status: 0 chain intact, 1 damaged or unreadable (the first bad entry is "
        "named), 2 usage error.",
    )
    _add_file_argument(head)
    head.add_argument(
        "--json", action="store_true", help='print {"entries": N, "seq": SEQ, "hash": HASH}'
    )
    head.set_defaults(handler=cmd_audit_head)
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
    acknowledge = commands.add_parser(
        "acknowledge",
        help="take the audit log as it is after recd found it does not verify or does not "
        "match the catalogue; erasing resumes",
        description="Asks the daemon (not the file). recd stops erasing when at start the "
        "log's chain does not verify or the log does not hold the entry the catalogue "
        "reflects (the log was cut, deleted, rewritten or replaced, or the catalogue is ahead "
        "of it). Check first: `recctl audit verify`, `recctl status`, the backups. Audited as "
        "audit.acknowledged with your user name, what was found and the reason; the catalogue "
        "is then marked at the log's last entry.",
        epilog=EPILOG,
    )
    acknowledge.add_argument(
        "--reason", required=True, metavar="TEXT", help="what you checked, and why the log "
        "may be taken as it is",
    )  # fmt: skip
    acknowledge.set_defaults(handler=cmd_audit_acknowledge)


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
    clikit.add_json_argument(status, "the state as a JSON object")
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
    clikit.add_json_argument(policy, "a JSON array of the licences")
    policy.set_defaults(handler=cmd_policy)
    scan = subparsers.add_parser(
        "scan",
        help="scan sources now",
        description="Reconcile one source, or every source, with the catalogue now; wait for "
        "the scan to finish and print one line per source.",
        epilog=EPILOG,
    )
    scan.add_argument("source", nargs="?", metavar="SOURCE", help="the source to scan")
    clikit.add_json_argument(scan, "a JSON array, one object per source")
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
        type=clikit.utc_time,
        metavar="TIME",
        help="only recordings whose deadline is before TIME (ISO 8601; UTC when no offset "
        "is given)",
    )
    ls.add_argument(
        "--limit",
        type=clikit.positive,
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
    clikit.add_json_argument(ls, "a JSON array of the recordings (sizes in bytes)")
    ls.set_defaults(handler=cmd_ls)
    show = subparsers.add_parser(
        "show",
        help="one recording in detail",
        description="Show one recording: where each classified field came from, and how its "
        "deadline was reached.",
        epilog=EPILOG,
    )
    show.add_argument("id", metavar="ID", help="the recording's id, as ls shows it")
    clikit.add_json_argument(show, "the recording as a JSON object")
    show.set_defaults(handler=cmd_show)


def cmd_clock_confirm(args: argparse.Namespace) -> ExitCode:
    """Trust the wall clock as it reads now: erasing paused by the clock guard resumes."""
    reply = clikit.ask(args, "clock confirm", {"reason": args.reason})
    confirmed = clikit.shaped("clock confirm", reply.unwrap(), dict)

    def lines() -> list[str]:
        wall = render.printable(str(confirmed["wall"]))
        if confirmed["problem"] is None:
            return [f"clock confirmed at {wall} (erasing was not paused)"]
        problem = render.printable(str(confirmed["problem"]))
        return [f"clock confirmed at {wall}: erasing resumes (it was paused: {problem})"]

    clikit.show("clock confirm", lines)
    return ExitCode.OK


def build_clock_parser(subparsers: Subparsers) -> None:
    """``recctl clock confirm``."""
    clock = subparsers.add_parser(
        "clock",
        help="confirm the wall clock after the clock guard paused erasing",
        description="The clock guard pauses erasing when the wall clock is far ahead of the "
        "audit log and the newest recording at start, or jumps while recd runs.",
        epilog=EPILOG,
    )
    commands = clock.add_subparsers(dest="command", metavar="COMMAND", required=True)
    confirm = commands.add_parser(
        "confirm",
        help="trust the wall clock as it reads now; erasing resumes",
        description="Check the clock first (timedatectl, chronyc tracking): recordings due by "
        "the clock's reading are erased once it is confirmed. Audited as clock.confirmed with "
        "your user name, the clock's reading and the reason.",
        epilog=EPILOG,
    )
    confirm.add_argument("--reason", metavar="TEXT", help="why the clock can be trusted")
    confirm.set_defaults(handler=cmd_clock_confirm)


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
    clikit.add_json_argument(ls, "a JSON array of the breakers")
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
    parser = clikit.Parser(
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
    build_status_parser(groups)
    build_recordings_parser(groups)
    build_policy_parser(groups)
    build_breaker_parser(groups)
    build_clock_parser(groups)
    recctlholds.build_hold_parser(groups)
    recctlrequests.build_request_parser(groups)
    recctldelete.build_delete_parser(groups)
    build_audit_parser(groups)
    recctlbackup.build_backup_parser(groups)
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
