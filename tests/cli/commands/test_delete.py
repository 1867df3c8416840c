"""``recctl delete`` (``recd.cli.commands.delete``): the plan, the confirmation on a terminal,
the run and its summary, and a request for a whole licence.

``delete`` sends two requests, so its fake daemon (``ScriptedDaemon``, on a real Unix socket)
answers from a script, one answer per connection. Also here: replies of another shape to every
legal command (hold, request, delete) exit 1 naming what recctl expected."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.cli.helpers import ask, run
from tests.cli.replies import (
    APPROVED,
    CERT_REPLY,
    COUNTS,
    DOCUMENT,
    HOLD,
    PREVIEW,
    PREVIEW_ITEMS,
    REQUEST,
)
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


def script(capsys, daemon, answers: list[Any], *argv: str) -> tuple[int, str, str]:
    """Run recctl with the daemon answering ``answers``, one per request, in order."""
    daemon.script = [a if isinstance(a, Reply | Delay) else Reply.success(a) for a in answers]
    daemon.answer = Reply.failure(ErrorKind.FAILED, "no more answers in the script")
    return run(capsys, "--socket", str(daemon.path), *argv)


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
