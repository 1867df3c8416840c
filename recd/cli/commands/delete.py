"""``recctl delete``: execute a verified early-deletion request (SPEC section 6).

First the plan: the daemon's preview of what the request erases, what a hold keeps and what is
already gone. Then, unless ``--dry-run``, a confirmation typed on a terminal (or ``--yes``), and
the run itself. A request for a whole licence (``"all": true``) is shown as such above the plan
and needs the licence id typed on a terminal or given as ``--confirm-all LICENCE``, even with
``--yes``, even when nothing is to be erased now (a recording indexed before the run is erased
too); the daemon refuses its run without that confirmation. The run is waited for however long
it takes: the daemon hashes each file for the certificate and overwrites it before it answers.
Running it again is safe: the daemon erases what is left and renews the certificate; when
nothing is left to erase and nothing changed, it keeps the certificate as it is (its
``request.certificate`` entry is the same before and after, which is how recctl tells).
``--dry-run`` also previews a request not yet approved, read-only, for its approver. Exit 4 when
a hold kept a recording or an erasure failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from recd.cli import kit
from recd.cli.kit import Subparsers
from recd.cli.render.delete import (
    confirm_licence,
    confirm_question,
    dry_run,
    executed,
    plan_header,
    unchanged,
    whole_licence_warning,
)
from recd.cli.render.replies import Executed, Preview
from recd.cli.render.requests import items_table
from recd.errors import ExitCode, NotAllowedInState, RecdError, UsageError


def _ask(question: str) -> str:
    """Put ``question`` on the terminal and read one answer (empty on Ctrl-C or EOF)."""
    sys.stdout.flush()
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if not answer.endswith("\n"):
        sys.stderr.write("\n")  # end the question's line before the error
    return answer.strip()


def _confirm(preview: Preview) -> None:
    """Ask the person at the terminal; anything but ``yes`` stops here."""
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to erase without confirmation: stdin is not a terminal (add --yes)"
        )
    question = kit.rendered("request preview", lambda: confirm_question(preview))
    if _ask(question) != "yes":
        raise RecdError("not confirmed; nothing erased")


def _confirm_licence(preview: Preview, yes: bool) -> None:
    """Ask the person at the terminal to type the licence id of a whole-licence request;
    ``--yes`` does not answer this question."""
    request = preview["request"]
    rid, licence = request["id"], request["licence"]
    if not sys.stdin.isatty():
        also = "; --yes is not enough" if yes else ""
        raise UsageError(
            f"refusing to erase every recording of licence {licence} without its confirmation:"
            f" stdin is not a terminal (add --confirm-all {licence}{also})"
        )
    question = kit.rendered("request preview", lambda: confirm_licence(preview))
    if _ask(question) != licence:
        raise RecdError(
            f"not confirmed: the licence id typed is not {licence}; nothing erased for request"
            f" {rid}"
        )


def _whole_licence(args: argparse.Namespace, preview: Preview) -> bool:
    """Whether the request is for a whole licence; ``--confirm-all`` is only for one, and
    must name its licence."""
    request = preview["request"]
    whole: bool = kit.rendered("request preview", lambda: request.get("whole_licence") is True)
    given: str | None = args.confirm_all
    if given is None:
        return whole
    rid, licence = kit.rendered(
        "request preview", lambda: (str(request["id"]), str(request["licence"]))
    )
    if not whole:
        raise UsageError(
            f"argument --confirm-all: request {rid} is not for a whole licence (its scope is"
            ' not "all": true); leave --confirm-all out'
        )
    if given != licence:
        raise UsageError(
            f"argument --confirm-all: {given!r} is not licence {licence} of request {rid};"
            " nothing erased"
        )
    return whole


def _refuse_unverified(rid: str, state: str) -> None:
    if state == "received":
        raise NotAllowedInState(
            f"request {rid} is not verified yet: a second administrator must run "
            f"`recctl request approve {rid}` first; nothing erased"
        )
    if state == "rejected":
        raise NotAllowedInState(f"request {rid} was rejected: nothing is erased for it")


def cmd_delete(args: argparse.Namespace) -> ExitCode:
    """Show what a request erases, confirm, erase, and summarise. A dry run also shows the
    plan of a request still waiting for its approval."""
    rid = args.request_id
    preview: Preview = kit.shaped(
        "request preview", kit.ask(args, "request preview", {"request": rid}).unwrap(), dict
    )
    state = kit.rendered("request preview", lambda: str(preview["request"]["state"]))
    if not args.dry_run:
        _refuse_unverified(rid, state)
    whole = _whole_licence(args, preview)
    kit.show(
        "request preview",
        lambda: [
            *([whole_licence_warning(preview)] if whole else []),
            plan_header(preview),
            items_table(preview["items"]),
        ],
    )
    if args.dry_run:
        kit.say(kit.rendered("request preview", lambda: dry_run(preview)))
        return ExitCode.OK
    erase = kit.rendered("request preview", lambda: int(preview["erase"]))
    execute: dict[str, Any] = {"request": rid}
    if whole:
        if args.confirm_all is None:
            _confirm_licence(preview, args.yes)
        execute["confirm_all"] = preview["request"]["licence"]
    elif erase and not args.yes:
        _confirm(preview)
    # Every file is hashed and overwritten before the reply: no timeout.
    reply = kit.ask(args, "request execute", execute, wait=True)
    result: Executed = kit.shaped("request execute", reply.unwrap(), dict)
    return _executed(preview, result)


def _executed(preview: Preview, result: Executed) -> ExitCode:
    command = "request execute"
    failed = kit.rendered(
        command, lambda: [item for item in result["items"] if item["outcome"] == "failed"]
    )
    if failed:
        kit.show(command, lambda: [items_table(failed)])
    kept = kit.rendered(command, lambda: unchanged(preview, result))
    if kept:
        kit.say(kept)
    kit.show(command, lambda: [executed(result)])
    counts = result["request"]["counts"]  # read by ``executed`` above
    left = kit.rendered(command, lambda: sum(int(counts[n]) for n in ("held", "failed", "pending")))
    return ExitCode.PARTIAL if left else ExitCode.OK


def build_delete_parser(subparsers: Subparsers) -> None:
    """``recctl delete --request-id R [--dry-run] [--yes] [--confirm-all LICENCE]``."""
    delete = kit.command(
        subparsers,
        "delete",
        cmd_delete,
        help="execute a verified early-deletion request",
        description="Execute a verified early-deletion request: show what it erases, what is "
        "held and what is already gone, ask for confirmation, erase, and record the deletion "
        "certificate (see `recctl request certificate`). Held recordings are kept and listed. "
        "Running it again is safe: it erases what is left, and with nothing left it keeps "
        'the certificate as it is. A request for a whole licence ("all": true) needs the '
        "licence id typed on a terminal, or --confirm-all LICENCE; --yes is not enough.",
        epilog="Exit status: 0 everything in scope erased (or already gone), 1 failed or not "
        "confirmed, 2 usage error (or no terminal to confirm on), 3 unknown request or not "
        "verified, 4 a hold kept some recordings or some erasures failed, 69 daemon "
        "unavailable, 77 permission denied.",
    )
    delete.add_argument(
        "--request-id", required=True, metavar="REQUEST", help="the verified request to execute"
    )
    delete.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be erased, and erase nothing (also for a request not yet approved)",
    )
    delete.add_argument(
        "--yes",
        action="store_true",
        help="do not ask for confirmation (needed when stdin is not a terminal); not for a "
        "whole-licence request",
    )
    delete.add_argument(
        "--confirm-all",
        metavar="LICENCE",
        help='confirm a request for a whole licence ("all": true) by its licence id, without '
        "a terminal; only for such a request",
    )
