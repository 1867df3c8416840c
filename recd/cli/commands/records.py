"""``recctl status``, ``ls``, ``show``, ``policy`` and ``scan``: the daemon's state, its
recordings and its retention policy, as the daemon sees them.

Each command sends one request and prints the result as text for people
(``recd.cli.render.records``) or, with ``--json``, as the JSON the daemon sent. ``ls`` lists at
most ``--limit`` recordings and says on stderr when there were more; ``scan`` waits for the scan
however long it takes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recd.cli import kit
from recd.cli.kit import Subparsers
from recd.cli.render.records import (
    POLICY_HEADERS,
    RECORDING_HEADERS,
    policy_row,
    recording_row,
    scan_line,
    show_lines,
    status_lines,
)
from recd.cli.render.replies import Scan
from recd.cli.render.text import plural
from recd.errors import ExitCode

DEFAULT_LIMIT = 1000
STATES = ("present", "erased", "missing", "all")


def cmd_status(args: argparse.Namespace) -> ExitCode:
    """The daemon's state: counts, next deadline, guards, sources and licences."""
    return kit.answer(args, "status", None, status_lines)


def cmd_ls(args: argparse.Namespace) -> ExitCode:
    """Recordings, filtered by the daemon; at most ``--limit`` of them."""
    request: dict[str, Any] = {"limit": args.limit, "state": args.state}
    if args.licence is not None:
        request["licence"] = args.licence
    if args.unclassified:
        request["unclassified"] = True
    if args.due_before is not None:
        request["due_before"] = args.due_before
    reply = kit.ask(args, "ls", request)
    items = kit.listing(args, "ls", reply, RECORDING_HEADERS, recording_row)
    if reply.truncated:
        sys.stdout.flush()
        print(
            f"recctl: showing the first {plural(len(items), 'recording', 'recordings')}; "
            "use --limit to see more",
            file=sys.stderr,
        )
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> ExitCode:
    """One recording, with where each classified field and its deadline come from."""
    return kit.answer(args, "show", {"id": args.id}, show_lines)


def cmd_policy(args: argparse.Namespace) -> ExitCode:
    """Each licence's retention, where it was configured, and its breaker."""
    kit.listing(args, "policy", kit.ask(args, "policy"), POLICY_HEADERS, policy_row)
    return ExitCode.OK


def cmd_scan(args: argparse.Namespace) -> ExitCode:
    """Scan one source or all, wait for the scan to finish, and print what it found."""
    request = {} if args.source is None else {"source": args.source}
    # A full scan of millions of files takes as long as it takes: no timeout.
    scans: list[Scan] = kit.shaped("scan", kit.ask(args, "scan", request, wait=True).unwrap(), list)
    if args.json:
        kit.print_json(scans)
    elif scans:
        kit.show("scan", lambda: [scan_line(scan) for scan in scans])
    return ExitCode.OK


def build_status_parser(subparsers: Subparsers) -> None:
    """``recctl status``."""
    status = kit.command(
        subparsers,
        "status",
        cmd_status,
        help="the daemon's state",
        description="Show the daemon's version and mode, counts of recordings (unclassified "
        "and overdue among them), the next deadline, the clock guard and tripped breakers, "
        "then each source and each licence.",
    )
    kit.add_json_argument(status, "the state as a JSON object")


def build_policy_parser(subparsers: Subparsers) -> None:
    """``recctl policy`` and ``recctl scan``: the configuration as the daemon applies it."""
    policy = kit.command(
        subparsers,
        "policy",
        cmd_policy,
        help="retention per licence",
        description="List each licence's retention period, where it was configured, its "
        "recordings and whether its mass-deletion breaker is tripped.",
    )
    kit.add_json_argument(policy, "a JSON array of the licences")
    scan = kit.command(
        subparsers,
        "scan",
        cmd_scan,
        help="scan sources now",
        description="Reconcile one source, or every source, with the catalogue now; wait for "
        "the scan to finish and print one line per source.",
    )
    scan.add_argument("source", nargs="?", metavar="SOURCE", help="the source to scan")
    kit.add_json_argument(scan, "a JSON array, one object per source")


def _add_ls_parser(subparsers: Subparsers) -> None:
    ls = kit.command(
        subparsers,
        "ls",
        cmd_ls,
        help="list recordings",
        description="List recordings as a table, or as a JSON array with --json.",
    )
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--licence", metavar="LICENCE", help="only this licence's recordings")
    which.add_argument(
        "--unclassified", action="store_true", help="only recordings with no licence"
    )
    ls.add_argument(
        "--due-before",
        type=kit.utc_time,
        metavar="TIME",
        help="only recordings whose deadline is before TIME (ISO 8601; UTC when no offset "
        "is given)",
    )
    ls.add_argument(
        "--limit",
        type=kit.positive,
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
    kit.add_json_argument(ls, "a JSON array of the recordings (sizes in bytes)")


def build_recordings_parser(subparsers: Subparsers) -> None:
    """``recctl ls`` and ``recctl show``."""
    _add_ls_parser(subparsers)
    show = kit.command(
        subparsers,
        "show",
        cmd_show,
        help="one recording in detail",
        description="Show one recording: where each classified field came from, and how its "
        "deadline was reached.",
    )
    show.add_argument("id", metavar="ID", help="the recording's id, as ls shows it")
    kit.add_json_argument(show, "the recording as a JSON object")
