"""``recctl breaker ls|release`` and ``recctl clock confirm`` (``recd.cli.commands.guards``)
against a fake daemon answering canned replies (``tests/cli/replies.py``)."""

from __future__ import annotations

import pytest

from recd.errors import ExitCode
from recd.protocol import Request
from tests.cli.helpers import ask
from tests.cli.replies import BREAKERS, CONFIRMED, RELEASE


def test_breaker_ls(capsys, daemon):
    assert ask(capsys, daemon, BREAKERS, "breaker", "ls") == (
        ExitCode.OK,
        "LICENCE  TRIPPED               DUE   TOTAL  RELEASED              BY\n"
        "ACME     2026-11-23T14:21:19Z  1200  2000   -                     -\n"
        "OTHER    2026-11-20T14:21:19Z  5     6      2026-11-20T15:00:00Z  alice\n",
        "",
    )
    assert daemon.request == Request("breaker ls", {})
    assert ask(capsys, daemon, [], "breaker", "ls", "--json") == (ExitCode.OK, "[]\n", "")


@pytest.mark.parametrize(
    ("due", "line"),
    [
        (1200, "breaker for ACME released: the next sweep erases its 1200 due recordings\n"),
        (1, "breaker for ACME released: the next sweep erases its 1 due recording\n"),
    ],
)
def test_breaker_release(capsys, daemon, due, line):
    result = RELEASE | {"due": due}
    assert ask(capsys, daemon, result, "breaker", "release", "--licence", "ACME") == (
        ExitCode.OK,
        line,
        "",
    )
    assert daemon.request == Request("breaker release", {"licence": "ACME"})


@pytest.mark.parametrize(
    ("problem", "line"),
    [
        (None, "clock confirmed at 2026-11-23T12:00:00Z (erasing was not paused)\n"),
        (
            "the wall clock jumped 2h ahead",
            "clock confirmed at 2026-11-23T12:00:00Z: erasing resumes (it was paused: the wall "
            "clock jumped 2h ahead)\n",
        ),
    ],
)
def test_clock_confirm(capsys, daemon, problem, line):
    result = CONFIRMED | {"problem": problem}
    assert ask(capsys, daemon, result, "clock", "confirm", "--reason", "chrony") == (
        ExitCode.OK,
        line,
        "",
    )
    assert daemon.request == Request("clock confirm", {"reason": "chrony"})


def test_breaker_release_needs_a_licence(capsys, daemon):
    assert ask(capsys, daemon, {}, "breaker", "release") == (
        ExitCode.USAGE,
        "",
        "recctl: the following arguments are required: --licence "
        "(see `recctl breaker release --help`)\n",
    )
