"""recctl: parser, audit commands and error reporting; render: tables and JSON.

recctl.main runs in-process against real files; stdout, the stderr line and the exit status are
asserted word for word. A few cases run ``python -m recd.recctl`` as a real subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd import __version__, render
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal, to_line
from recd.errors import ExitCode
from recd.recctl import DEFAULT_AUDIT_LOG, DEFAULT_SOCKET, _entries, build_parser, main

T0 = datetime(2026, 11, 23, 13, 43, 9, 500000, tzinfo=UTC)

DRAFTS = [
    AuditDraft("config.loaded", "/etc/recd/recd.toml", {"mode": "enforce", "version": "0.1.0"}),
    AuditDraft(
        "erase.done",
        "pbx1:7/a.wav",
        {
            "location": "/rec/7/a b.wav",
            "licence": "L1",
            "size": 1024,
            "effective": True,
            "method": "overwrite",
            "reason": "retention",
        },
    ),
    AuditDraft("hold.placed", "H-1", {"case": "CASE-9", "licence": "L1"}, actor="alice"),
    AuditDraft("erase.failed", "pbx1:7/b\x1b[31m.wav", {"error": "Permission denied"}),
]


def sealed(drafts: list[AuditDraft]) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for n, draft in enumerate(drafts, start=1):
        entries.append(seal(draft, seq=n, prev=prev, time=T0 + timedelta(minutes=n)))
        prev = entries[-1].hash
    return entries


ENTRIES = sealed(DRAFTS)
LINES = [to_line(e) for e in ENTRIES]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(LINES))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# parser -----------------------------------------------------------------------------------------


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
    assert "verify    check the whole hash chain" in out
    assert "ls        list entries" in out


def test_defaults_are_the_production_paths():
    args = build_parser().parse_args(["audit", "verify"])
    assert (args.file, args.socket) == (DEFAULT_AUDIT_LOG, DEFAULT_SOCKET)
    assert str(DEFAULT_AUDIT_LOG) == "/var/lib/recd/audit.log"
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
            "argument COMMAND: invalid choice: 'check' (choose from 'verify', 'ls') "
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


# audit verify -----------------------------------------------------------------------------------


def test_verify_reports_an_intact_chain(capsys, log_path):
    assert run(capsys, "audit", "verify", "--file", str(log_path)) == (
        ExitCode.OK,
        f"{log_path}: 4 entries, chain intact, last hash {ENTRIES[-1].hash}\n",
        "",
    )


def test_verify_counts_one_entry(capsys, tmp_path):
    path = tmp_path / "one.log"
    path.write_bytes(LINES[0])
    assert run(capsys, "audit", "verify", "--file", str(path)) == (
        ExitCode.OK,
        f"{path}: 1 entry, chain intact, last hash {ENTRIES[0].hash}\n",
        "",
    )


def test_verify_accepts_an_empty_log(capsys, tmp_path):
    path = tmp_path / "empty.log"
    path.touch()
    assert run(capsys, "audit", "verify", "--file", str(path)) == (
        ExitCode.OK,
        f"{path}: 0 entries, chain intact, last hash {'0' * 64}\n",
        "",
    )


def test_verify_names_the_first_bad_entry(capsys, log_path):
    log_path.write_bytes(log_path.read_bytes().replace(b'"size":1024', b'"size":1025'))
    assert run(capsys, "audit", "verify", "--file", str(log_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 2 (line 2): hash does not match the entry's content\n",
    )


def test_verify_names_a_removed_entry(capsys, log_path):
    log_path.write_bytes(b"".join([LINES[0], LINES[1], LINES[3]]))
    assert run(capsys, "audit", "verify", "--file", str(log_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 4 (line 3): sequence jumps from 2 to 4 "
        "(entries removed or reordered?)\n",
    )


def test_verify_reports_a_truncated_file(capsys, log_path):
    log_path.write_bytes(log_path.read_bytes()[:-30])
    assert run(capsys, "audit", "verify", "--file", str(log_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 4 (line 4): last line is incomplete (truncated file?)\n",
    )


@pytest.mark.parametrize(
    ("name", "strerror"),
    [
        ("missing.log", "No such file or directory"),
        (".", "Is a directory"),
        ("/proc/self/mem", "Input/output error"),  # opens, then fails to read (address 0)
    ],
)
@pytest.mark.parametrize("command", ["verify", "ls"])
def test_an_unreadable_file_is_one_line(capsys, tmp_path, name, strerror, command):
    path = tmp_path / name
    assert run(capsys, "audit", command, "--file", str(path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {path}: cannot read: {strerror}\n",
    )


# audit ls ---------------------------------------------------------------------------------------

TABLE = (
    "SEQ  TIME                  ACTOR  ACTION         SUBJECT               DETAILS\n"
    "1    2026-11-23T13:44:09Z  recd   config.loaded  /etc/recd/recd.toml   "
    "mode=enforce version=0.1.0\n"
    "2    2026-11-23T13:45:09Z  recd   erase.done     pbx1:7/a.wav          "
    'location="/rec/7/a b.wav" licence=L1 reason=retention method=overwrite effectiv…\n'
    "3    2026-11-23T13:46:09Z  alice  hold.placed    H-1                   "
    "licence=L1 case=CASE-9\n"
    "4    2026-11-23T13:47:09Z  recd   erase.failed   pbx1:7/b\\x1b[31m.wav  "
    'error="Permission denied"\n'
)


def test_ls_prints_an_aligned_table(capsys, log_path):
    assert run(capsys, "audit", "ls", "--file", str(log_path)) == (ExitCode.OK, TABLE, "")


def test_ls_json_prints_every_field(capsys, log_path):
    code, out, err = run(capsys, "audit", "ls", "--file", str(log_path), "--json")
    assert (code, err) == (ExitCode.OK, "")
    assert out.startswith(
        '[\n{"seq": 1, "time": "2026-11-23T13:44:09.500000Z", "actor": "recd", '
        '"action": "config.loaded", "subject": "/etc/recd/recd.toml", '
        '"details": {"mode": "enforce", "version": "0.1.0"}, '
        f'"prev": "{GENESIS}", "hash": "{ENTRIES[0].hash}"}},\n'
    )
    assert out.endswith("}\n]\n")
    assert out.count("\n") == 6
    assert json.loads(out) == [
        {
            "seq": e.seq,
            "time": e.time,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "details": e.details,
            "prev": e.prev,
            "hash": e.hash,
        }
        for e in ENTRIES
    ]


def test_ls_of_an_empty_log(capsys, tmp_path):
    path = tmp_path / "empty.log"
    path.touch()
    assert run(capsys, "audit", "ls", "--file", str(path)) == (
        ExitCode.OK,
        "SEQ  TIME  ACTOR  ACTION  SUBJECT  DETAILS\n",
        "",
    )
    assert run(capsys, "audit", "ls", "--file", str(path), "--json") == (ExitCode.OK, "[]\n", "")


def seqs(capsys: pytest.CaptureFixture[str], log_path: Path, *options: str) -> list[int]:
    code, out, err = run(capsys, "audit", "ls", "--file", str(log_path), "--json", *options)
    assert (code, err) == (ExitCode.OK, "")
    return [entry["seq"] for entry in json.loads(out)]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("2026-11-23T13:45:09.5Z", [2, 3, 4]),
        ("2026-11-23T13:45:09.500001Z", [3, 4]),
        ("2026-11-23T14:45:09.5+01:00", [2, 3, 4]),
        ("2026-11-23T13:45:10", [3, 4]),  # no offset: UTC
        ("2026-11-23", [1, 2, 3, 4]),
        ("2026-11-24", []),
    ],
)
def test_ls_since(capsys, log_path, since, expected):
    assert seqs(capsys, log_path, "--since", since) == expected


@pytest.mark.parametrize(
    ("since", "shown"),
    [("yesterday", '"yesterday"'), ('last "week"', '"last \\"week\\""'), ("", '""')],
)
def test_ls_since_must_be_iso_8601(capsys, log_path, since, shown):
    assert run(capsys, "audit", "ls", "--file", str(log_path), "--since", since) == (
        ExitCode.USAGE,
        "",
        f"recctl: --since: not an ISO 8601 time: {shown}\n",
    )


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        (["erase.done"], [2]),
        (["erase"], []),
        (["erase.*"], [2, 4]),
        (["erase.*", "hold.placed"], [2, 3, 4]),
        (["config.*", "hold.*"], [1, 3]),
        (["request.*"], []),
    ],
)
def test_ls_action_matches_exactly_or_by_family(capsys, log_path, actions, expected):
    options = [part for action in actions for part in ("--action", action)]
    assert seqs(capsys, log_path, *options) == expected


def test_ls_filters_combine(capsys, log_path):
    assert seqs(capsys, log_path, "--action", "erase.*", "--since", "2026-11-23T13:46Z") == [4]
    assert run(capsys, "audit", "ls", "--file", str(log_path), "--action", "hold.*")[1] == (
        "SEQ  TIME                  ACTOR  ACTION       SUBJECT  DETAILS\n"
        "3    2026-11-23T13:46:09Z  alice  hold.placed  H-1      licence=L1 case=CASE-9\n"
    )


@pytest.mark.parametrize("action", ["erase*", "*", ".*", "erase.**", "*.done"])
def test_ls_action_patterns_are_exact_or_a_family(capsys, log_path, action):
    assert run(capsys, "audit", "ls", "--file", str(log_path), "--action", action) == (
        ExitCode.USAGE,
        "",
        "recctl: --action: use an action such as erase.done or a family such as erase.*, "
        f'not "{action}"\n',
    )


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_ls_prints_nothing_from_a_damaged_log(capsys, log_path, json_flag):
    log_path.write_bytes(b"".join([LINES[0], b'{"seq": 2, "time\n', *LINES[2:]]))
    assert run(capsys, "audit", "ls", "--file", str(log_path), *json_flag) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: line 2: not valid JSON "
        f"(run `recctl audit verify --file {log_path}`)\n",
    )


def test_ls_leaves_out_a_line_still_being_written(capsys, log_path):
    with log_path.open("ab") as file:
        file.write(b'{"action":"erase.do')
    assert seqs(capsys, log_path) == [1, 2, 3, 4]
    code, out, _ = run(capsys, "audit", "ls", "--file", str(log_path))
    assert (code, out) == (ExitCode.OK, TABLE)


def test_the_second_pass_stops_where_the_first_did(log_path):
    # The daemon may append between ls's two passes; the table was measured for the first.
    assert [entry.seq for _, entry in _entries(log_path, limit=2)] == [1, 2]
    assert [number for number, _ in _entries(log_path)] == [1, 2, 3, 4]


def test_a_closed_pipe_ends_ls_quietly(capsys, monkeypatch, log_path):
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        assert main(["audit", "ls", "--file", str(log_path)]) == ExitCode.FAILED
        stream.write("the flush at exit no longer fails\n")
        stream.flush()
    finally:
        stream.close()
    assert capsys.readouterr().err == ""


# as a real command ------------------------------------------------------------------------------


def recctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd.recctl", *argv], capture_output=True, text=True, check=False
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


# render -----------------------------------------------------------------------------------------


def test_table_aligns_columns_without_trailing_blanks():
    assert render.table([["1", "a", ""], ["22", "bbbb", "x"]], ["N", "NAME", "NOTE"]) == (
        "N   NAME  NOTE\n1   a\n22  bbbb  x"
    )
    assert render.table([], ["A", "B"]) == "A  B"


def test_table_cells_cannot_break_lines_or_reach_the_terminal():
    assert render.table([["a\nb", "\x1b[2J", "\u2028ä"]], ["X", "Y", "Z"]) == (
        "X     Y        Z\na\\nb  \\x1b[2J  \\u2028ä"
    )


def test_rows_must_have_one_cell_per_column():
    with pytest.raises(ValueError):
        render.table([["1", "2"]], ["A"])


def test_to_json_is_indented():
    assert render.to_json({"b": [1], "a": "ä"}) == '{\n  "b": [\n    1\n  ],\n  "a": "ä"\n}'


def test_json_array_yields_one_element_per_line():
    assert "".join(render.json_array(iter([{"a": 1}, [2], "ä"]))) == '[\n{"a": 1},\n[2],\n"ä"\n]\n'
    assert "".join(render.json_array([])) == "[]\n"


@pytest.mark.parametrize(
    ("details", "summary"),
    [
        ({}, ""),
        ({"b": 1, "a": "x"}, "a=x b=1"),
        (
            {"s": "two words", "e": "", "q": 'say "hi"', "c": "a,b", "k": "k=v"},
            ('c="a,b" e="" k="k=v" q="say \\"hi\\"" s="two words"'),
        ),
        (
            {"n": None, "t": True, "f": 1.5, "l": [1, "a"], "d": {"x": 1}},
            ('d={"x":1} f=1.5 l=[1,"a"] n=null t=true'),
        ),
        ({"long": "x" * 100}, "long=" + "x" * 74 + "…"),
        ({"fits": "x" * 75}, "fits=" + "x" * 75),
    ],
)
def test_details_summary(details, summary):
    assert render.details_summary(details) == summary
    assert len(render.details_summary(details)) <= render.SUMMARY_LIMIT
