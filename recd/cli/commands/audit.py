"""``recctl audit verify|head|ls|acknowledge``: check and list the hash-chained audit log.

``verify``, ``head`` and ``ls`` read the log file directly (``recd.cli.auditfile``), never through
the daemon, so an auditor can check a copy on another machine; they stream, so memory does not
grow with the log. ``acknowledge`` asks the daemon to take the log as it is after its check at
start paused erasing; it is audited with the caller's name and reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recd.cli import auditfile, kit
from recd.cli.kit import Subparsers
from recd.cli.render.replies import AuditAcknowledged
from recd.cli.render.text import printable
from recd.errors import ExitCode

DEFAULT_AUDIT = Path("/var/lib/recd")  # the state directory: segments and audit.log


def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    return auditfile.verify_file(args.file, args.expect)


def cmd_audit_head(args: argparse.Namespace) -> ExitCode:
    return auditfile.head_file(args.file, as_json=args.json)


def cmd_audit_ls(args: argparse.Namespace) -> ExitCode:
    return auditfile.list_file(args.file, args.since, args.action, as_json=args.json)


def cmd_audit_acknowledge(args: argparse.Namespace) -> ExitCode:
    """Take the audit log as it is: erasing paused by the check at start resumes."""

    def lines(done: AuditAcknowledged) -> list[str]:
        problem = printable(str(done["problem"]))
        return [
            f"audit log acknowledged (entry {done['seq']}): erasing resumes (it was "
            f"paused: {problem})"
        ]

    return kit.answer(args, "audit acknowledge", {"reason": args.reason}, lines)


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


def _add_verify_parser(commands: Subparsers) -> None:
    check = kit.command(
        commands,
        "verify",
        cmd_audit_verify,
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


def _add_head_parser(commands: Subparsers) -> None:
    head = kit.command(
        commands,
        "head",
        cmd_audit_head,
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


def _add_ls_parser(commands: Subparsers) -> None:
    ls = kit.command(
        commands,
        "ls",
        cmd_audit_ls,
        help="list entries",
        description="List audit entries as a table, or as a JSON array with --json.",
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


def _add_acknowledge_parser(commands: Subparsers) -> None:
    acknowledge = kit.command(
        commands,
        "acknowledge",
        cmd_audit_acknowledge,
        help="take the audit log as it is after recd found it does not verify or does not "
        "match the catalogue; erasing resumes",
        description="Asks the daemon (not the file). recd stops erasing when at start the "
        "log's chain does not verify or the log does not hold the entry the catalogue "
        "reflects (the log was cut, deleted, rewritten or replaced, or the catalogue is ahead "
        "of it). Check first: `recctl audit verify`, `recctl status`, the backups. Audited as "
        "audit.acknowledged with your user name, what was found and the reason; the catalogue "
        "is then marked at the log's last entry.",
    )
    acknowledge.add_argument(
        "--reason",
        required=True,
        metavar="TEXT",
        help="what you checked, and why the log may be taken as it is",
    )


def build_audit_parser(subparsers: Subparsers) -> None:
    """``recctl audit verify``, ``head``, ``ls`` and ``acknowledge``."""
    commands = kit.group(
        subparsers,
        "audit",
        help="check and list the audit log",
        description="Check and list the hash-chained audit log. verify, head and ls read the "
        "file directly, so they work on a copy and without the daemon; acknowledge asks the "
        "daemon.",
    )
    _add_verify_parser(commands)
    _add_head_parser(commands)
    _add_ls_parser(commands)
    _add_acknowledge_parser(commands)
