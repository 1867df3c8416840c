"""What every recctl command module shares: the parser class, argument types, asking the
daemon and printing its answer, and writing a file whole or not at all.

A daemon command sends one request with ``ask`` and reads the reply's result with ``shaped``
(the JSON type it must have) and ``show`` or ``listing`` (the text ``render`` makes of it). A
reply whose fields do not fit what ``render`` expects is the daemon and recctl being of different
releases, reported by ``unexpected`` as a ``ProtocolError`` (exit 1), never a traceback. No
module but the ``recctl*`` ones imports this.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, NoReturn, TypeAlias, TypeVar

from recd import durable
from recd.cli import client
from recd.cli.render.text import json_array, printable, table, to_json
from recd.core.times import format_iso, parse_iso
from recd.errors import ExitCode, RecdError, UsageError, os_reason
from recd.protocol import ErrorKind, ProtocolError, Reply, Request

#: Seconds to wait for the daemon's reply; ``scan`` and ``delete`` wait as long as they take.
TIMEOUT = client.DEFAULT_TIMEOUT

EPILOG = (
    "Exit status: 0 ok, 1 failed, 2 usage error, 3 not found or not allowed in this state, "
    "4 done in part, 69 daemon unavailable, 77 permission denied."
)

Handler = Callable[[argparse.Namespace], ExitCode]
#: What a reply's result is read as: a ``recd.cli.render.replies`` type.
Result = TypeVar("Result")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors, reported by ``main`` like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


def utc_time(value: str) -> str:
    """An ISO 8601 time argument as ISO 8601 UTC (``2026-12-01T00:00:00Z``); naive is UTC."""
    try:
        when = parse_iso(value, UTC).astimezone(UTC)
    except (ValueError, OverflowError):
        quoted = json.dumps(value, ensure_ascii=False)
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {quoted} (use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)"
        ) from None
    return format_iso(when)


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        quoted = json.dumps(value, ensure_ascii=False)
        raise argparse.ArgumentTypeError(f"not a positive integer: {quoted}")
    return number


def command(
    commands: Subparsers,
    name: str,
    handler: Handler,
    *,
    help: str,
    description: str,
    epilog: str = EPILOG,
) -> Parser:
    """A command's parser, ``handler`` run for it; ``--json`` is off unless it is added."""
    parser = commands.add_parser(name, help=help, description=description, epilog=epilog)
    parser.set_defaults(handler=handler, json=False)
    return parser


def group(subparsers: Subparsers, name: str, *, help: str, description: str) -> Subparsers:
    """A command group (``recctl hold ...``): its parser, and the subparsers of its commands."""
    parser = subparsers.add_parser(name, help=help, description=description, epilog=EPILOG)
    return parser.add_subparsers(dest="command", metavar="COMMAND", required=True)


def add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def add_scope_arguments(parser: argparse._ActionsContainer) -> None:
    """The options that narrow a hold's or a request's scope; they combine with AND."""
    parser.add_argument(
        "--recording",
        dest="recordings",
        action="append",
        metavar="ID",
        help="only this recording (its full id, as ls shows it); repeat for several",
    )
    parser.add_argument(
        "--call-id",
        dest="call_ids",
        action="append",
        metavar="ID",
        help="only recordings of this call id; repeat for several",
    )
    parser.add_argument(
        "--party", metavar="NUMBER", help="only calls with this phone number as caller or callee"
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=utc_time,
        metavar="TIME",
        help="only calls started at or after TIME (ISO 8601; UTC when no offset is given)",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=utc_time,
        metavar="TIME",
        help="only calls started before TIME (ISO 8601; UTC when no offset is given)",
    )


def ask(
    args: argparse.Namespace,
    command: str,
    request_args: dict[str, Any] | None = None,
    *,
    wait: bool = False,
) -> Reply:
    """The daemon's reply to one request; ``wait`` for as long as it takes (else ``TIMEOUT``)."""
    timeout = None if wait else TIMEOUT
    return client.call(args.socket, Request(command, request_args or {}), timeout=timeout)


def shaped(command: str, result: Any, shape: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """``result`` when it is a JSON array (``list``) or object (``dict``) as ``shape`` says."""
    if not isinstance(result, shape):
        raise unexpected(command, f"a JSON {'array' if shape is list else 'object'} expected")
    return result


def flagged(message: str, flags: Mapping[str, str]) -> str:
    """The daemon's ``KEY: problem`` (``KEY`` such as ``scope.recordings[2]``) said as the
    option that gave ``KEY``, when ``flags`` maps it to one."""
    key, colon, problem = message.partition(": ")
    flag = flags.get(key.split("[")[0])
    return f"{flag}: {problem}" if colon and flag else message


def unwrap_located(reply: Reply, locate: Callable[[str], str]) -> Any:
    """The reply's result; a usage error the daemon replied with is raised with its message
    passed through ``locate`` (which says where the problem came from)."""
    if not reply.ok and reply.error is ErrorKind.USAGE:
        raise UsageError(locate(reply.message or "usage error"))
    return reply.unwrap()


def unexpected(command: str, detail: str) -> ProtocolError:
    return ProtocolError(
        f"recd's reply to `{command}` is not what this recctl expects ({detail}); "
        "use the recctl that came with this recd"
    )


def rendered(command: str, make: Callable[[], Any]) -> Any:
    """What ``make`` renders from a reply; a field missing or of another type is the daemon's
    reply not fitting this recctl, not a bug here."""
    try:
        return make()
    except KeyError as exc:
        raise unexpected(command, f"no field {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise unexpected(command, str(exc)) from None


def show(command: str, lines: Callable[[], list[str]]) -> None:
    """Print the lines ``lines`` renders from a reply (see ``rendered``)."""
    print("\n".join(rendered(command, lines)))


def print_json(result: Any) -> None:
    if isinstance(result, list):
        for text in json_array(result):
            sys.stdout.write(text)
    else:
        print(to_json(result))


def listing(
    args: argparse.Namespace,
    command: str,
    reply: Reply,
    headers: Sequence[str],
    row: Callable[[Result], list[str]],
) -> list[Result]:
    """Print a list result as a table of ``row``s under ``headers``, or as JSON; its items are
    what ``row`` reads (a ``recd.cli.render.replies`` type)."""
    items: list[Result] = shaped(command, reply.unwrap(), list)
    if args.json:
        print_json(items)
    else:
        show(command, lambda: [table([row(item) for item in items], headers)])
    return items


def print_result(
    args: argparse.Namespace, command: str, result: Result, lines: Callable[[Result], list[str]]
) -> ExitCode:
    """Print an object result as JSON with ``--json``, else the ``lines`` rendered from it."""
    if args.json:
        print_json(result)
    else:
        show(command, lambda: lines(result))
    return ExitCode.OK


def one(line: Callable[[Result], str]) -> Callable[[Result], list[str]]:
    """The lines of a renderer that makes one line."""
    return lambda result: [line(result)]


def answer(
    args: argparse.Namespace,
    command: str,
    request_args: dict[str, Any] | None,
    lines: Callable[[Result], list[str]],
) -> ExitCode:
    """Ask ``command`` and print its object result (see ``print_result``), which ``lines``
    reads as the ``recd.cli.render.replies`` type it takes."""
    result: Result = shaped(command, ask(args, command, request_args).unwrap(), dict)
    return print_result(args, command, result, lines)


def say(line: str) -> None:
    """One line for the person at the terminal, on stderr (after what stdout has so far)."""
    sys.stdout.flush()
    print(printable(line), file=sys.stderr)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """``recd.durable.write_atomically``, its failure worded for the person at the terminal."""
    try:
        durable.write_atomically(path, data, mode)
    except OSError as exc:
        raise RecdError(f"{path}: cannot write: {os_reason(exc)}") from None
