"""``recctl hold place|release|ls|show`` (``recd.cli.commands.holds``) against a fake daemon on a
real Unix socket answering canned replies (``tests/cli/replies.py``): the requests sent, stdout,
the stderr line and the exit status, word for word."""

from __future__ import annotations

import json

import pytest

from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.cli.helpers import ask, usage
from tests.cli.replies import HOLD, HOLD_RELEASE, REC_A, REC_B, RELEASED, WHOLE


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
