"""``recctl audit verify|head|ls|export|acknowledge``: check, list and export the hash-chained
audit log.

``verify``, ``head``, ``ls`` and ``export`` read the log file directly (``recd.cli.auditfile``),
never through the daemon, so an auditor can check a copy on another machine; with ``--url`` they
read the audit table of recd's shared PostgreSQL database instead (``recd.cli.audittable``),
checked by the same code. They stream, so memory does not grow with the log. ``export`` writes
the chain into one file that verifies as the log does (``recd.cli.auditexport``).
``acknowledge`` asks the daemon to take the log as it is after its check at start paused
erasing; it is audited with the caller's name and reason.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from recd.cli import auditexport, auditfile, audittable, kit
from recd.cli.kit import Subparsers
from recd.cli.render.replies import AuditAcknowledged
from recd.cli.render.text import plural, printable
from recd.core.audit import GENESIS
from recd.errors import ExitCode, RecdError

DEFAULT_AUDIT = Path("/var/lib/recd")  # the state directory: segments and audit.log


@contextlib.contextmanager
def _chain(args: argparse.Namespace) -> Iterator[auditfile.Chain]:
    """What ``--file`` names, or with ``--url`` the database's audit table (one snapshot)."""
    if args.url is None:
        yield auditfile.FileChain(args.file)
        return
    with audittable.opened(args.url) as table:
        yield table


def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    with _chain(args) as chain:
        return auditfile.verify_chain(chain, args.expect)


def cmd_audit_head(args: argparse.Namespace) -> ExitCode:
    with _chain(args) as chain:
        return auditfile.head_chain(chain, as_json=args.json)


def cmd_audit_ls(args: argparse.Namespace) -> ExitCode:
    with _chain(args) as chain:
        return auditfile.list_chain(chain, args.since, args.action, as_json=args.json)


def _read_local(source: Path, sink: auditfile.Sink) -> auditfile.Checked:
    """The chain at ``source`` verified into ``sink``; its failures named as ``--from``'s."""
    try:
        return auditfile.copy_chain(source, sink)
    except auditexport.Unwritable:
        raise
    except RecdError as exc:
        exc.args = (f"--from: {exc}",)
        raise


def _export_table(out: Path, url: str, *, force: bool) -> ExitCode:
    """Write the chain in the audit table of ``url`` into ``out``, read in one snapshot."""
    with audittable.opened(url) as table:
        checked = auditexport.export_chain(lambda sink: table.checked(sink=sink), out, force=force)
    _exported(out, checked, table.name)
    return ExitCode.OK


def _exported(out: Path, checked: auditfile.Checked, source: object) -> None:
    result = checked.result
    head = f"{result.last_seq if result.entries else 0}:{result.last_hash or GENESIS}"
    count = plural(result.entries, "entry", "entries")
    print(
        printable(
            f"{out}: {count}{checked.scope()} exported from {source}, chain intact; head {head}"
        )
    )


def cmd_audit_export(args: argparse.Namespace) -> ExitCode:
    """Write the chain read from ``--from`` (or ``--url``) into the new file ``--file``,
    verified on the way."""
    out, source, force = args.file, args.source, args.force
    auditexport.check_target(out, force=force)
    if args.url is not None:
        return _export_table(out, args.url, force=force)
    clash = auditexport.chain_clash(out, source)
    if clash is not None:
        raise RecdError(f"--file: {out}: {clash}; write the export elsewhere (nothing was written)")
    if not os.path.lexists(source):
        raise RecdError(
            f"--from: {source}: does not exist (give the state directory, a segment or audit.log)"
        )
    checked = auditexport.export_chain(lambda sink: _read_local(source, sink), out, force=force)
    _exported(out, checked, source)
    return ExitCode.OK


def cmd_audit_acknowledge(args: argparse.Namespace) -> ExitCode:
    """Take the audit log as it is: erasing paused by the check at start resumes."""

    def lines(done: AuditAcknowledged) -> list[str]:
        problem = printable(str(done["problem"]))
        return [
            f"audit log acknowledged (entry {done['seq']}): erasing resumes (it was "
            f"paused: {problem})"
        ]

    return kit.answer(args, "audit acknowledge", {"reason": args.reason}, lines)


URL_HELP = (
    "read the audit table of recd's shared PostgreSQL database instead of a file, in one "
    "read-only snapshot: a libpq URL such as postgresql://recd@db1.example.com/recd, without a "
    "password (keep it in ~/.pgpass or a file PGPASSFILE names); needs psycopg: pip install "
    "'recd[postgres]'"
)
URL_EXIT = (
    "; with --url: 69 the database cannot be reached or psycopg is not installed, 77 not "
    "allowed to read the audit table"
)


def _add_url_argument(group: argparse._MutuallyExclusiveGroup) -> None:
    group.add_argument("--url", metavar="URL", help=URL_HELP)


def _add_file_argument(parser: argparse.ArgumentParser) -> None:
    """``--file PATH`` or ``--url URL``: one of the two."""
    where = parser.add_mutually_exclusive_group()
    _add_url_argument(where)
    where.add_argument(
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
        "unreadable, cut or rewritten (the first bad or missing entry is named), 2 usage error"
        + URL_EXIT
        + ".",
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
        "named), 2 usage error" + URL_EXIT + ".",
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
        description="List audit entries as a table, or as a JSON array with --json. Every "
        "entry must parse (nothing is printed from a damaged log); `recctl audit verify` checks "
        "the chain.",
        epilog="Exit status: 0 listed, 1 damaged or unreadable, 2 usage error" + URL_EXIT + ".",
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


def _add_export_parser(commands: Subparsers) -> None:
    export = kit.command(
        commands,
        "export",
        cmd_audit_export,
        help="write the whole chain into one plain JSON-lines file that verifies like the log",
        description="Copy every audit entry, byte for byte as recd sealed it (segments "
        "decompressed), in chain order, into one new file OUT, checking the chain as it goes: "
        "`recctl audit verify --file OUT` then prints the same count and last hash as for the "
        "log itself. OUT appears only when the whole chain verified and was written and synced "
        "(a hidden .OUT.*.tmp beside it until then, removed on failure); it is created mode "
        "0600, since entries are evidence and may name customers. Standard output is refused: "
        "an export cut short would still verify, as a shorter chain. Prints the count, the "
        "head SEQ:HASH and OUT.",
        epilog="Exit status: 0 exported, chain intact; 1 nothing exported: the log is damaged "
        "or unreadable (the first bad or missing entry is named), or OUT exists, or cannot be "
        "written; 2 usage error" + URL_EXIT + ".",
    )
    export.add_argument(
        "--file",
        type=Path,
        required=True,
        metavar="OUT",
        help="the file to write, e.g. /root/audit-2026-12-06.jsonl: new (see --force), "
        "plain (not .gz), never audit.log or a segment's name beside the log; not - "
        "(standard output)",
    )
    source = export.add_mutually_exclusive_group()
    _add_url_argument(source)
    source.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=DEFAULT_AUDIT,
        metavar="PATH",
        help="what to export, as `recctl audit verify --file` takes it: a state directory "
        "(the whole chain: every segment audit.log.FIRST-LAST[.gz] in order, then audit.log), "
        f"one segment, or a live audit.log (default: {DEFAULT_AUDIT})",
    )
    export.add_argument(
        "--force", action="store_true", help="replace OUT if it exists (never through a link)"
    )


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
    """``recctl audit verify``, ``head``, ``ls``, ``export`` and ``acknowledge``."""
    commands = kit.group(
        subparsers,
        "audit",
        help="check, list and export the audit log",
        description="Check, list and export the hash-chained audit log. verify, head, ls and "
        "export read the file directly (or with --url the audit table of recd's shared PostgreSQL "
        "database), so they work on a copy and without the daemon; "
        "acknowledge asks the daemon.",
    )
    _add_verify_parser(commands)
    _add_head_parser(commands)
    _add_ls_parser(commands)
    _add_export_parser(commands)
    _add_acknowledge_parser(commands)
