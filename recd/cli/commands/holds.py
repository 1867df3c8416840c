"""``recctl hold``: place, release, list and show legal holds (SPEC section 5).

A hold's scope is a rule, not a snapshot: the daemon also holds recordings indexed after the
hold was placed if they match. ``hold place`` prints the new hold's id alone on stdout, so a
script can keep it (``H=$(recctl hold place ...)``), and says what it holds on stderr.
"""

from __future__ import annotations

import argparse
from typing import Any

from recd.cli import kit
from recd.cli.kit import Subparsers
from recd.cli.render.holds import HOLD_HEADERS, hold_lines, hold_placed, hold_released, hold_row
from recd.cli.render.replies import Hold
from recd.cli.render.text import printable
from recd.errors import ExitCode

#: The daemon's argument (``KEY`` of its ``KEY: problem`` messages) each option gives.
FLAGS = {
    "licence": "--licence",
    "case": "--case",
    "reason": "--reason",
    "recordings": "--recording",
    "call_ids": "--call-id",
    "party": "--party",
    "from": "--from",
    "to": "--to",
    "until": "--until",
}

RELEASE_GRACE_NOTE = (
    "Recordings it alone held fall due no earlier than holds.release_grace (default 7d) after "
    "the release, so a mistaken release can be undone by placing the hold again."
)


def cmd_hold_place(args: argparse.Namespace) -> ExitCode:
    """Place a hold; its id on stdout, what it holds on stderr."""
    request: dict[str, Any] = {
        "licence": args.licence,
        "case": args.case,
        "reason": args.reason,
        "recordings": args.recordings or [],
        "call_ids": args.call_ids or [],
        "party": args.party,
        "from": args.start,
        "to": args.end,
        "until": args.until,
    }
    reply = kit.ask(args, "hold place", request)
    result = kit.unwrap_located(reply, lambda message: kit.flagged(message, FLAGS))
    hold: Hold = kit.shaped("hold place", result, dict)
    if args.json:
        kit.print_json(hold)
    else:
        kit.show("hold place", lambda: [printable(hold["id"])])
    kit.say(kit.rendered("hold place", lambda: hold_placed(hold)))
    return ExitCode.OK


def cmd_hold_release(args: argparse.Namespace) -> ExitCode:
    """Release a hold; say how many recordings it alone held and when they may fall due."""
    request = {"hold": args.hold, "reason": args.reason}
    return kit.answer(args, "hold release", request, kit.one(hold_released))


def cmd_hold_ls(args: argparse.Namespace) -> ExitCode:
    """Active holds, or every hold with ``--all``."""
    reply = kit.ask(args, "hold ls", {"all": args.all})
    kit.listing(args, "hold ls", reply, HOLD_HEADERS, hold_row)
    return ExitCode.OK


def cmd_hold_show(args: argparse.Namespace) -> ExitCode:
    """One hold in detail."""
    return kit.answer(args, "hold show", {"hold": args.hold}, hold_lines)


def _add_place_parser(commands: Subparsers) -> None:
    place = kit.command(
        commands,
        "place",
        cmd_hold_place,
        help="hold recordings: nothing erases them until the hold is released",
        description="Place a legal hold on a licence's recordings. Nothing erases a held "
        "recording: neither its retention nor an early-deletion request. The scope is a rule, "
        "not a snapshot: recordings indexed later that match it are held too. The options "
        "--recording, --call-id, --party, --from and --to narrow the scope and combine with "
        "AND; with none of them the hold covers every recording of the licence, present and "
        "future. Prints the hold's id alone on stdout (H=$(recctl hold place ...)) and what "
        "it holds on stderr.",
    )
    place.add_argument("--licence", required=True, metavar="LICENCE", help="the licence to hold")
    place.add_argument(
        "--case", required=True, metavar="CASE", help="the legal case or ticket it is held for"
    )
    place.add_argument(
        "--reason", required=True, metavar="TEXT", help="why, for the audit log (one line)"
    )
    kit.add_scope_arguments(place)
    place.add_argument(
        "--until",
        type=kit.utc_time,
        metavar="TIME",
        help="release the hold by itself at TIME (default: held until released)",
    )
    kit.add_json_argument(place, "the hold as a JSON object instead of its id")


def build_hold_parser(subparsers: Subparsers) -> None:
    """``recctl hold place|release|ls|show``."""
    commands = kit.group(
        subparsers,
        "hold",
        help="place, release and list legal holds",
        description="Place, release and list legal holds: rules that keep a licence's "
        "recordings from being erased, whatever their retention or any request says.",
    )
    _add_place_parser(commands)
    release = kit.command(
        commands,
        "release",
        cmd_hold_release,
        help="end a hold",
        description=f"Release a hold. {RELEASE_GRACE_NOTE}",
    )
    release.add_argument("hold", metavar="HOLD", help="the hold's id, as hold ls shows it")
    release.add_argument(
        "--reason", required=True, metavar="TEXT", help="why, for the audit log (one line)"
    )
    kit.add_json_argument(release, "the released hold as a JSON object")
    ls = kit.command(
        commands,
        "ls",
        cmd_hold_ls,
        help="list holds",
        description="List the active holds (every hold with --all) as a table, or as a JSON "
        "array with --json.",
    )
    ls.add_argument("--all", action="store_true", help="also list released and expired holds")
    kit.add_json_argument(ls, "a JSON array of the holds")
    show = kit.command(
        commands,
        "show",
        cmd_hold_show,
        help="one hold in detail",
        description="Show one hold: its case, reason, scope, how many recordings it holds now, "
        "who placed it and, once released, who released it and why.",
    )
    show.add_argument("hold", metavar="HOLD", help="the hold's id, as hold ls shows it")
    kit.add_json_argument(show, "the hold as a JSON object")
