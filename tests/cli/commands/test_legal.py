"""recctl hold, request and delete: legal holds, early-deletion requests and their execution.

As in tests/cli/test_main.py: recctl.main runs in-process against a fake daemon on a real Unix
socket (tests/fakedaemon.py) that records each request and answers canned replies; the requests
sent, stdout, the stderr line and the exit status are asserted word for word. ``delete`` sends
two requests, so its daemon answers from a script, one answer per connection.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recd.cli.main import main
from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.fakedaemon import Answer, Delay, FakeDaemon, socket_path


@dataclass
class ScriptedDaemon(FakeDaemon):
    """A fake daemon that answers its ``script`` in order, then ``answer``."""

    script: list[Answer] = field(default_factory=list)

    def _answer(self, conn: socket.socket, answer: Answer) -> None:
        super()._answer(conn, self.script.pop(0) if self.script else answer)


@pytest.fixture
def daemon(sock_dir: Path) -> Iterator[ScriptedDaemon]:
    with ScriptedDaemon(socket_path(sock_dir)) as fake:
        yield fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ask(
    capsys: pytest.CaptureFixture[str], daemon: ScriptedDaemon, answer: Any, *argv: str
) -> tuple[int, str, str]:
    """Run ``recctl --socket <daemon> ARGV`` with the daemon answering ``answer``."""
    canned = isinstance(answer, Reply | bytes | Delay)
    daemon.answer = answer if canned else Reply.success(answer)
    return run(capsys, "--socket", str(daemon.path), *argv)


def script(capsys, daemon, answers: list[Any], *argv: str) -> tuple[int, str, str]:
    """Run recctl with the daemon answering ``answers``, one per request, in order."""
    daemon.script = [a if isinstance(a, Reply | Delay) else Reply.success(a) for a in answers]
    daemon.answer = Reply.failure(ErrorKind.FAILED, "no more answers in the script")
    return run(capsys, "--socket", str(daemon.path), *argv)


def usage(command: str, message: str) -> str:
    return f"recctl: {message} (see `recctl {command} --help`)\n"


def unexpected(command: str, detail: str) -> str:
    return (
        f"recctl: recd's reply to `{command}` is not what this recctl expects ({detail}); "
        "use the recctl that came with this recd\n"
    )


class Terminal(io.StringIO):
    """Standard input typed at a terminal."""

    def isatty(self) -> bool:
        return True


class Interrupted(Terminal):
    """A terminal where the person presses Ctrl-C at the question."""

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        raise KeyboardInterrupt


def stdin_bytes(data: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


# holds ------------------------------------------------------------------------------------------

REC_A = "8a47373e7a113408a3a4"
REC_B = "b3c0b50ec44a25938d00"

HOLD: dict[str, Any] = {
    "id": "H-0003",
    "licence": "acme",
    "case": "CASE-9",
    "reason": "litigation: Acme v. Example",
    "scope": {
        "recordings": [REC_A, REC_B],
        "call_ids": ["1712"],
        "party": "+441234567890",
        "from": "2026-11-01T00:00:00Z",
        "to": "2026-11-15T00:00:00Z",
    },
    "whole_licence": False,
    "state": "active",
    "placed_at": "2026-11-23T13:43:09.123456Z",
    "placed_by": "alice",
    "until": None,
    "released_at": None,
    "released_by": None,
    "release_reason": None,
    "held": 12,
}
WHOLE: dict[str, Any] = HOLD | {
    "id": "H-0004",
    "scope": {"recordings": [], "call_ids": [], "party": None, "from": None, "to": None},
    "whole_licence": True,
    "until": "2026-12-31T00:00:00Z",
    "held": 1,
}
RELEASED: dict[str, Any] = HOLD | {
    "id": "H-0001",
    "licence": "other",
    "scope": {
        "recordings": [],
        "call_ids": ["17", "18"],
        "party": None,
        "from": "2026-10-01T08:30:00Z",
        "to": None,
    },
    "state": "released",
    "released_at": "2026-11-20T09:00:00Z",
    "released_by": "bob",
    "release_reason": "case settled",
    "held": 0,
}


def test_hold_place_prints_the_id_alone_and_says_what_it_holds(capsys, daemon):
    argv = [
        "hold", "place", "--licence", "acme", "--case", "CASE-9", "--reason", HOLD["reason"],
        "--recording", REC_A, "--recording", REC_B, "--call-id", "1712",
        "--party", "+441234567890", "--from", "2026-11-01", "--to", "2026-11-15T01:00+01:00",
    ]  # fmt: skip
    assert ask(capsys, daemon, HOLD, *argv) == (
        ExitCode.OK,
        "H-0003\n",
        "hold H-0003 placed on licence acme (case CASE-9): 12 recordings held now; recordings "
        "indexed later that match are held too\n",
    )
    assert daemon.request == Request(
        "hold place",
        {
            "licence": "acme",
            "case": "CASE-9",
            "reason": "litigation: Acme v. Example",
            "recordings": [REC_A, REC_B],
            "call_ids": ["1712"],
            "party": "+441234567890",
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-15T00:00:00Z",
            "until": None,
        },
    )


def test_a_hold_without_scope_options_covers_the_whole_licence(capsys, daemon):
    argv = ["hold", "place", "--licence", "acme", "--case", "CASE-9", "--reason", "r"]
    code, out, err = ask(capsys, daemon, WHOLE, *argv, "--until", "2026-12-31")
    assert (code, out, err) == (
        ExitCode.OK,
        "H-0004\n",
        "hold H-0004 placed on licence acme (case CASE-9) until 2026-12-31T00:00:00Z: covers "
        "every recording of licence acme, present and future (no --recording, --call-id, "
        "--party, --from or --to given)\n",
    )
    assert daemon.request.args == {
        "licence": "acme",
        "case": "CASE-9",
        "reason": "r",
        "recordings": [],
        "call_ids": [],
        "party": None,
        "from": None,
        "to": None,
        "until": "2026-12-31T00:00:00Z",
    }


def test_hold_place_json_prints_the_hold(capsys, daemon):
    one = HOLD | {"held": 1}
    argv = ["hold", "place", "--licence", "acme", "--case", "CASE-9", "--reason", "r"]
    assert ask(capsys, daemon, one, *argv, "--call-id", "1712", "--json") == (
        ExitCode.OK,
        json.dumps(one, indent=2) + "\n",
        "hold H-0003 placed on licence acme (case CASE-9): 1 recording held now; recordings "
        "indexed later that match are held too\n",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--case", "C", "--reason", "r"],
            "the following arguments are required: --licence",
        ),
        (
            ["--licence", "acme", "--reason", "r"],
            "the following arguments are required: --case",
        ),
        (
            ["--licence", "acme", "--case", "C", "--from", "last week"],
            'argument --from: not an ISO 8601 time: "last week" '
            "(use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)",
        ),
        (
            ["--licence", "acme", "--case", "C", "--reason", "r", "--until", "soon"],
            'argument --until: not an ISO 8601 time: "soon" '
            "(use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)",
        ),
    ],
)
def test_hold_place_usage_errors(capsys, daemon, options, message):
    assert ask(capsys, daemon, HOLD, "hold", "place", *options) == (
        ExitCode.USAGE,
        "",
        usage("hold place", message),
    )
    assert daemon.requests == []


@pytest.mark.parametrize(
    ("kind", "message", "said"),
    [
        (ErrorKind.USAGE, "recordings[1]: not a recording id (20 hex digits, as recctl ls shows "
         "them), got 'zz'", "--recording: not a recording id (20 hex digits, as recctl ls shows "
         "them), got 'zz'"),
        (ErrorKind.USAGE, "until: 2026-11-01T00:00:00Z has already passed",
         "--until: 2026-11-01T00:00:00Z has already passed"),
        (ErrorKind.USAGE, "call_ids[0]: must not be empty", "--call-id: must not be empty"),
        (ErrorKind.USAGE, "the request is larger than 65536 bytes",
         "the request is larger than 65536 bytes"),
        (ErrorKind.USAGE, "scope: odd", "scope: odd"),
        (ErrorKind.NOT_FOUND, "licence NOPE is neither in licences.d nor on any recording",
         "licence NOPE is neither in licences.d nor on any recording"),
    ],
)  # fmt: skip
def test_hold_place_names_the_option_the_daemon_refuses(capsys, daemon, kind, message, said):
    argv = ["hold", "place", "--licence", "acme", "--case", "C", "--reason", "r"]
    code = ExitCode.USAGE if kind is ErrorKind.USAGE else ExitCode.NOT_ALLOWED
    assert ask(capsys, daemon, Reply.failure(kind, message), *argv) == (
        code,
        "",
        f"recctl: {said}\n",
    )


#: What ``hold release`` replies: the hold as released, how many it alone held, when they fall due.
HOLD_RELEASE: dict[str, Any] = HOLD | {
    "state": "released",
    "released_at": "2026-11-23T10:00:00Z",
    "released_by": "bob",
    "release_reason": "case settled",
    "released": 12,
    "due_from": "2026-11-30T10:00:00.000001Z",
}


@pytest.mark.parametrize(
    ("released", "line"),
    [
        (
            12,
            "hold H-0003 released: 12 recordings no longer held; none is erased before "
            "2026-11-30T10:00:00Z (holds.release_grace)\n",
        ),
        (
            1,
            "hold H-0003 released: 1 recording no longer held; none is erased before "
            "2026-11-30T10:00:00Z (holds.release_grace)\n",
        ),
        (0, "hold H-0003 released: no recording was held by it alone, so none falls due\n"),
    ],
)
def test_hold_release(capsys, daemon, released, line):
    result = HOLD_RELEASE | {"released": released}
    argv = ["hold", "release", "H-0003", "--reason", "case settled"]
    assert ask(capsys, daemon, result, *argv) == (ExitCode.OK, line, "")
    assert daemon.request == Request("hold release", {"hold": "H-0003", "reason": "case settled"})
    assert ask(capsys, daemon, result, *argv, "--json") == (
        ExitCode.OK,
        json.dumps(result, indent=2) + "\n",
        "",
    )


def test_releasing_an_unknown_or_released_hold_exits_3(capsys, daemon):
    reply = Reply.failure(ErrorKind.NOT_FOUND, "no hold H-0099 (see `recctl hold ls --all`)")
    argv = ["hold", "release", "H-0099", "--reason", "oops"]
    assert ask(capsys, daemon, reply, *argv) == (
        ExitCode.NOT_ALLOWED,
        "",
        "recctl: no hold H-0099 (see `recctl hold ls --all`)\n",
    )
    assert ask(capsys, daemon, HOLD, "hold", "release", "H-0099") == (
        ExitCode.USAGE,
        "",
        usage("hold release", "the following arguments are required: --reason"),
    )


HOLD_TABLE = (
    "HOLD    LICENCE  CASE    STATE     HELD  PLACED                BY     UNTIL"
    "                 SCOPE\n"
    "H-0003  acme     CASE-9  active    12    2026-11-23T13:43:09Z  alice  -"
    "                     2 recordings, call 1712, party +441234567890, 2026-11-01..2026-11-15\n"
    "H-0004  acme     CASE-9  active    1     2026-11-23T13:43:09Z  alice  2026-12-31T00:00:00Z"
    "  whole licence\n"
    "H-0001  other    CASE-9  released  0     2026-11-23T13:43:09Z  alice  -"
    "                     2 calls, 2026-10-01T08:30:00Z..\n"
)


def test_hold_ls(capsys, daemon):
    holds = [HOLD, WHOLE, RELEASED]
    assert ask(capsys, daemon, holds, "hold", "ls", "--all") == (ExitCode.OK, HOLD_TABLE, "")
    assert daemon.request == Request("hold ls", {"all": True})
    daemon.requests.clear()
    assert ask(capsys, daemon, [], "hold", "ls") == (
        ExitCode.OK,
        "HOLD  LICENCE  CASE  STATE  HELD  PLACED  BY  UNTIL  SCOPE\n",
        "",
    )
    assert daemon.request == Request("hold ls", {"all": False})
    assert ask(capsys, daemon, holds, "hold", "ls", "--json") == (
        ExitCode.OK,
        "[\n" + ",\n".join(json.dumps(h) for h in holds) + "\n]\n",
        "",
    )


def test_hold_show(capsys, daemon):
    assert ask(capsys, daemon, HOLD, "hold", "show", "H-0003") == (
        ExitCode.OK,
        "hold:            H-0003\n"
        "licence:         acme\n"
        "case:            CASE-9\n"
        "reason:          litigation: Acme v. Example\n"
        "state:           active\n"
        f"recordings:      {REC_A}, {REC_B}\n"
        "call ids:        1712\n"
        "party:           +441234567890\n"
        "started from:    2026-11-01T00:00:00Z\n"
        "started before:  2026-11-15T00:00:00Z\n"
        "held now:        12 recordings\n"
        "placed:          2026-11-23T13:43:09Z by alice\n"
        "until:           none (held until released)\n",
        "",
    )
    assert daemon.request == Request("hold show", {"hold": "H-0003"})


def test_hold_show_of_a_released_whole_licence_hold(capsys, daemon):
    hold = WHOLE | {
        "state": "expired",
        "released_at": "2026-12-31T00:00:01Z",
        "released_by": "recd",
        "release_reason": None,
        "reason": "audit\x1b[2J",
    }
    assert ask(capsys, daemon, hold, "hold", "show", "H-0004") == (
        ExitCode.OK,
        "hold:      H-0004\n"
        "licence:   acme\n"
        "case:      CASE-9\n"
        "reason:    audit\\x1b[2J\n"
        "state:     expired\n"
        "scope:     whole licence: every recording of it, present and future\n"
        "held now:  1 recording\n"
        "placed:    2026-11-23T13:43:09Z by alice\n"
        "until:     2026-12-31T00:00:00Z\n"
        "released:  2026-12-31T00:00:01Z by recd\n",
        "",
    )
    out = ask(capsys, daemon, RELEASED, "hold", "show", "H-0001")[1]
    assert "\nreleased:      2026-11-20T09:00:00Z by bob: case settled\n" in out
    assert ask(capsys, daemon, HOLD, "hold", "show", "H-0003", "--json") == (
        ExitCode.OK,
        json.dumps(HOLD, indent=2) + "\n",
        "",
    )


# requests ---------------------------------------------------------------------------------------

DOCUMENT: dict[str, Any] = {
    "request_id": "REQ-2026-0042",
    "licence": "acme",
    "requested_by": {"name": "Jane Doe", "email": "dpo@acme.example", "role": "DPO"},
    "received": "2026-11-20T10:00:00Z",
    "reason": "Erasure requested by the data subject",
    "evidence": "letter ACME/DP/77",
    "scope": {
        "recordings": [],
        "call_ids": ["1712"],
        "party": "+441234567890",
        "from": "2026-11-01T00:00:00Z",
        "to": "2026-11-15T00:00:00Z",
    },
}
COUNTS = {"erased": 0, "held": 0, "failed": 0, "gone": 0, "pending": 0}
REQUEST: dict[str, Any] = {
    "id": "REQ-2026-0042",
    "licence": "acme",
    "state": "received",
    "requested_by": {"name": "Jane Doe", "email": "dpo@acme.example", "role": "DPO"},
    "received": "2026-11-20T10:00:00Z",
    "reason": "Erasure requested by the data subject",
    "evidence": "letter ACME/DP/77",
    "scope": DOCUMENT["scope"],
    "whole_licence": False,
    "verification": "two-person",
    "registered_at": "2026-11-23T13:50:00Z",
    "registered_by": "alice",
    "approved_at": None,
    "approved_by": None,
    "signed_by": None,
    "rejected_at": None,
    "rejected_by": None,
    "rejected_reason": None,
    "executed_at": None,
    "certificate": None,
    "counts": COUNTS,
}
SIGNED: dict[str, Any] = REQUEST | {
    "id": "REQ-2026-0043",
    "state": "verified",
    "verification": "signature",
    "signed_by": {"name": "Jane Doe", "email": "dpo@acme.example", "key": "ed25519:AAAA"},
}
APPROVED: dict[str, Any] = REQUEST | {
    "state": "verified",
    "approved_at": "2026-11-23T14:00:00Z",
    "approved_by": "bob",
}


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "REQUEST.json"
    path.write_text(json.dumps(DOCUMENT, indent=2), encoding="utf-8")
    return path


def test_request_add_from_a_file(capsys, daemon, request_file):
    assert ask(capsys, daemon, REQUEST, "request", "add", "--file", str(request_file)) == (
        ExitCode.OK,
        "request REQ-2026-0042 registered for licence acme: received; a second administrator "
        "must run `recctl request approve REQ-2026-0042`\n",
        "",
    )
    assert daemon.request == Request("request add", {"document": DOCUMENT})


def test_a_signed_request_is_verified_at_once(capsys, daemon, request_file):
    assert ask(capsys, daemon, SIGNED, "request", "add", "--file", str(request_file)) == (
        ExitCode.OK,
        "request REQ-2026-0043 registered for licence acme: verified: signed by Jane Doe "
        "<dpo@acme.example>\n",
        "",
    )
    # A state with nothing more to say (a daemon of a later release) is said as it is.
    odd = SIGNED | {"state": "verified", "signed_by": None}
    assert ask(capsys, daemon, odd, "request", "add", "--file", str(request_file))[1] == (
        "request REQ-2026-0043 registered for licence acme: verified\n"
    )


def test_adding_a_request_again_says_it_was_there(capsys, daemon, request_file):
    existing = SIGNED | {"existing": True}
    assert ask(capsys, daemon, existing, "request", "add", "--file", str(request_file)) == (
        ExitCode.OK,
        "request REQ-2026-0043 was already registered with this content (state: verified)\n",
        "",
    )
    argv = ["request", "add", "--file", str(request_file), "--json"]
    assert ask(capsys, daemon, existing, *argv) == (
        ExitCode.OK,
        json.dumps(existing, indent=2) + "\n",
        "",
    )


def test_request_add_reads_standard_input(capsys, daemon, monkeypatch):
    # With a byte-order mark, as some editors write.
    data = b"\xef\xbb\xbf" + json.dumps(DOCUMENT | {"reason": "Zo\u00eb asked"}).encode()
    monkeypatch.setattr("sys.stdin", stdin_bytes(data))
    assert ask(capsys, daemon, REQUEST, "request", "add", "--file", "-")[0] == ExitCode.OK
    assert daemon.request.args["document"]["reason"] == "Zo\u00eb asked"


@pytest.mark.parametrize(
    ("content", "code", "problem"),
    [
        (b'{"request_id": "R",\n  "licence": "acme"\n  "reason": "x"}', 2,
         "not JSON: line 3 column 3: Expecting ',' delimiter"),
        (b"", 2, "not JSON: line 1 column 1: Expecting value"),
        (b'{"licence": "caf\xe9"}', 2, "not JSON: not valid UTF-8 (byte 0xe9 at offset 16)"),
        (b'{"scope": {"to": null}, "scope": {}}', 2,
         'duplicate key "scope" (ambiguous: refused)'),
        (b'{"scope": {"party": "1", "party": "2"}}', 2,
         'duplicate key "party" (ambiguous: refused)'),
        (b'{"size": NaN}', 2, "not JSON: NaN is not a JSON value"),
        (b'{"size": -Infinity}', 2, "not JSON: -Infinity is not a JSON value"),
        (b"[" * 30_000 + b"]" * 30_000, 2, "not JSON: nested too deeply"),
        (b'[{"request_id": "R"}]', 2, "not a JSON object (a request file holds one object)"),
        (b'"REQ-1"', 2, "not a JSON object (a request file holds one object)"),
        (b" " * 65537, 2, "larger than 64 KiB: not a request file"),
    ],
)  # fmt: skip
def test_a_request_file_that_is_not_one_json_object_is_refused(
    capsys, daemon, tmp_path, content, code, problem
):
    path = tmp_path / "REQUEST.json"
    path.write_bytes(content)
    assert ask(capsys, daemon, REQUEST, "request", "add", "--file", str(path)) == (
        code,
        "",
        f"recctl: {path}: {problem}\n",
    )
    assert daemon.requests == []


def test_standard_input_is_named_as_such(capsys, daemon, monkeypatch):
    monkeypatch.setattr("sys.stdin", stdin_bytes(b"{,}"))
    assert ask(capsys, daemon, REQUEST, "request", "add", "--file", "-") == (
        ExitCode.USAGE,
        "",
        "recctl: standard input: not JSON: line 1 column 2: Expecting property name enclosed "
        "in double quotes\n",
    )


@pytest.mark.parametrize(
    ("name", "strerror"), [("missing.json", "No such file or directory"), (".", "Is a directory")]
)
def test_an_unreadable_request_file_exits_1(capsys, daemon, tmp_path, name, strerror):
    path = tmp_path / name
    assert ask(capsys, daemon, REQUEST, "request", "add", "--file", str(path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {path}: cannot read: {strerror}\n",
    )
    assert daemon.requests == []


FLAGS = [
    "--request-id", "REQ-2026-0042", "--licence", "acme", "--requester-name", "Jane Doe",
    "--requester-email", "dpo@acme.example", "--requester-role", "DPO",
    "--received", "2026-11-20T11:00+01:00", "--reason", "Erasure requested by the data subject",
    "--evidence", "letter ACME/DP/77", "--call-id", "1712", "--party", "+441234567890",
    "--from", "2026-11-01", "--to", "2026-11-15",
]  # fmt: skip


def test_request_add_from_options(capsys, daemon):
    assert ask(capsys, daemon, REQUEST, "request", "add", *FLAGS) == (
        ExitCode.OK,
        "request REQ-2026-0042 registered for licence acme: received; a second administrator "
        "must run `recctl request approve REQ-2026-0042`\n",
        "",
    )
    assert daemon.request == Request("request add", {"document": DOCUMENT})


def test_request_add_from_options_received_now_by_default(capsys, daemon):
    before = datetime.now(UTC).replace(microsecond=0)
    argv = ["request", "add", "--request-id", "R-1", "--recording", REC_A, "--recording", REC_B]
    assert ask(capsys, daemon, REQUEST, *argv)[0] == ExitCode.OK
    document = daemon.request.args["document"]
    received = document.pop("received")
    assert received.endswith("Z")
    assert before <= datetime.fromisoformat(received) <= datetime.now(UTC)
    assert document == {
        "request_id": "R-1",
        "requested_by": {},
        "scope": {"recordings": [REC_A, REC_B], "call_ids": [], "party": None, "from": None,
                  "to": None},
    }  # fmt: skip


def test_request_add_all_from_options(capsys, daemon):
    argv = ["request", "add", "--request-id", "R-1", "--licence", "acme", "--all"]
    assert ask(capsys, daemon, REQUEST, *argv)[0] == ExitCode.OK
    assert daemon.request.args["document"]["scope"] == {
        "recordings": [], "call_ids": [], "party": None, "from": None, "to": None, "all": True,
    }  # fmt: skip
    argv = ["request", "add", "--request-id", "R-1", "--licence", "acme", "--party", "+44123"]
    daemon.requests.clear()
    assert ask(capsys, daemon, REQUEST, *argv)[0] == ExitCode.OK
    assert "all" not in daemon.request.args["document"]["scope"]


def test_request_add_takes_a_file_or_options_not_both(capsys, daemon, request_file):
    argv = ["request", "add", "--licence", "acme", "--file", str(request_file)]
    argv += ["--to", "2026-12-01"]
    assert ask(capsys, daemon, REQUEST, *argv) == (
        ExitCode.USAGE,
        "",
        usage("request add", "argument --licence: not allowed with argument --file"),
    )
    assert ask(capsys, daemon, REQUEST, "request", "add") == (
        ExitCode.USAGE,
        "",
        usage(
            "request add",
            "give the request as --file REQUEST.json, or with --request-id, --licence and the "
            "other field options",
        ),
    )
    assert daemon.requests == []


@pytest.mark.parametrize(
    ("message", "from_file", "from_options"),
    [
        ("scope.from: not an ISO 8601 time with a zone: '1 Nov'", "scope.from: not an ISO 8601 "
         "time with a zone: '1 Nov'", "--from: not an ISO 8601 time with a zone: '1 Nov'"),
        ("requested_by.email: missing", "requested_by.email: missing",
         "--requester-email: missing"),
        ("scope.recordings[1]: not a recording id", "scope.recordings[1]: not a recording id",
         "--recording: not a recording id"),
        ("scope: empty: name recordings", "scope: empty: name recordings",
         "scope: empty: name recordings"),
        ('scope.to: missing: a time range with no end covers every recording started from '
         '2026-11-01T00:00:00.000000Z on, including those made later; give an end, or "all": '
         'true to erase every recording of licence acme',
         'scope.to: missing: a time range with no end covers every recording started from '
         '2026-11-01T00:00:00.000000Z on, including those made later; give an end, or "all": '
         'true to erase every recording of licence acme',
         '--to: missing: a time range with no end covers every recording started from '
         '2026-11-01T00:00:00.000000Z on, including those made later; give an end, or --all '
         'to erase every recording of licence acme'),
        ('scope.all: "all": true erases every recording of the licence and takes no other scope'
         ' field; this scope also gives party',
         'scope.all: "all": true erases every recording of the licence and takes no other scope'
         ' field; this scope also gives party',
         '--all: --all erases every recording of the licence and takes no other scope field;'
         ' this scope also gives party'),
        ("the request is larger than 65536 bytes", "the request is larger than 65536 bytes",
         "the request is larger than 65536 bytes"),
    ],
)  # fmt: skip
def test_the_daemons_usage_errors_say_where_the_problem_is(
    capsys, daemon, request_file, message, from_file, from_options
):
    reply = Reply.failure(ErrorKind.USAGE, message)
    assert ask(capsys, daemon, reply, "request", "add", "--file", str(request_file)) == (
        ExitCode.USAGE,
        "",
        f"recctl: {request_file}: {from_file}\n",
    )
    assert ask(capsys, daemon, reply, "request", "add", *FLAGS) == (
        ExitCode.USAGE,
        "",
        f"recctl: {from_options}\n",
    )


def test_the_daemons_other_errors_are_as_it_says(capsys, daemon, request_file):
    message = "request REQ-2026-0042 is signed by a key that no licence lists (ed25519:AAAA)"
    reply = Reply.failure(ErrorKind.NOT_ALLOWED, message)
    assert ask(capsys, daemon, reply, "request", "add", "--file", str(request_file)) == (
        ExitCode.NOT_ALLOWED,
        "",
        f"recctl: {message}\n",
    )


def test_request_approve_and_reject(capsys, daemon):
    assert ask(capsys, daemon, APPROVED, "request", "approve", "REQ-2026-0042") == (
        ExitCode.OK,
        "request REQ-2026-0042 verified: approved by bob; erase with "
        "`recctl delete --request-id REQ-2026-0042`\n",
        "",
    )
    assert daemon.request == Request("request approve", {"request": "REQ-2026-0042"})
    daemon.requests.clear()
    rejected = REQUEST | {
        "state": "rejected",
        "rejected_at": "2026-11-23T14:00:00Z",
        "rejected_by": "bob",
        "rejected_reason": "not the data subject",
    }
    argv = ["request", "reject", "REQ-2026-0042", "--reason", "not the data subject"]
    assert ask(capsys, daemon, rejected, *argv) == (
        ExitCode.OK,
        "request REQ-2026-0042 rejected by bob: nothing is erased for it\n",
        "",
    )
    assert daemon.request == Request(
        "request reject", {"request": "REQ-2026-0042", "reason": "not the data subject"}
    )
    for command, result in [(argv, rejected), (["request", "approve", "R"], APPROVED)]:
        assert ask(capsys, daemon, result, *command, "--json") == (
            ExitCode.OK,
            json.dumps(result, indent=2) + "\n",
            "",
        )


def test_approving_ones_own_request_exits_3(capsys, daemon):
    message = "alice registered request REQ-2026-0042 and cannot also approve it"
    reply = Reply.failure(ErrorKind.NOT_ALLOWED, message)
    assert ask(capsys, daemon, reply, "request", "approve", "REQ-2026-0042") == (
        ExitCode.NOT_ALLOWED,
        "",
        f"recctl: {message}\n",
    )


DONE: dict[str, Any] = APPROVED | {
    "id": "REQ-2026-0040",
    "state": "partial",
    "executed_at": "2026-11-23T15:00:00Z",
    "certificate": {
        "path": "/var/lib/recd/certificates/REQ-2026-0040.json",
        "sha256": "ab" * 32,
        "seq": 812,
    },
    "counts": {"erased": 3, "held": 1, "failed": 0, "gone": 2, "pending": 0},
}


def test_request_ls_shows_a_request_rebuilt_without_its_document(capsys, daemon):
    """A request rebuilt from an audit log older than its document has no requester and no
    time received: its row says ``?`` and ``-`` instead of failing the whole listing."""
    rebuilt = REQUEST | {"id": "REQ-OLD", "requested_by": None, "received": None}
    code, out, err = ask(capsys, daemon, [rebuilt, SIGNED], "request", "ls")
    assert (code, err) == (ExitCode.OK, "")
    assert out.splitlines()[1].split() == ["REQ-OLD", "acme", "received", "-", "?", "-", "0", "0"]
    assert out.splitlines()[2].startswith("REQ-2026-0043")


def test_request_ls(capsys, daemon):
    assert ask(capsys, daemon, [REQUEST, SIGNED, DONE], "request", "ls") == (
        ExitCode.OK,
        "REQUEST        LICENCE  STATE     RECEIVED              REQUESTER  VERIFIED-BY"
        "           ERASED  HELD\n"
        "REQ-2026-0042  acme     received  2026-11-20T10:00:00Z  Jane Doe   -"
        "                     0       0\n"
        "REQ-2026-0043  acme     verified  2026-11-20T10:00:00Z  Jane Doe   Jane Doe (signature)"
        "  0       0\n"
        "REQ-2026-0040  acme     partial   2026-11-20T10:00:00Z  Jane Doe   bob"
        "                   3       1\n",
        "",
    )
    assert daemon.request == Request("request ls", {"state": None})
    daemon.requests.clear()
    assert ask(capsys, daemon, [DONE], "request", "ls", "--state", "partial", "--json") == (
        ExitCode.OK,
        f"[\n{json.dumps(DONE)}\n]\n",
        "",
    )
    assert daemon.request == Request("request ls", {"state": "partial"})
    assert ask(capsys, daemon, [], "request", "ls", "--state", "done") == (
        ExitCode.USAGE,
        "",
        usage(
            "request ls",
            "argument --state: invalid choice: 'done' (choose from 'received', 'verified', "
            "'rejected', 'executing', 'completed', 'partial')",
        ),
    )


ITEMS: list[dict[str, Any]] = [
    {"id": REC_A, "location": "/srv/rec/1001/1712.wav", "licence": "acme", "size": 1_200_000,
     "outcome": "erased", "holds": [], "note": None},
    {"id": REC_B, "location": "/srv/rec/1001/1712-2.wav", "licence": "acme", "size": 512,
     "outcome": "held", "holds": ["H-0002", "H-0003"], "note": None},
    {"id": "c0ffee0000c0ffee0000", "location": None, "licence": "acme", "size": None,
     "outcome": "gone", "holds": [], "note": "never indexed"},
]  # fmt: skip

DONE_TEXT = """\
request:         REQ-2026-0040
licence:         acme
state:           partial
requested by:    Jane Doe <dpo@acme.example>, DPO
received:        2026-11-20T10:00:00Z
reason:          Erasure requested by the data subject
evidence:        letter ACME/DP/77
call ids:        1712
party:           +441234567890
started from:    2026-11-01T00:00:00Z
started before:  2026-11-15T00:00:00Z
verification:    two-person
registered:      2026-11-23T13:50:00Z by alice
approved:        2026-11-23T14:00:00Z by bob
executed:        2026-11-23T15:00:00Z
outcome:         erased 3, held 1, failed 0, already gone 2
certificate:     /var/lib/recd/certificates/REQ-2026-0040.json (sha256 {sha}, audit entry #812)

ID                    LOCATION                  SIZE    OUTCOME  HOLDS           NOTE
8a47373e7a113408a3a4  /srv/rec/1001/1712.wav    1.2 MB  erased   -               -
b3c0b50ec44a25938d00  /srv/rec/1001/1712-2.wav  512 B   held     H-0002, H-0003  -
c0ffee0000c0ffee0000  -                         -       gone     -               never indexed
""".replace("{sha}", "ab" * 32)


def test_request_show(capsys, daemon):
    assert ask(capsys, daemon, DONE | {"items": ITEMS}, "request", "show", "REQ-2026-0040") == (
        ExitCode.OK,
        DONE_TEXT,
        "",
    )
    assert daemon.request == Request("request show", {"request": "REQ-2026-0040"})


def test_request_show_of_a_signed_or_rejected_request_without_runs(capsys, daemon):
    rejected = SIGNED | {
        "state": "rejected",
        "rejected_at": "2026-11-23T14:00:00Z",
        "rejected_by": "bob",
        "rejected_reason": "duplicate of REQ-2026-0040",
        "counts": COUNTS | {"pending": 4},
        "items": [],
    }
    code, out, err = ask(capsys, daemon, rejected, "request", "show", "REQ-2026-0043")
    assert (code, err) == (ExitCode.OK, "")
    assert out.endswith(
        "verification:    signature\n"
        "registered:      2026-11-23T13:50:00Z by alice\n"
        "signed by:       Jane Doe <dpo@acme.example> (ed25519:AAAA)\n"
        "rejected:        2026-11-23T14:00:00Z by bob: duplicate of REQ-2026-0040\n"
        "outcome:         erased 0, held 0, failed 0, already gone 0, pending 4\n"
    )
    assert ask(capsys, daemon, rejected, "request", "show", "R", "--json") == (
        ExitCode.OK,
        json.dumps(rejected, indent=2) + "\n",
        "",
    )


def test_a_request_scope_as_the_file_gave_it(capsys, daemon):
    # The daemon returns the scope as the request file had it: fields may be left out.
    request = SIGNED | {"scope": {"recordings": [REC_A]}, "items": []}
    assert ask(capsys, daemon, request, "request", "show", "REQ-2026-0043") == (
        ExitCode.OK,
        "request:       REQ-2026-0043\n"
        "licence:       acme\n"
        "state:         verified\n"
        "requested by:  Jane Doe <dpo@acme.example>, DPO\n"
        "received:      2026-11-20T10:00:00Z\n"
        "reason:        Erasure requested by the data subject\n"
        "evidence:      letter ACME/DP/77\n"
        "recordings:    8a47373e7a113408a3a4\n"
        "verification:  signature\n"
        "registered:    2026-11-23T13:50:00Z by alice\n"
        "signed by:     Jane Doe <dpo@acme.example> (ed25519:AAAA)\n"
        "outcome:       erased 0, held 0, failed 0, already gone 0\n",
        "",
    )


CERTIFICATE = json.dumps(
    {"request_id": "REQ-2026-0040", "requested_by": "Zo\u00eb", "recordings": []}, indent=2,
    ensure_ascii=False,
) + "\n"  # fmt: skip
CERT_SHA = hashlib.sha256(CERTIFICATE.encode()).hexdigest()
CERT_REPLY: dict[str, Any] = {
    "text": CERTIFICATE,
    "sha256": CERT_SHA,
    "path": "/var/lib/recd/certificates/REQ-2026-0040.json",
    "seq": 812,
}


def test_request_certificate_prints_the_exact_text(capsys, daemon):
    assert ask(capsys, daemon, CERT_REPLY, "request", "certificate", "REQ-2026-0040") == (
        ExitCode.OK,
        CERTIFICATE,
        "",
    )
    assert daemon.request == Request("request certificate", {"request": "REQ-2026-0040"})


def test_request_certificate_output_writes_the_file_whole(capsys, daemon, tmp_path):
    path = tmp_path / "cert.json"
    path.write_text("an older certificate")
    argv = ["request", "certificate", "REQ-2026-0040", "--output", str(path)]
    assert ask(capsys, daemon, CERT_REPLY, *argv) == (
        ExitCode.OK,
        "",
        f"certificate written to {path} (sha256 {CERT_SHA}, audit entry #812)\n",
    )
    assert path.read_bytes() == CERTIFICATE.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["cert.json"]


def test_a_certificate_that_does_not_match_the_audit_log_is_not_written(capsys, daemon, tmp_path):
    path = tmp_path / "cert.json"
    forged = CERT_REPLY | {"text": CERTIFICATE.replace("Zo\u00eb", "Zoe")}
    digest = hashlib.sha256(forged["text"].encode()).hexdigest()
    message = (
        f"recctl: certificate from recd does not match its audited digest: its sha256 is "
        f"{digest}, audit entry #812 says {CERT_SHA}; nothing written\n"
    )
    argv = ["request", "certificate", "REQ-2026-0040"]
    assert ask(capsys, daemon, forged, *argv) == (ExitCode.FAILED, "", message)
    assert ask(capsys, daemon, forged, *argv, "--output", str(path)) == (
        ExitCode.FAILED,
        "",
        message,
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "strerror"),
    [("missing/cert.json", "No such file or directory"), ("directory", "Is a directory")],
)
def test_a_certificate_that_cannot_be_written_exits_1(capsys, daemon, tmp_path, name, strerror):
    (tmp_path / "directory").mkdir()
    path = tmp_path / name
    argv = ["request", "certificate", "REQ-2026-0040", "--output", str(path)]
    assert ask(capsys, daemon, CERT_REPLY, *argv) == (
        ExitCode.FAILED,
        "",
        f"recctl: {path}: cannot write: {strerror}\n",
    )
    assert os.listdir(tmp_path) == ["directory"]  # no temporary file left behind


# delete -----------------------------------------------------------------------------------------

PREVIEW_ITEMS: list[dict[str, Any]] = [
    {"id": REC_A, "location": "/srv/rec/1001/1712.wav", "licence": "acme", "size": 1_200_000,
     "outcome": "erase", "holds": [], "note": None},
    {"id": REC_B, "location": "/srv/rec/1001/1712-2.wav", "licence": "acme", "size": 512,
     "outcome": "held", "holds": ["H-0002"], "note": None},
    {"id": "c0ffee0000c0ffee0000", "location": None, "licence": "acme", "size": None,
     "outcome": "gone", "holds": [], "note": "never indexed"},
]  # fmt: skip
PREVIEW: dict[str, Any] = {
    "request": APPROVED,
    "items": PREVIEW_ITEMS,
    "erase": 1,
    "bytes": 1_200_000,
    "held": 1,
    "gone": 1,
}
PLAN = """\
request REQ-2026-0042 for licence acme: 1 recording to erase (1.2 MB), 1 held, 1 already gone
ID                    LOCATION                  SIZE    OUTCOME  HOLDS   NOTE
8a47373e7a113408a3a4  /srv/rec/1001/1712.wav    1.2 MB  erase    -       -
b3c0b50ec44a25938d00  /srv/rec/1001/1712-2.wav  512 B   held     H-0002  -
c0ffee0000c0ffee0000  -                         -       gone     -       never indexed
"""


def executed(counts: dict[str, int], items: list[dict[str, Any]]) -> dict[str, Any]:
    counts = COUNTS | counts
    state = "partial" if counts["held"] + counts["failed"] else "completed"
    request = APPROVED | {"state": state, "counts": counts}
    return {"request": request, "items": items}


ERASED = [PREVIEW_ITEMS[0] | {"outcome": "erased"}]
WITH_HELD = executed({"erased": 1, "held": 1, "gone": 1}, [*ERASED, *PREVIEW_ITEMS[1:]])
SOME_HELD = APPROVED | {"counts": COUNTS | {"held": "some"}}
PREVIEW_REQUEST = Request("request preview", {"request": "REQ-2026-0042"})
EXECUTE_REQUEST = Request("request execute", {"request": "REQ-2026-0042"})
DELETE = ["delete", "--request-id", "REQ-2026-0042"]


def test_delete_dry_run_shows_the_plan_and_erases_nothing(capsys, daemon):
    assert script(capsys, daemon, [PREVIEW], *DELETE, "--dry-run") == (
        ExitCode.OK,
        PLAN,
        "dry run: nothing erased\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]


def test_delete_yes_erases_and_exits_4_when_a_hold_kept_some(capsys, daemon):
    assert script(capsys, daemon, [PREVIEW, WITH_HELD], *DELETE, "--yes") == (
        ExitCode.PARTIAL,
        PLAN + "erased 1, held 1 (H-0002), failed 0, already gone 1; certificate: "
        "recctl request certificate REQ-2026-0042\n",
        "",
    )
    assert daemon.requests == [PREVIEW_REQUEST, EXECUTE_REQUEST]


def test_delete_exits_0_when_everything_is_erased(capsys, daemon):
    preview = PREVIEW | {"items": PREVIEW_ITEMS[:1], "held": 0, "gone": 0, "erase": 1}
    result = executed({"erased": 1}, ERASED)
    code, out, err = script(capsys, daemon, [preview, result], *DELETE, "--yes")
    assert (code, err) == (ExitCode.OK, "")
    assert out.endswith(
        "\nerased 1, held 0, failed 0, already gone 0; certificate: recctl request "
        "certificate REQ-2026-0042\n"
    )


def test_delete_lists_what_failed_and_exits_4(capsys, daemon):
    failed = PREVIEW_ITEMS[0] | {"outcome": "failed", "note": "Permission denied"}
    result = executed({"failed": 1, "gone": 1}, [failed, PREVIEW_ITEMS[2]])
    code, out, err = script(capsys, daemon, [PREVIEW, result], *DELETE, "--yes")
    assert (code, err) == (ExitCode.PARTIAL, "")
    assert out == PLAN + (
        "ID                    LOCATION                SIZE    OUTCOME  HOLDS  NOTE\n"
        "8a47373e7a113408a3a4  /srv/rec/1001/1712.wav  1.2 MB  failed   -      Permission denied\n"
        "erased 0, held 0, failed 1, already gone 1; certificate: recctl request certificate "
        "REQ-2026-0042\n"
    )


def test_delete_asks_on_a_terminal(capsys, daemon, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    assert script(capsys, daemon, [PREVIEW, WITH_HELD], *DELETE)[:3] == (
        ExitCode.PARTIAL,
        PLAN + "erased 1, held 1 (H-0002), failed 0, already gone 1; certificate: "
        "recctl request certificate REQ-2026-0042\n",
        "Erase 1 recording of licence acme for request REQ-2026-0042? This cannot be undone. "
        "Type yes to continue: ",
    )
    assert daemon.requests == [PREVIEW_REQUEST, EXECUTE_REQUEST]


QUESTION = (
    "Erase 1 recording of licence acme for request REQ-2026-0042? This cannot be undone. "
    "Type yes to continue: "
)


@pytest.mark.parametrize(
    ("stdin", "echo"),
    [
        (Terminal("no\n"), ""),
        (Terminal("y\n"), ""),
        (Terminal("YES please\n"), ""),
        (Terminal(""), "\n"),  # end of input (Ctrl-D)
        (Interrupted(""), "\n"),  # Ctrl-C
    ],
)
def test_anything_but_yes_erases_nothing(capsys, daemon, monkeypatch, stdin, echo):
    monkeypatch.setattr("sys.stdin", stdin)
    assert script(capsys, daemon, [PREVIEW, WITH_HELD], *DELETE) == (
        ExitCode.FAILED,
        PLAN,
        f"{QUESTION}{echo}recctl: not confirmed; nothing erased\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]


def test_delete_without_a_terminal_needs_yes(capsys, daemon, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert script(capsys, daemon, [PREVIEW, WITH_HELD], *DELETE) == (
        ExitCode.USAGE,
        PLAN,
        "recctl: refusing to erase without confirmation: stdin is not a terminal (add --yes)\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]


def test_nothing_to_erase_needs_no_confirmation(capsys, daemon, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    preview = PREVIEW | {"items": PREVIEW_ITEMS[1:], "erase": 0, "bytes": 0}
    result = executed({"held": 1, "gone": 1}, PREVIEW_ITEMS[1:])
    code, out, err = script(capsys, daemon, [preview, result], *DELETE)
    assert (code, err) == (ExitCode.PARTIAL, "")
    assert out.startswith(
        "request REQ-2026-0042 for licence acme: 0 recordings to erase (0 B), 1 held, 1 already "
        "gone\n"
    )
    assert daemon.requests == [PREVIEW_REQUEST, EXECUTE_REQUEST]


CERTIFIED = {"path": "/var/lib/recd/certificates/REQ-2026-0042.json", "sha256": "cd" * 32,
             "seq": 15}  # fmt: skip
COMPLETED: dict[str, Any] = APPROVED | {
    "state": "completed", "counts": COUNTS | {"erased": 1}, "certificate": CERTIFIED,
}  # fmt: skip
AGAIN = {"request": COMPLETED, "items": ERASED, "erase": 0, "bytes": 0, "held": 0, "gone": 0}
AGAIN_PLAN = (
    "request REQ-2026-0042 for licence acme: 0 recordings to erase (0 B), 0 held, 0 already "
    "gone\n"
    "ID                    LOCATION                SIZE    OUTCOME  HOLDS  NOTE\n"
    "8a47373e7a113408a3a4  /srv/rec/1001/1712.wav  1.2 MB  erased   -      -\n"
)
SUMMARY = (
    "erased 1, held 0, failed 0, already gone 0; certificate: recctl request certificate "
    "REQ-2026-0042\n"
)


def test_deleting_a_completed_request_again_keeps_its_certificate(capsys, daemon):
    """Nothing left to erase: the daemon runs nothing, and its certificate is the one the
    preview had (same audit entry): recctl says so, with the digest the customer holds."""
    result = {"request": COMPLETED, "items": ERASED}
    assert script(capsys, daemon, [AGAIN, result], *DELETE) == (
        ExitCode.OK,
        AGAIN_PLAN + SUMMARY,
        f"request REQ-2026-0042: nothing left to erase; certificate unchanged (sha256 "
        f"{'cd' * 32})\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST, EXECUTE_REQUEST]


def test_a_partial_request_with_nothing_more_to_erase_keeps_its_certificate(capsys, daemon):
    partial = COMPLETED | {"state": "partial", "counts": COUNTS | {"held": 1, "gone": 1}}
    preview = PREVIEW | {"request": partial, "items": PREVIEW_ITEMS[1:], "erase": 0, "bytes": 0}
    result = {"request": partial, "items": PREVIEW_ITEMS[1:]}
    code, out, err = script(capsys, daemon, [preview, result], *DELETE, "--yes")
    assert (code, err) == (
        ExitCode.PARTIAL,
        "request REQ-2026-0042: nothing more can be erased now; certificate unchanged (sha256 "
        f"{'cd' * 32})\n",
    )
    assert out.endswith(
        "\nerased 0, held 1 (H-0002), failed 0, already gone 1; certificate: recctl request "
        "certificate REQ-2026-0042\n"
    )


@pytest.mark.parametrize(
    "renewed",
    [
        CERTIFIED | {"sha256": "ef" * 32, "seq": 18},  # a later recording erased, or a note
        CERTIFIED | {"seq": 18},  # another audit entry, even with the same digest
    ],
)
def test_a_run_that_renews_the_certificate_says_nothing_more(capsys, daemon, renewed):
    result = {"request": COMPLETED | {"certificate": renewed}, "items": ERASED}
    assert script(capsys, daemon, [AGAIN, result], *DELETE) == (
        ExitCode.OK,
        AGAIN_PLAN + SUMMARY,
        "",
    )


def test_a_first_run_with_nothing_to_erase_writes_the_certificate(capsys, daemon):
    preview = AGAIN | {"request": APPROVED, "items": PREVIEW_ITEMS[2:], "gone": 1}
    result = {"request": COMPLETED | {"counts": COUNTS | {"gone": 1}}, "items": PREVIEW_ITEMS[2:]}
    code, out, err = script(capsys, daemon, [preview, result], *DELETE)
    assert (code, err) == (ExitCode.OK, "")
    assert out.endswith(
        "\nerased 0, held 0, failed 0, already gone 1; certificate: recctl request certificate "
        "REQ-2026-0042\n"
    )


RECEIVED_PLAN = """\
request REQ-2026-0042 for licence acme, not verified yet: 1 recording to erase once approved \
(1.2 MB), 1 held, 1 already gone
ID                    LOCATION                  SIZE    OUTCOME  HOLDS   NOTE
8a47373e7a113408a3a4  /srv/rec/1001/1712.wav    1.2 MB  erase    -       -
b3c0b50ec44a25938d00  /srv/rec/1001/1712-2.wav  512 B   held     H-0002  -
c0ffee0000c0ffee0000  -                         -       gone     -       never indexed
"""


def test_a_dry_run_shows_the_approver_the_plan_of_a_received_request(capsys, daemon):
    """The second administrator sees what approving would let a run erase; nothing else is
    asked of the daemon, and it is said twice that nothing can be erased yet."""
    preview = PREVIEW | {"request": REQUEST}
    assert script(capsys, daemon, [preview], *DELETE, "--dry-run") == (
        ExitCode.OK,
        RECEIVED_PLAN,
        "dry run: nothing erased; request REQ-2026-0042 is not verified yet: nothing can be "
        "erased until a second administrator runs `recctl request approve REQ-2026-0042`\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            "received",
            "request REQ-2026-0042 is not verified yet: a second administrator must run "
            "`recctl request approve REQ-2026-0042` first; nothing erased",
        ),
        ("rejected", "request REQ-2026-0042 was rejected: nothing is erased for it"),
    ],
)
def test_an_unverified_request_is_not_executed(capsys, daemon, state, message):
    """Refused before any plan is shown, and nothing is asked to run: as when the daemon
    itself refused to preview it."""
    preview = PREVIEW | {"request": REQUEST | {"state": state}}
    for yes in ([], ["--yes"]):
        daemon.requests.clear()
        assert script(capsys, daemon, [preview], *DELETE, *yes) == (
            ExitCode.NOT_ALLOWED,
            "",
            f"recctl: {message}\n",
        )
        assert daemon.requests == [PREVIEW_REQUEST]


def test_the_daemon_refusing_to_execute_exits_3(capsys, daemon):
    message = "request REQ-2026-0042 is received, not verified: nothing erased"
    refused = Reply.failure(ErrorKind.NOT_ALLOWED, message)
    assert script(capsys, daemon, [refused], *DELETE) == (
        ExitCode.NOT_ALLOWED,
        "",
        f"recctl: {message}\n",
    )
    assert script(capsys, daemon, [PREVIEW, refused], *DELETE, "--yes") == (
        ExitCode.NOT_ALLOWED,
        PLAN,
        f"recctl: {message}\n",
    )


def test_delete_waits_as_long_as_the_erasing_takes(capsys, daemon, monkeypatch):
    monkeypatch.setattr("recd.cli.kit.TIMEOUT", 0.2)
    answers = [PREVIEW, Delay(0.6, Reply.success(WITH_HELD))]
    assert script(capsys, daemon, answers, *DELETE, "--yes")[0] == ExitCode.PARTIAL
    answers = [Delay(0.6, Reply.success(PREVIEW))]
    assert script(capsys, daemon, answers, *DELETE, "--yes")[0] == ExitCode.FAILED


# replies of another shape -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "answers", "command", "detail"),
    [
        (["hold", "place", "--licence", "a", "--case", "c", "--reason", "r"], [[]],
         "hold place", "a JSON object expected"),
        (["hold", "place", "--licence", "a", "--case", "c", "--reason", "r"], [{"id": "H-1"}],
         "hold place", "no field 'licence'"),
        (["hold", "release", "H-1", "--reason", "r"], [HOLD], "hold release",
         "no field 'released'"),
        (["hold", "ls"], [[{"id": "H-1"}]], "hold ls", "no field 'licence'"),
        (["hold", "show", "H-1"], [HOLD | {"scope": None}], "hold show",
         "'NoneType' object has no attribute 'get'"),
        (["request", "add", "--request-id", "R"], [[]], "request add", "a JSON object expected"),
        (["request", "approve", "R"], [{"id": "R"}], "request approve", "no field 'state'"),
        (["request", "reject", "R", "--reason", "r"], [{"id": "R"}], "request reject",
         "no field 'rejected_by'"),
        (["request", "ls"], [[REQUEST | {"counts": None}]], "request ls",
         "'NoneType' object is not subscriptable"),
        (["request", "show", "R"], [REQUEST], "request show", "no field 'items'"),
        (["request", "certificate", "R"], [CERT_REPLY | {"text": None}], "request certificate",
         "'NoneType' object has no attribute 'encode'"),
        (["request", "certificate", "R"], [CERT_REPLY | {"text": "\udce9"}],
         "request certificate", "'utf-8' codec can't encode character '\\udce9' in position 0: "
         "surrogates not allowed"),
        (["request", "certificate", "R"], [CERT_REPLY | {"seq": "last"}], "request certificate",
         "invalid literal for int() with base 10: 'last'"),
        (DELETE, [[]], "request preview", "a JSON object expected"),
        (DELETE, [PREVIEW | {"items": None}], "request preview",
         "'NoneType' object is not iterable"),
        (DELETE, [PREVIEW | {"erase": "many"}], "request preview",
         "invalid literal for int() with base 10: 'many'"),
        ([*DELETE, "--yes"], [PREVIEW, []], "request execute", "a JSON object expected"),
        ([*DELETE, "--yes"], [PREVIEW, {"request": APPROVED}], "request execute",
         "no field 'items'"),
        ([*DELETE, "--yes"], [PREVIEW, {"request": {}, "items": []}], "request execute",
         "no field 'counts'"),
        ([*DELETE, "--yes"], [PREVIEW, {"request": SOME_HELD, "items": []}], "request execute",
         "invalid literal for int() with base 10: 'some'"),
    ],
)  # fmt: skip
def test_a_reply_of_another_shape_exits_1(capsys, daemon, argv, answers, command, detail):
    code, _, err = script(capsys, daemon, answers, *argv)
    assert (code, err) == (ExitCode.FAILED, unexpected(command, detail))


# delete of a request for a whole licence ("all": true) --------------------------------------------

ALL_SCOPE = DOCUMENT["scope"] | {
    "recordings": [], "call_ids": [], "party": None, "from": None, "to": None, "all": True,
}  # fmt: skip
WHOLE_PREVIEW = PREVIEW | {"request": APPROVED | {"scope": ALL_SCOPE, "whole_licence": True}}
WHOLE_PLAN = (
    'WHOLE LICENCE: request REQ-2026-0042 erases every recording of licence acme ("all": true),'
    " and each later run also those indexed after this one\n" + PLAN
)
CONFIRMED_REQUEST = Request("request execute", {"request": "REQ-2026-0042", "confirm_all": "acme"})
LICENCE_QUESTION = (
    "Erase EVERY recording of licence acme (1 recording now) for request REQ-2026-0042? This "
    "cannot be undone. Type the licence id to continue: "
)
RUN_DONE = "erased 1, held 1 (H-0002), failed 0, already gone 1; certificate: "
RUN_DONE += "recctl request certificate REQ-2026-0042\n"


def test_a_whole_licence_request_is_shown_as_such(capsys, daemon):
    assert script(capsys, daemon, [WHOLE_PREVIEW], *DELETE, "--dry-run") == (
        ExitCode.OK, WHOLE_PLAN, "dry run: nothing erased\n",
    )  # fmt: skip
    shown = APPROVED | {"scope": ALL_SCOPE, "whole_licence": True, "items": []}
    code, out, _ = ask(capsys, daemon, shown, "request", "show", "REQ-2026-0042")
    assert code == ExitCode.OK
    assert "scope:" in out and "whole licence: every recording of it, present and future" in out


def test_a_whole_licence_request_asks_for_the_licence_id_even_with_yes(capsys, daemon, monkeypatch):
    for extra in ((), ("--yes",)):
        monkeypatch.setattr("sys.stdin", Terminal("acme\n"))
        daemon.requests.clear()
        assert script(capsys, daemon, [WHOLE_PREVIEW, WITH_HELD], *DELETE, *extra) == (
            ExitCode.PARTIAL, WHOLE_PLAN + RUN_DONE, LICENCE_QUESTION,
        )  # fmt: skip
        assert daemon.requests == [PREVIEW_REQUEST, CONFIRMED_REQUEST]


@pytest.mark.parametrize(
    ("stdin", "echo"),
    [
        (Terminal("yes\n"), ""),
        (Terminal("ACME\n"), ""),
        (Terminal("acme-2\n"), ""),
        (Terminal(""), "\n"),
        (Interrupted(""), "\n"),
    ],
)
def test_anything_but_the_licence_id_erases_nothing(capsys, daemon, monkeypatch, stdin, echo):
    monkeypatch.setattr("sys.stdin", stdin)
    assert script(capsys, daemon, [WHOLE_PREVIEW, WITH_HELD], *DELETE, "--yes") == (
        ExitCode.FAILED,
        WHOLE_PLAN,
        f"{LICENCE_QUESTION}{echo}recctl: not confirmed: the licence id typed is not acme; "
        "nothing erased for request REQ-2026-0042\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]


def test_without_a_terminal_yes_is_not_enough_and_confirm_all_is(capsys, daemon, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("acme\n"))
    assert script(capsys, daemon, [WHOLE_PREVIEW, WITH_HELD], *DELETE, "--yes") == (
        ExitCode.USAGE,
        WHOLE_PLAN,
        "recctl: refusing to erase every recording of licence acme without its confirmation: "
        "stdin is not a terminal (add --confirm-all acme; --yes is not enough)\n",
    )
    assert daemon.requests == [PREVIEW_REQUEST]
    daemon.requests.clear()
    argv = [*DELETE, "--confirm-all", "acme"]
    assert script(capsys, daemon, [WHOLE_PREVIEW, WITH_HELD], *argv) == (
        ExitCode.PARTIAL, WHOLE_PLAN + RUN_DONE, "",
    )  # fmt: skip
    assert daemon.requests == [PREVIEW_REQUEST, CONFIRMED_REQUEST]


def test_nothing_to_erase_now_still_needs_the_licence_id(capsys, daemon, monkeypatch):
    """A recording indexed between the preview and the run is erased by it too."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    empty = WHOLE_PREVIEW | {"items": [], "erase": 0, "bytes": 0, "held": 0, "gone": 0}
    code, _, err = script(capsys, daemon, [empty], *DELETE, "--yes")
    assert (code, err.startswith("recctl: refusing to erase every recording")) == (
        ExitCode.USAGE, True,
    )  # fmt: skip
    assert daemon.requests == [PREVIEW_REQUEST]


@pytest.mark.parametrize(
    ("preview", "given", "message"),
    [
        (WHOLE_PREVIEW, "other", "argument --confirm-all: 'other' is not licence acme of request "
         "REQ-2026-0042; nothing erased"),
        (PREVIEW, "acme", "argument --confirm-all: request REQ-2026-0042 is not for a whole "
         'licence (its scope is not "all": true); leave --confirm-all out'),
    ],
)  # fmt: skip
def test_confirm_all_names_the_licence_of_a_whole_licence_request(
    capsys, daemon, preview, given, message
):
    argv = [*DELETE, "--confirm-all", given]
    assert script(capsys, daemon, [preview, WITH_HELD], *argv) == (
        ExitCode.USAGE, "", f"recctl: {message}\n",
    )  # fmt: skip
    assert daemon.requests == [PREVIEW_REQUEST]
