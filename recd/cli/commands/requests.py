"""``recctl request``: early-deletion requests, from registration to the deletion certificate
(SPEC section 6); ``recctl delete`` (``recd.cli.commands.delete``) executes them.

``request add`` reads the request file itself, so that a file that is not JSON, or whose meaning
is ambiguous (a key given twice), is refused here with its line and column, before anything
reaches the daemon; the daemon checks every member and answers problems as ``KEY: problem``,
which recctl shows after the file's name (or as the flag that set that key). ``request
certificate`` writes the certificate only when its SHA-256 is the one the daemon wrote into the
audit log, and writes a file whole or not at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from recd.cli import kit
from recd.cli.kit import Subparsers
from recd.cli.render.replies import Request
from recd.cli.render.requests import (
    REQUEST_HEADERS,
    request_added,
    request_approved,
    request_detail_lines,
    request_rejected,
    request_row,
)
from recd.core.times import format_human_time
from recd.errors import ExitCode, RecdError, UsageError, os_reason
from recd.protocol import MAX_REQUEST

STATES = ("received", "verified", "rejected", "executing", "completed", "partial")
STDIN = "-"
CERTIFICATE_MODE = 0o644

#: The flags that give a request's fields: (argparse dest, flag, key in the request file).
FIELDS = (
    ("request_id", "--request-id", "request_id"),
    ("licence", "--licence", "licence"),
    ("requester_name", "--requester-name", "requested_by.name"),
    ("requester_email", "--requester-email", "requested_by.email"),
    ("requester_role", "--requester-role", "requested_by.role"),
    ("received", "--received", "received"),
    ("reason", "--reason", "reason"),
    ("evidence", "--evidence", "evidence"),
    ("recordings", "--recording", "scope.recordings"),
    ("call_ids", "--call-id", "scope.call_ids"),
    ("party", "--party", "scope.party"),
    ("start", "--from", "scope.from"),
    ("end", "--to", "scope.to"),
    ("all", "--all", "scope.all"),
)
_FLAG_OF_KEY = {key: flag for _, flag, key in FIELDS}
#: How the daemon's messages, written for the request file, name its fields; said as options
#: when the request came from them.
_AS_OPTIONS = (('"all": true', "--all"),)


class _Ambiguous(ValueError):
    """A JSON text that parses, but not to one clear meaning."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            quoted = json.dumps(key, ensure_ascii=False)
            raise _Ambiguous(f"duplicate key {quoted} (ambiguous: refused)")
        obj[key] = value
    return obj


def _no_constant(name: str) -> NoReturn:
    raise _Ambiguous(f"not JSON: {name} is not a JSON value")


def _label(name: str) -> str:
    return "standard input" if name == STDIN else name


def read_document(name: str) -> dict[str, Any]:
    """The request object in file ``name`` (``-``: standard input), checked to be JSON with one
    meaning: no duplicate keys, no NaN or Infinity. Raises ``RecdError`` (exit 1) when it cannot
    be read and ``UsageError`` (exit 2) when it is not such an object; both name the file."""
    label = _label(name)
    try:
        if name == STDIN:
            data = sys.stdin.buffer.read(MAX_REQUEST + 1)
        else:
            with Path(name).open("rb") as file:
                data = file.read(MAX_REQUEST + 1)
    except OSError as exc:
        raise RecdError(f"{label}: cannot read: {os_reason(exc)}") from None
    if len(data) > MAX_REQUEST:
        # Not a request (a recording given by mistake?), and more than the daemon takes.
        raise UsageError(f"{label}: larger than {MAX_REQUEST // 1024} KiB: not a request file")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is harmless
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        problem = f"not JSON: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        raise UsageError(f"{label}: {problem}") from None
    except json.JSONDecodeError as exc:
        problem = f"not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise UsageError(f"{label}: {problem}") from None
    except _Ambiguous as exc:
        raise UsageError(f"{label}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{label}: not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise UsageError(f"{label}: not a JSON object (a request file holds one object)")
    return document


def document_from_flags(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The request object the field flags describe; ``received`` is ``now`` unless given."""
    document: dict[str, Any] = {
        "received": format_human_time(now),
        "requested_by": {},
        "scope": {"recordings": [], "call_ids": [], "party": None, "from": None, "to": None},
    }
    for dest, _, key in FIELDS:
        value = getattr(args, dest)
        if value is not None:
            head, _, member = key.partition(".")
            if member:
                document[head][member] = value
            else:
                document[head] = value
    return document


def _given(args: argparse.Namespace) -> list[str]:
    return [flag for dest, flag, _ in FIELDS if getattr(args, dest) is not None]


def _located(args: argparse.Namespace, message: str) -> str:
    """The daemon's ``KEY: problem`` about the document, said where the key came from."""
    if args.file is not None:
        return f"{_label(args.file)}: {message}"
    for text, flag in _AS_OPTIONS:
        message = message.replace(text, flag)
    return kit.flagged(message, _FLAG_OF_KEY)


def cmd_request_add(args: argparse.Namespace) -> ExitCode:
    """Register a request from its file or from flags."""
    given = _given(args)
    if args.file is not None and given:
        raise UsageError(
            f"argument {given[0]}: not allowed with argument --file "
            "(see `recctl request add --help`)"
        )
    if args.file is None and not given:
        raise UsageError(
            "give the request as --file REQUEST.json, or with --request-id, --licence and the "
            "other field options (see `recctl request add --help`)"
        )
    if args.file is not None:
        document = read_document(args.file)
    else:
        document = document_from_flags(args, datetime.now(UTC))
    reply = kit.ask(args, "request add", {"document": document})
    result = kit.unwrap_located(reply, lambda message: _located(args, message))
    request: Request = kit.shaped("request add", result, dict)
    return kit.print_result(args, "request add", request, kit.one(request_added))


def cmd_request_approve(args: argparse.Namespace) -> ExitCode:
    """Verify a two-person request as its second administrator."""
    return kit.answer(
        args,
        "request approve",
        {"request": args.request},
        kit.one(request_approved),
    )


def cmd_request_reject(args: argparse.Namespace) -> ExitCode:
    """Reject a request: nothing is ever erased for it."""
    return kit.answer(
        args,
        "request reject",
        {"request": args.request, "reason": args.reason},
        kit.one(request_rejected),
    )


def cmd_request_ls(args: argparse.Namespace) -> ExitCode:
    reply = kit.ask(args, "request ls", {"state": args.state})
    headers, row = REQUEST_HEADERS, request_row
    kit.listing(args, "request ls", reply, headers, row)
    return ExitCode.OK


def cmd_request_show(args: argparse.Namespace) -> ExitCode:
    return kit.answer(
        args,
        "request show",
        {"request": args.request},
        request_detail_lines,
    )


def cmd_request_certificate(args: argparse.Namespace) -> ExitCode:
    """The deletion certificate, exactly as recd wrote it, checked against the audit log."""
    command = "request certificate"
    result = kit.shaped(command, kit.ask(args, command, {"request": args.request}).unwrap(), dict)
    data, audited, seq = kit.rendered(
        command, lambda: (result["text"].encode("utf-8"), str(result["sha256"]), int(result["seq"]))
    )
    digest = hashlib.sha256(data).hexdigest()
    if digest != audited:
        raise RecdError(
            f"certificate from recd does not match its audited digest: its sha256 is {digest}, "
            f"audit entry #{seq} says {audited}; nothing written"
        )
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        kit.write_atomically(args.output, data, CERTIFICATE_MODE)
        kit.say(f"certificate written to {args.output} (sha256 {digest}, audit entry #{seq})")
    return ExitCode.OK


def _add_field_arguments(add: argparse.ArgumentParser) -> None:
    fields = add.add_argument_group(
        "the request as options (instead of --file)",
        "The same fields as the request file; a request given this way is unsigned, so its "
        "licence must verify requests by two-person approval.",
    )
    text = (
        ("--request-id", "ID", "the request's id, as the customer wrote it (it names the "
         "certificate)"),
        ("--licence", "LICENCE", "the licence whose recordings it asks to erase"),
        ("--requester-name", "NAME", "who asked: their name"),
        ("--requester-email", "EMAIL", "who asked: their email address"),
        ("--requester-role", "ROLE", "who asked: their role, e.g. DPO"),
    )  # fmt: skip
    for flag, metavar, help_text in text:
        fields.add_argument(flag, metavar=metavar, help=help_text)
    fields.add_argument(
        "--received",
        type=kit.utc_time,
        metavar="TIME",
        help="when the request was received (ISO 8601; UTC when no offset is given; default: "
        "now). Give it to make running the same command again harmless",
    )
    fields.add_argument("--reason", metavar="TEXT", help="why the customer asks (one line)")
    fields.add_argument(
        "--evidence", metavar="TEXT", help="the written request's reference or digest"
    )
    kit.add_scope_arguments(fields)
    fields.add_argument(
        "--all",
        action="store_const",
        const=True,
        help="every recording of the licence, present and indexed later; not with the other "
        "scope options (`recctl delete` then asks for the licence id)",
    )


def _add_add_parser(commands: Subparsers) -> None:
    add = kit.command(
        commands,
        "add",
        cmd_request_add,
        help="register a request",
        description="Register an early-deletion request as received, from the request file "
        "(JSON, as the customer's agent sent it, signature included) or from options. The "
        "scope options combine with AND; a scope that covers every recording of the licence "
        'is refused unless it says so with --all ("all": true in the file). A signed '
        "request of a licence that verifies by signature is verified at once; otherwise a "
        "second administrator must approve it. Registering the same request again is harmless.",
    )
    add.add_argument(
        "--file",
        metavar="REQUEST.json",
        help="the request file (- reads standard input); not with the field options",
    )
    _add_field_arguments(add)
    kit.add_json_argument(add, "the request as a JSON object")


def _request_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", metavar="REQUEST", help="the request's id")


def build_request_parser(subparsers: Subparsers) -> None:
    """``recctl request add|approve|reject|ls|show|certificate``."""
    commands = kit.group(
        subparsers,
        "request",
        help="register, verify and list early-deletion requests",
        description="Register, verify, reject and list customers' early-deletion requests, "
        "and get their deletion certificates. `recctl delete` executes a verified request.",
    )
    _add_add_parser(commands)
    approve = kit.command(
        commands,
        "approve",
        cmd_request_approve,
        help="verify a request as the second administrator",
        description="Approve a received request of a licence that verifies by two-person "
        "approval; you must not be the administrator who registered it.",
    )
    _request_argument(approve)
    kit.add_json_argument(approve, "the request as a JSON object")
    reject = kit.command(
        commands,
        "reject",
        cmd_request_reject,
        help="refuse a request",
        description="Reject a request that is not executed: nothing is ever erased for it.",
    )
    _request_argument(reject)
    reject.add_argument(
        "--reason", required=True, metavar="TEXT", help="why, for the audit log (one line)"
    )
    kit.add_json_argument(reject, "the request as a JSON object")
    ls = kit.command(
        commands,
        "ls",
        cmd_request_ls,
        help="list requests",
        description="List requests as a table, or as a JSON array with --json.",
    )
    ls.add_argument(
        "--state",
        choices=STATES,
        metavar="STATE",
        help="only requests in STATE: " + ", ".join(STATES[:-1]) + f" or {STATES[-1]}",
    )
    kit.add_json_argument(ls, "a JSON array of the requests")
    show = kit.command(
        commands,
        "show",
        cmd_request_show,
        help="one request in detail",
        description="Show one request: who asked, when and why, its scope, how it was "
        "verified, and each recording of its runs so far with its outcome.",
    )
    _request_argument(show)
    kit.add_json_argument(show, "the request and its recordings as a JSON object")
    certificate = kit.command(
        commands,
        "certificate",
        cmd_request_certificate,
        help="the deletion certificate",
        description="Print an executed request's deletion certificate (JSON) exactly as recd "
        "wrote it, after checking it against the SHA-256 recd wrote into the audit log.",
    )
    _request_argument(certificate)
    certificate.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write it to FILE (mode 0644; replaced whole or not at all) instead of stdout",
    )
