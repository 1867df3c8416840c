"""``recctl breaker ls|release`` and ``recctl clock confirm``: the two guards that stop erasing,
and the administrator's word that lets it go on.

A mass-deletion breaker holds back a licence's erasures when too many fall due at once; the clock
guard pauses all erasing when the wall clock cannot be trusted. Releasing or confirming is a
change the daemon audits with the caller's user name.
"""

from __future__ import annotations

import argparse

from recd.cli import kit
from recd.cli.kit import Subparsers
from recd.cli.render.records import BREAKER_HEADERS, breaker_row
from recd.cli.render.replies import BreakerReleased, ClockConfirmed
from recd.cli.render.text import plural, printable
from recd.errors import ExitCode


def cmd_breaker_ls(args: argparse.Namespace) -> ExitCode:
    """Tripped breakers, and released ones the daemon still remembers."""
    reply = kit.ask(args, "breaker ls")
    kit.listing(args, "breaker ls", reply, BREAKER_HEADERS, breaker_row)
    return ExitCode.OK


def cmd_breaker_release(args: argparse.Namespace) -> ExitCode:
    """Let the next sweep erase what a licence's breaker held back."""

    def lines(released: BreakerReleased) -> list[str]:
        due = plural(released["due"], "due recording", "due recordings")
        licence = printable(str(released["licence"]))
        return [f"breaker for {licence} released: the next sweep erases its {due}"]

    return kit.answer(args, "breaker release", {"licence": args.licence}, lines)


def cmd_clock_confirm(args: argparse.Namespace) -> ExitCode:
    """Trust the wall clock as it reads now: erasing paused by the clock guard resumes."""

    def lines(confirmed: ClockConfirmed) -> list[str]:
        wall = printable(str(confirmed["wall"]))
        if confirmed["problem"] is None:
            return [f"clock confirmed at {wall} (erasing was not paused)"]
        problem = printable(str(confirmed["problem"]))
        return [f"clock confirmed at {wall}: erasing resumes (it was paused: {problem})"]

    return kit.answer(args, "clock confirm", {"reason": args.reason}, lines)


def build_breaker_parser(subparsers: Subparsers) -> None:
    """``recctl breaker ls`` and ``recctl breaker release``."""
    commands = kit.group(
        subparsers,
        "breaker",
        help="list and release mass-deletion breakers",
        description="List and release the mass-deletion breakers, which stop a licence's "
        "erasures when too many of its recordings fall due at once.",
    )
    ls = kit.command(
        commands,
        "ls",
        cmd_breaker_ls,
        help="list breakers",
        description="List tripped breakers and when they were released.",
    )
    kit.add_json_argument(ls, "a JSON array of the breakers")
    release = kit.command(
        commands,
        "release",
        cmd_breaker_release,
        help="let a licence's due recordings be erased",
        description="Release a licence's tripped breaker: the next sweep erases its due "
        "recordings.",
    )
    release.add_argument(
        "--licence", required=True, metavar="LICENCE", help="the licence whose breaker to release"
    )


def build_clock_parser(subparsers: Subparsers) -> None:
    """``recctl clock confirm``."""
    commands = kit.group(
        subparsers,
        "clock",
        help="confirm the wall clock after the clock guard paused erasing",
        description="The clock guard pauses erasing when the wall clock is far ahead of the "
        "audit log and the newest recording at start, or jumps while recd runs.",
    )
    confirm = kit.command(
        commands,
        "confirm",
        cmd_clock_confirm,
        help="trust the wall clock as it reads now; erasing resumes",
        description="Check the clock first (timedatectl, chronyc tracking): recordings due by "
        "the clock's reading are erased once it is confirmed. Audited as clock.confirmed with "
        "your user name, the clock's reading and the reason.",
    )
    confirm.add_argument("--reason", metavar="TEXT", help="why the clock can be trusted")
