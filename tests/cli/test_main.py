"""recctl's entry point (``recd.cli.main``): the parser, the help, the defaults, usage errors,
and the exit status each failure gives (the daemon's error kinds, no daemon, a reply that is
not JSON or not of the expected shape, a socket the caller may not use).

recctl.main runs in-process against a fake daemon on a real Unix socket (tests/fakedaemon.py)
that answers a canned reply; stdout, the stderr line and the exit status are asserted word for
word. A few cases run ``python -m recd.cli.main`` as a real subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recd import __version__
from recd.cli.commands.audit import DEFAULT_AUDIT
from recd.cli.main import DEFAULT_SOCKET, build_parser, main
from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply
from tests.cli.helpers import ENTRIES, ask, run
from tests.cli.replies import REC
from tests.fakedaemon import NOBODY, socket_path


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"recctl {__version__}\n"


def test_help_lists_the_audit_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "verify     check the whole hash chain" in out
    assert "head       print the entry count and the last entry's SEQ:HASH" in out
    assert "ls         list entries" in out
    assert "acknowledge\n               take the audit log as it is after recd found" in out


def test_defaults_are_the_production_paths():
    args = build_parser().parse_args(["audit", "verify"])
    assert (args.file, args.socket) == (DEFAULT_AUDIT, DEFAULT_SOCKET)
    assert str(DEFAULT_AUDIT) == "/var/lib/recd"  # the state directory: every segment
    assert str(DEFAULT_SOCKET) == "/run/recd/recd.sock"
    args = build_parser().parse_args(["--socket", "/tmp/s.sock", "audit", "ls", "--file", "x"])
    assert (args.file, args.socket) == (Path("x"), Path("/tmp/s.sock"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND (see `recctl --help`)"),
        (["audit"], "the following arguments are required: COMMAND (see `recctl audit --help`)"),
        (
            ["audit", "check"],
            "argument COMMAND: invalid choice: 'check' (choose from 'verify', 'head', 'ls', "
            "'export', 'acknowledge') "
            "(see `recctl audit --help`)",
        ),
        (["--bogus", "audit", "verify"], "unrecognized arguments: --bogus (see `recctl --help`)"),
        (
            ["audit", "ls", "--since"],
            "argument --since: expected one argument (see `recctl audit ls --help`)",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert run(capsys, *argv) == (ExitCode.USAGE, "", f"recctl: {message}\n")


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: recctl [-h] [--version] [--socket PATH] COMMAND ...\n")
    assert (
        "  COMMAND\n"
        "    status       the daemon's state\n"
        "    ls           list recordings\n"
        "    show         one recording in detail\n"
        "    policy       retention per licence\n"
        "    scan         scan sources now\n"
        "    breaker      list and release mass-deletion breakers\n"
        "    clock        confirm the wall clock after the clock guard paused erasing\n"
        "    hold         place, release and list legal holds\n"
        "    request      register, verify and list early-deletion requests\n"
        "    delete       execute a verified early-deletion request\n"
        "    audit        check, list and export the audit log\n"
    ) in out
    assert (
        "  --socket PATH  recd's admin socket (default: /run/recd/recd.sock); the audit\n"
        "                 commands read the log file instead\n"
    ) in out


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (ErrorKind.USAGE, 2),
        (ErrorKind.NOT_FOUND, 3),
        (ErrorKind.NOT_ALLOWED, 3),
        (ErrorKind.PERMISSION, 77),
        (ErrorKind.FAILED, 1),
        (ErrorKind.PARTIAL, 4),
        (ErrorKind.UNSUPPORTED, 1),
        (ErrorKind.UNAVAILABLE, 69),
    ],
)
def test_the_daemons_error_kind_is_the_exit_status(capsys, daemon, kind, code):
    reply = Reply.failure(kind, f"the daemon says {kind}")
    assert ask(capsys, daemon, reply, "breaker", "release", "--licence", "ACME") == (
        code,
        "",
        f"recctl: the daemon says {kind}\n",
    )


def test_the_daemons_message_stays_one_line(capsys, daemon):
    reply = Reply.failure(ErrorKind.NOT_ALLOWED, "no breaker for A\nB\x1b[2J is tripped")
    assert ask(capsys, daemon, reply, "breaker", "release", "--licence", "A\nB") == (
        ExitCode.NOT_ALLOWED,
        "",
        "recctl: no breaker for A\\nB\\x1b[2J is tripped\n",
    )


COMMANDS = [
    ["status"],
    ["ls"],
    ["show", "8a47"],
    ["policy"],
    ["scan"],
    ["breaker", "ls"],
    ["breaker", "release", "--licence", "ACME"],
]


@pytest.mark.parametrize("argv", COMMANDS)
def test_no_daemon_exits_69(capsys, sock_dir, argv):
    path = sock_dir / "recd.sock"
    assert run(capsys, "--socket", str(path), *argv) == (
        ExitCode.UNAVAILABLE,
        "",
        f"recctl: recd is not running: cannot connect to {path} (no such socket); "
        "start it with `systemctl start recd`\n",
    )


def test_a_dead_socket_exits_69(capsys, sock_dir):
    import socket

    path = socket_path(sock_dir)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))
    assert run(capsys, "--socket", str(path), "status") == (
        ExitCode.UNAVAILABLE,
        "",
        f"recctl: recd is not running: cannot connect to {path} (connection refused); "
        "start it with `systemctl start recd`\n",
    )


def test_a_reply_that_is_not_json_exits_1(capsys, daemon):
    assert ask(capsys, daemon, b"<html>\n", "status") == (
        ExitCode.FAILED,
        "",
        "recctl: the reply is not JSON: Expecting value: line 1 column 1 (char 0)\n",
    )


@pytest.mark.parametrize(
    ("argv", "result", "detail"),
    [
        (["status"], [], "a JSON object expected"),
        (["status"], {"version": "9"}, "no field 'clock_guard'"),
        (["ls"], {}, "a JSON array expected"),
        (["ls"], [{"id": "a"}], "no field 'licence'"),
        (["ls"], [REC | {"size": "big"}], "'<' not supported between instances of 'str' and 'int'"),
        (["ls"], [REC | {"id": 7}], "'int' object has no attribute 'isprintable'"),
        (["show", "8a47"], [], "a JSON object expected"),
        (["show", "8a47"], REC | {"deadline": 5}, "fromisoformat: argument must be str"),
        (["policy"], [{"licence": "L"}], "no field 'name'"),
        (["scan"], None, "a JSON array expected"),
        (["scan"], [{"source": "p", "files": 1, "new": 0, "changed": 0, "missing": 0,
                     "seconds": "slow"}], "Unknown format code 'f' for object of type 'str'"),
        (["breaker", "release", "--licence", "A"], {"licence": "A"}, "no field 'due'"),
    ],
)  # fmt: skip
def test_a_reply_of_another_shape_exits_1(capsys, daemon, argv, result, detail):
    command = " ".join(argv[:2]) if argv[0] == "breaker" else argv[0]
    assert ask(capsys, daemon, result, *argv) == (
        ExitCode.FAILED,
        "",
        f"recctl: recd's reply to `{command}` is not what this recctl expects ({detail}); "
        "use the recctl that came with this recd\n",
    )


def _permission_denied(path: Path) -> str:
    return (
        f"recctl: permission denied: cannot connect to {path}; run recctl as root or as a "
        "member of recd's admin group (daemon.admin_group, default recd-admin)\n"
    )


@pytest.mark.root
def test_a_socket_the_caller_may_not_use_exits_77(capsys, private_daemon):
    """A real EACCES: recctl, in this process with nobody's effective uid, on root's 0600 socket."""
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        code = main(["--socket", str(private_daemon.path), "status"])
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)
    assert (code, *capsys.readouterr()) == (
        ExitCode.NO_PERMISSION,
        "",
        _permission_denied(private_daemon.path),
    )
    assert private_daemon.requests == []


@pytest.mark.root
def test_recctl_as_nobody_exits_77(private_daemon, foreign):
    """The same as a real process started as uid 65534, running a copy of recd that nobody can
    reach (the clone and its virtual environment may sit in a private directory)."""
    done = subprocess.run(
        [*foreign.recctl, "--socket", str(private_daemon.path), "status"],
        capture_output=True,
        text=True,
        check=False,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        env=foreign.env,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        77,
        "",
        _permission_denied(private_daemon.path),
    )
    assert private_daemon.requests == []


def recctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd.cli.main", *argv], capture_output=True, text=True, check=False
    )


def test_recctl_as_a_command(log_path):
    done = recctl("audit", "verify", "--file", str(log_path))
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"{log_path}: 4 entries, chain intact, last hash {ENTRIES[-1].hash}\n",
        "",
    )
    done = recctl("audit", "ls", "--file", str(log_path), "--since", "yesterday")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        'recctl: --since: not an ISO 8601 time: "yesterday"\n',
    )
