"""recctl: parser, daemon commands, audit commands and error reporting.

recctl.main runs in-process against real files and, for the daemon commands, a fake daemon on a
real Unix socket (tests/fakedaemon.py) that records each request and answers a canned reply;
stdout, the stderr line and the exit status are asserted word for word. A few cases run
``python -m recd.cli.main`` as a real subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recd import __version__
from recd.cli.auditfile import entries as _entries
from recd.cli.commands.audit import DEFAULT_AUDIT
from recd.cli.main import DEFAULT_SOCKET, build_parser, main
from recd.cli.render.text import json_array
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal, to_line
from recd.core.times import parse_time
from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.fakedaemon import NOBODY, Delay, FakeDaemon, socket_path

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
            "'acknowledge') "
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
        ("/proc/self/mem", "Input/output error"),  # opens, then fails to read (address 0)
    ],
)
@pytest.mark.parametrize("command", ["verify", "head", "ls"])
def test_an_unreadable_file_is_one_line(capsys, tmp_path, name, strerror, command):
    path = tmp_path / name
    assert run(capsys, "audit", command, "--file", str(path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {path}: cannot read: {strerror}\n",
    )


@pytest.mark.parametrize("command", ["verify", "head", "ls"])
def test_a_directory_without_an_audit_log_is_one_line(capsys, tmp_path, command):
    (tmp_path / "audit.log.new").touch()
    assert run(capsys, "audit", command, "--file", str(tmp_path)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {tmp_path}: no audit log here (neither audit.log nor a segment "
        "audit.log.<first>-<last>)\n",
    )


# audit head and verify --expect -----------------------------------------------------------------


def test_head_prints_the_count_and_the_last_entrys_seq_and_hash(capsys, log_path):
    assert run(capsys, "audit", "head", "--file", str(log_path)) == (
        ExitCode.OK,
        f"{log_path}: 4 entries, chain intact; head 4:{ENTRIES[-1].hash}\n",
        "",
    )


def test_head_json(capsys, log_path):
    code, out, err = run(capsys, "audit", "head", "--file", str(log_path), "--json")
    assert (code, err) == (ExitCode.OK, "")
    assert json.loads(out) == {"entries": 4, "seq": 4, "hash": ENTRIES[-1].hash}


def test_head_of_an_empty_log_is_the_genesis(capsys, tmp_path):
    path = tmp_path / "empty.log"
    path.touch()
    assert run(capsys, "audit", "head", "--file", str(path)) == (
        ExitCode.OK,
        f"{path}: 0 entries, chain intact; head 0:{GENESIS}\n",
        "",
    )
    assert json.loads(run(capsys, "audit", "head", "--file", str(path), "--json")[1]) == (
        {"entries": 0, "seq": 0, "hash": GENESIS}
    )


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_head_of_a_damaged_log_names_the_first_bad_entry(capsys, log_path, json_flag):
    log_path.write_bytes(log_path.read_bytes().replace(b'"size":1024', b'"size":1025'))
    assert run(capsys, "audit", "head", "--file", str(log_path), *json_flag) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 2 (line 2): hash does not match the entry's content\n",
    )


def head(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """The SEQ:HASH `audit head` prints, as an operator would copy it."""
    code, out, _ = run(capsys, "audit", "head", "--file", str(path))
    assert code == ExitCode.OK
    return out.split()[-1]


def test_verify_expect_passes_on_the_head_it_printed_and_on_a_longer_log(capsys, log_path):
    log_path.write_bytes(b"".join(LINES[:2]))
    anchor = head(capsys, log_path)
    assert anchor == f"2:{ENTRIES[1].hash}"
    log_path.write_bytes(b"".join(LINES))  # the daemon went on appending
    assert run(capsys, "audit", "verify", "--file", str(log_path), "--expect", anchor) == (
        ExitCode.OK,
        f"{log_path}: 4 entries, chain intact, last hash {ENTRIES[-1].hash}; entry 2 as expected\n",
        "",
    )


def test_verify_expect_is_repeatable(capsys, log_path):
    anchors = ["--expect", f"3:{ENTRIES[2].hash}", "--expect", f"1:{ENTRIES[0].hash.upper()}"]
    assert run(capsys, "audit", "verify", "--file", str(log_path), *anchors) == (
        ExitCode.OK,
        f"{log_path}: 4 entries, chain intact, last hash {ENTRIES[-1].hash}; "
        "entries 1, 3 as expected\n",
        "",
    )


def test_verify_expect_finds_a_cut_tail(capsys, log_path):
    anchor = head(capsys, log_path)
    log_path.write_bytes(b"".join(LINES[:2]))
    assert run(capsys, "audit", "verify", "--file", str(log_path))[0] == ExitCode.OK
    assert run(capsys, "audit", "verify", "--file", str(log_path), "--expect", anchor) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: the log ends at seq 2, before the expected entry 4: "
        "its tail was cut\n",
    )


def resealed_from(seq: int) -> list[AuditEntry]:
    """ENTRIES with entry ``seq`` changed and it and every later entry sealed again."""
    forged = ENTRIES[: seq - 1]
    for entry in ENTRIES[seq - 1 :]:
        subject = "forged" if entry.seq == seq else entry.subject
        draft = AuditDraft(entry.action, subject, entry.details, entry.actor)
        prev = forged[-1].hash if forged else GENESIS
        forged.append(seal(draft, seq=entry.seq, prev=prev, time=parse_time(entry.time)))
    return forged


def test_verify_expect_finds_a_rewritten_tail(capsys, log_path):
    anchor = head(capsys, log_path)
    forged = resealed_from(3)
    log_path.write_bytes(b"".join(to_line(e) for e in forged))
    assert run(capsys, "audit", "verify", "--file", str(log_path))[0] == ExitCode.OK
    assert run(capsys, "audit", "verify", "--file", str(log_path), "--expect", anchor) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 4 has hash {forged[3].hash}, not the expected "
        f"{ENTRIES[3].hash}: the log was rewritten at or before it\n",
    )


def test_verify_expect_names_the_earliest_entry_not_held(capsys, log_path):
    forged = resealed_from(2)
    log_path.write_bytes(b"".join(to_line(e) for e in forged[:3]))
    anchors = [f"1:{ENTRIES[0].hash}", f"4:{ENTRIES[3].hash}", f"2:{ENTRIES[1].hash}"]
    options = [option for anchor in anchors for option in ("--expect", anchor)]
    assert run(capsys, "audit", "verify", "--file", str(log_path), *options) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 2 has hash {forged[1].hash}, not the expected "
        f"{ENTRIES[1].hash}: the log was rewritten at or before it\n",
    )


def test_verify_expect_on_a_damaged_log_names_the_first_bad_entry(capsys, log_path):
    log_path.write_bytes(b"".join([LINES[0], LINES[1], LINES[3]]))
    anchor = f"4:{ENTRIES[3].hash}"
    assert run(capsys, "audit", "verify", "--file", str(log_path), "--expect", anchor) == (
        ExitCode.FAILED,
        "",
        f"recctl: {log_path}: entry 4 (line 3): sequence jumps from 2 to 4 "
        "(entries removed or reordered?)\n",
    )


@pytest.mark.parametrize(
    ("anchor", "reason"),
    [
        ("4", "not SEQ:HASH (no colon)"),
        (f"four:{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),
        ("4:9f86d08", "HASH is not a SHA-256 hash (64 hex digits)"),
    ],
)
def test_a_malformed_expect_is_a_usage_error_naming_it(capsys, tmp_path, anchor, reason):
    missing = tmp_path / "missing.log"  # the argument is checked before the file is read
    quoted = json.dumps(anchor)
    assert run(capsys, "audit", "verify", "--file", str(missing), "--expect", anchor) == (
        ExitCode.USAGE,
        "",
        f"recctl: --expect: {reason}: {quoted} (give SEQ:HASH as `recctl audit head` prints it)\n",
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


# the daemon commands ----------------------------------------------------------------------------

STATUS: dict[str, Any] = {
    "version": "0.1.0",
    "mode": "enforce",
    "pid": 4242,
    "started": "2026-11-23T08:00:00.123456Z",
    "recordings": 12034,
    "bytes": 1_534_000_000,
    "unclassified": 34,
    "overdue": 0,
    "next_deadline": "2026-12-01T10:00:00Z",
    "breaker": ["ACME", "OTHER"],
    "clock_guard": {"paused": False, "reason": None},
    "audit_log": {"writable": True, "problem": None},
    "audit_check": {"paused": False, "problem": None},
    "sources": [
        {
            "name": "pbx1",
            "type": "directory",
            "watch": "inotify",
            "scanning": False,
            "last_scan": "2026-11-23T14:00:00.5Z",
            "scan_seconds": 4.213,
            "objects": None,
        },
        {
            "name": "archive",
            "type": "s3",
            "watch": "none",
            "scanning": True,
            "last_scan": None,
            "scan_seconds": None,
            "objects": None,
        },
    ],
    "licences": [
        {"licence": "3CX-1234-5678", "recordings": 12000, "bytes": 1_533_000_000, "due": 2},
        {"licence": None, "recordings": 34, "bytes": 1_000_000, "due": 0},
    ],
}

REC: dict[str, Any] = {
    "id": "8a47373e7a113408a3a4",
    "source": "pbx1",
    "location": "/srv/rec/1001/1700.wav",
    "licence": "3CX-1234-5678",
    "started": "2026-11-23T13:43:09Z",
    "deadline": "2027-02-23T13:43:09Z",
    "size": 1234567,
    "held": False,
    "state": "present",
    "skip_reason": None,
    "not_before": None,
}
HOSTILE: dict[str, Any] = {
    "id": "b3c0b50ec44a25938d00",
    "source": "archive",
    "location": "s3://recordings/tenants/x/\x1b[31m\n.wav",
    "licence": None,
    "started": "2026-11-20T09:00:00+01:00",
    "deadline": None,
    "size": 512,
    "held": True,
    "state": "present",
    "skip_reason": "has 2 hard links",
    "not_before": None,
}

SHOW: dict[str, Any] = REC | {
    "fields": {
        "licence": {"value": "3CX-1234-5678", "from": "source"},
        "started": {"value": "2026-11-23T13:43:09Z", "from": "pattern"},
        "call_id": {"value": "1700", "from": "pattern"},
        "duration": {"value": 63.5, "from": "tags"},
        "parties": {"value": ["+441234", "+449876"], "from": "tags"},
        "format": {"value": "wav", "from": ""},
    },
    "retention": {
        "period": "3mo",
        "rule": "retention in /etc/recd/licences.d/acme.toml",
        "deadline": "2027-02-23T13:43:09Z",
    },
    "first_seen": "2026-11-23T13:44:00.000001Z",
    "mtime": "2026-11-23T13:44:59Z",
    "dev": 2049,
    "ino": 131,
}

POLICY: list[dict[str, Any]] = [
    {
        "licence": "3CX-1234-5678",
        "name": "Acme Ltd",
        "retention": "3mo",
        "rule": "retention in /etc/recd/licences.d/acme.toml",
        "recordings": 12000,
        "breaker": True,
    },
    {
        "licence": None,
        "name": None,
        "retention": "keep",
        "rule": "retention.unclassified = keep in /etc/recd/recd.toml",
        "recordings": 34,
        "breaker": False,
    },
]

SCANS: list[dict[str, Any]] = [
    {"source": "pbx1", "files": 12034, "new": 12, "changed": 3, "missing": 1, "seconds": 4.213},
    {"source": "archive", "files": 1, "new": 0, "changed": 0, "missing": 0, "seconds": 0.04},
]

BREAKERS: list[dict[str, Any]] = [
    {
        "licence": "ACME",
        "tripped_at": "2026-11-23T14:21:19.5Z",
        "due": 1200,
        "total": 2000,
        "released_at": None,
        "released_by": None,
    },
    {
        "licence": "OTHER",
        "tripped_at": "2026-11-20T14:21:19Z",
        "due": 5,
        "total": 6,
        "released_at": "2026-11-20T15:00:00Z",
        "released_by": "alice",
    },
]


RELEASE: dict[str, Any] = {"licence": "ACME", "due": 1200}
CONFIRMED: dict[str, Any] = {"wall": "2026-11-23T12:00:00Z", "problem": None}


def ask(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, answer: Any, *argv: str
) -> tuple[int, str, str]:
    """Run ``recctl --socket <daemon> ARGV`` with the daemon answering ``answer``."""
    canned = isinstance(answer, Reply | bytes | Delay)
    daemon.answer = answer if canned else Reply.success(answer)
    return run(capsys, "--socket", str(daemon.path), *argv)


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
        "    audit        check and list the audit log\n"
    ) in out
    assert (
        "  --socket PATH  recd's admin socket (default: /run/recd/recd.sock); the audit\n"
        "                 commands read the log file instead\n"
    ) in out


STATUS_TEXT = """\
version:        0.1.0 (pid 4242, up since 2026-11-23T08:00:00Z)
mode:           enforce
recordings:     12034 (1.5 GB)
unclassified:   34
overdue:        0
next deadline:  2026-12-01T10:00:00Z
clock guard:    ok
breakers:       tripped for ACME, OTHER (see `recctl breaker ls`)

SOURCE   TYPE       WATCH    SCAN     LAST SCAN             TOOK
pbx1     directory  inotify  idle     2026-11-23T14:00:00Z  4.2 s
archive  s3         none     running  never                 -

LICENCE         RECORDINGS  SIZE    DUE
3CX-1234-5678   12000       1.5 GB  2
(unclassified)  34          1.0 MB  0
"""


def test_status(capsys, daemon):
    assert ask(capsys, daemon, STATUS, "status") == (ExitCode.OK, STATUS_TEXT, "")
    assert daemon.request == Request("status", {})
    assert daemon.raw == [b'{"v":1,"command":"status","args":{}}\n']


def test_status_of_a_paused_daemon_with_nothing_yet(capsys, daemon):
    status = STATUS | {
        "mode": "dry-run",
        "recordings": 0,
        "bytes": 0,
        "unclassified": 0,
        "overdue": 3,
        "next_deadline": None,
        "breaker": [],
        "clock_guard": {"paused": True, "reason": "the wall clock jumped 2h ahead"},
        "sources": [],
        "licences": [],
    }
    assert ask(capsys, daemon, status, "status") == (
        ExitCode.OK,
        "version:        0.1.0 (pid 4242, up since 2026-11-23T08:00:00Z)\n"
        "mode:           dry-run\n"
        "recordings:     0 (0 B)\n"
        "unclassified:   0\n"
        "overdue:        3\n"
        "next deadline:  none\n"
        "clock guard:    paused: the wall clock jumped 2h ahead\n"
        "breakers:       none\n"
        "\n"
        "SOURCE  TYPE  WATCH  SCAN  LAST SCAN  TOOK\n"
        "\n"
        "LICENCE  RECORDINGS  SIZE  DUE\n",
        "",
    )
    status["clock_guard"] = {"paused": True, "reason": None}
    assert "clock guard:    paused: see the log\n" in ask(capsys, daemon, status, "status")[1]


def test_status_of_a_daemon_whose_audit_log_did_not_check(capsys, daemon):
    problem = "the catalogue reflects audit entry 9, but /var/lib/recd/audit.log ends at entry 4"
    status = STATUS | {"audit_check": {"paused": True, "problem": problem}}
    out = ask(capsys, daemon, status, "status")[1]
    assert out.startswith(
        "version:          0.1.0 (pid 4242, up since 2026-11-23T08:00:00Z)\n"
        "mode:             enforce\n"
    )
    assert (
        "next deadline:    2026-12-01T10:00:00Z\n"
        f"audit log check:  erasing paused: {problem}\n"
        "clock guard:      ok\n"
    ) in out
    status["audit_check"] = {"paused": False, "problem": None}
    assert "audit log check" not in ask(capsys, daemon, status, "status")[1]


def test_audit_acknowledge_asks_the_daemon(capsys, daemon):
    answer = {"seq": 41, "problem": "the log was cut"}
    assert ask(capsys, daemon, answer, "audit", "acknowledge", "--reason", "checked") == (
        ExitCode.OK,
        "audit log acknowledged (entry 41): erasing resumes (it was paused: the log was cut)\n",
        "",
    )
    assert daemon.request == Request("audit acknowledge", {"reason": "checked"})
    code, out, err = ask(capsys, daemon, answer, "audit", "acknowledge")
    assert (code, out) == (ExitCode.USAGE, "")
    assert err.startswith("recctl: the following arguments are required: --reason")


def test_status_json_is_the_result_object(capsys, daemon):
    code, out, err = ask(capsys, daemon, STATUS, "status", "--json")
    assert (code, err) == (ExitCode.OK, "")
    assert out == json.dumps(STATUS, indent=2, ensure_ascii=False) + "\n"


LS_TABLE = (
    "ID                    LICENCE         STARTED               DEADLINE              SIZE"
    "    STATE                   LOCATION\n"
    "8a47373e7a113408a3a4  3CX-1234-5678   2026-11-23T13:43:09Z  2027-02-23T13:43:09Z  1.2 MB"
    "  present                 /srv/rec/1001/1700.wav\n"
    "b3c0b50ec44a25938d00  (unclassified)  2026-11-20T08:00:00Z  never                 512 B "
    "  present, held, skipped  s3://recordings/tenants/x/\\x1b[31m\\n.wav\n"
)


def test_ls_prints_a_table_safe_for_the_terminal(capsys, daemon):
    assert ask(capsys, daemon, [REC, HOSTILE], "ls") == (ExitCode.OK, LS_TABLE, "")
    assert daemon.request == Request("ls", {"limit": 1000, "state": "present"})


def test_ls_json_keeps_exact_values(capsys, daemon):
    assert ask(capsys, daemon, [REC, HOSTILE], "ls", "--json") == (
        ExitCode.OK,
        "[\n"
        + json.dumps(REC, ensure_ascii=False)
        + ",\n"
        + json.dumps(HOSTILE, ensure_ascii=False)
        + "\n]\n",
        "",
    )
    assert ask(capsys, daemon, [], "ls", "--json") == (ExitCode.OK, "[]\n", "")


def test_ls_json_escapes_undecodable_file_name_bytes(capsys, daemon):
    # A file name with a byte that is not UTF-8 travels as a lone surrogate; --json must still
    # print valid UTF-8.
    rec = REC | {"location": "/srv/rec/caf\udce9.wav"}
    code, out, _ = ask(capsys, daemon, [rec], "ls", "--json")
    assert code == ExitCode.OK
    assert '"location": "/srv/rec/caf\\udce9.wav"' in out
    out.encode("utf-8")
    assert json.loads(out)[0]["location"] == "/srv/rec/caf\udce9.wav"
    assert ask(capsys, daemon, [rec], "ls")[1].endswith("  /srv/rec/caf\\xe9.wav\n")


def test_an_empty_listing_is_a_header(capsys, daemon):
    assert ask(capsys, daemon, [], "ls") == (
        ExitCode.OK,
        "ID  LICENCE  STARTED  DEADLINE  SIZE  STATE  LOCATION\n",
        "",
    )


@pytest.mark.parametrize(
    ("options", "args"),
    [
        (["--licence", "3CX-1234-5678"], {"licence": "3CX-1234-5678"}),
        (["--unclassified"], {"unclassified": True}),
        (["--due-before", "2026-12-01"], {"due_before": "2026-12-01T00:00:00Z"}),
        (["--due-before", "2026-12-01T10:00"], {"due_before": "2026-12-01T10:00:00Z"}),
        (["--due-before", "2026-12-01T10:00:00Z"], {"due_before": "2026-12-01T10:00:00Z"}),
        (["--due-before", "2026-12-01T10:00+01:00"], {"due_before": "2026-12-01T09:00:00Z"}),
        (
            ["--due-before", "2026-12-01T10:00:00.25-02:30"],
            {"due_before": "2026-12-01T12:30:00.250000Z"},
        ),
        (["--limit", "5"], {"limit": 5}),
        (["--state", "all"], {"state": "all"}),
        (
            ["--licence", "L", "--state", "erased", "--limit", "2", "--due-before", "2027-01-01"],
            {"licence": "L", "state": "erased", "limit": 2, "due_before": "2027-01-01T00:00:00Z"},
        ),
    ],
)
def test_ls_sends_its_filters(capsys, daemon, options, args):
    assert ask(capsys, daemon, [], "ls", *options) == (
        ExitCode.OK,
        "ID  LICENCE  STARTED  DEADLINE  SIZE  STATE  LOCATION\n",
        "",
    )
    assert daemon.request == Request("ls", {"limit": 1000, "state": "present"} | args)


@pytest.mark.parametrize(("json_flag", "out"), [([], LS_TABLE), (["--json"], None)])
def test_a_truncated_listing_says_so_on_stderr(capsys, daemon, json_flag, out):
    reply = Reply.success([REC, HOSTILE], truncated=True)
    code, printed, err = ask(capsys, daemon, reply, "ls", "--limit", "2", *json_flag)
    assert code == ExitCode.OK
    if out is None:
        assert json.loads(printed) == [REC, HOSTILE]
    else:
        assert printed == out
    assert err == "recctl: showing the first 2 recordings; use --limit to see more\n"
    reply = Reply.success([REC], truncated=True)
    assert ask(capsys, daemon, reply, "ls", "--limit", "1")[2] == (
        "recctl: showing the first 1 recording; use --limit to see more\n"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--licence", "L", "--unclassified"],
            "argument --unclassified: not allowed with argument --licence",
        ),
        (
            ["--due-before", "tomorrow"],
            'argument --due-before: not an ISO 8601 time: "tomorrow" '
            "(use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)",
        ),
        (
            ["--due-before", "2026-13-01"],
            'argument --due-before: not an ISO 8601 time: "2026-13-01" '
            "(use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)",
        ),
        (
            ["--due-before", "0001-01-01T00:00+01:00"],
            'argument --due-before: not an ISO 8601 time: "0001-01-01T00:00+01:00" '
            "(use e.g. 2026-12-01 or 2026-12-01T10:00:00Z)",
        ),
        (["--limit", "0"], 'argument --limit: not a positive integer: "0"'),
        (["--limit", "-5"], 'argument --limit: not a positive integer: "-5"'),
        (["--limit", "ten"], 'argument --limit: not a positive integer: "ten"'),
        (
            ["--state", "gone"],
            "argument --state: invalid choice: 'gone' "
            "(choose from 'present', 'erased', 'missing', 'all')",
        ),
    ],
)
def test_ls_usage_errors_name_the_argument(capsys, daemon, options, message):
    assert ask(capsys, daemon, [], "ls", *options) == (
        ExitCode.USAGE,
        "",
        f"recctl: {message} (see `recctl ls --help`)\n",
    )
    assert daemon.requests == []


SHOW_TEXT = """\
id:          8a47373e7a113408a3a4
source:      pbx1
location:    /srv/rec/1001/1700.wav
state:       present
size:        1.2 MB (1234567 bytes)
licence:     3CX-1234-5678 (from source)
started:     2026-11-23T13:43:09Z (from pattern)
call_id:     1700 (from pattern)
duration:    63.5 (from tags)
parties:     ["+441234","+449876"] (from tags)
format:      wav
deadline:    2027-02-23T13:43:09Z (started + 3mo, by retention in /etc/recd/licences.d/acme.toml)
held:        no
first seen:  2026-11-23T13:44:00Z
mtime:       2026-11-23T13:44:59Z
inode:       131 on device 2049
"""


def test_show_says_where_every_field_and_the_deadline_come_from(capsys, daemon):
    assert ask(capsys, daemon, SHOW, "show", "8a47373e7a113408a3a4") == (
        ExitCode.OK,
        SHOW_TEXT,
        "",
    )
    assert daemon.request == Request("show", {"id": "8a47373e7a113408a3a4"})


def test_show_of_an_unclassified_object_kept_for_now(capsys, daemon):
    kept = HOSTILE | {
        "fields": {},
        "retention": {
            "period": "keep",
            "rule": "retention.unclassified = keep in /etc/recd/recd.toml",
        },
        "first_seen": None,
        "mtime": None,
        "dev": None,
        "ino": None,
    }
    assert ask(capsys, daemon, kept, "show", "b3c0b5") == (
        ExitCode.OK,
        "id:          b3c0b50ec44a25938d00\n"
        "source:      archive\n"
        "location:    s3://recordings/tenants/x/\\x1b[31m\\n.wav\n"
        "state:       present\n"
        "size:        512 B (512 bytes)\n"
        "licence:     (unclassified)\n"
        "started:     2026-11-20T08:00:00Z\n"
        "deadline:    never (retention keep, by retention.unclassified = keep in "
        "/etc/recd/recd.toml)\n"
        "held:        yes\n"
        "skipped:     has 2 hard links\n"
        "first seen:  -\n"
        "mtime:       -\n",
        "",
    )
    del kept["retention"]
    assert "\ndeadline:    never\n" in ask(capsys, daemon, kept, "show", "b3c0b5")[1]


INITECH = "retention in /etc/recd/licences.d/initech.toml"


def test_show_labels_a_deadline_a_hold_release_deferred(capsys, daemon):
    """Released from a hold 19 days past its deadline: the deadline is the release + the
    grace, and says so; the date retention alone gives is there too."""
    deferred = SHOW | {
        "started": "2026-10-05T10:00:00Z",
        "deadline": "2026-11-30T19:12:00.010753Z",
        "not_before": "2026-11-30T19:12:00.010753Z",
        "retention": {"period": "30d", "rule": INITECH, "deadline": "2026-11-04T10:00:00Z"},
    }
    out = ask(capsys, daemon, deferred, "show", "8a47")[1]
    assert out.split("\n")[11:14] == [
        "deadline:    2026-11-30T19:12:00Z (deferred by a legal hold's release; started + 30d is "
        f"2026-11-04T10:00:00Z, by {INITECH})",
        "not before:  2026-11-30T19:12:00Z (released from a legal hold: release + "
        "holds.release_grace)",
        "held:        no",
    ]


def test_show_gives_a_release_floor_before_the_deadline_as_it_is(capsys, daemon):
    """A floor that retention's deadline passes anyway still keeps requests off it."""
    floored = SHOW | {
        "not_before": "2026-11-30T19:08:36.923241Z",
        "retention": SHOW["retention"] | {"deadline": SHOW["deadline"]},
    }
    out = ask(capsys, daemon, floored, "show", "8a47")[1]
    assert out == SHOW_TEXT.replace(
        "\nheld:",
        "\nnot before:  2026-11-30T19:08:36Z (released from a legal hold: release + "
        "holds.release_grace)\nheld:",
    )


def test_show_json_is_the_result_object(capsys, daemon):
    code, out, err = ask(capsys, daemon, SHOW, "show", "8a47", "--json")
    assert (code, out, err) == (ExitCode.OK, json.dumps(SHOW, indent=2) + "\n", "")


def test_show_of_an_unknown_id_exits_3(capsys, daemon):
    reply = Reply.failure(ErrorKind.NOT_FOUND, "no recording with id 1f2e (see `recctl ls`)")
    assert ask(capsys, daemon, reply, "show", "1f2e") == (
        ExitCode.NOT_ALLOWED,
        "",
        "recctl: no recording with id 1f2e (see `recctl ls`)\n",
    )


def test_policy(capsys, daemon):
    assert ask(capsys, daemon, POLICY, "policy") == (
        ExitCode.OK,
        "LICENCE         NAME      RETENTION  RULE                                           "
        "       RECORDINGS  BREAKER\n"
        "3CX-1234-5678   Acme Ltd  3mo        retention in /etc/recd/licences.d/acme.toml    "
        "       12000       tripped\n"
        "(unclassified)  -         keep       retention.unclassified = keep in /etc/recd/recd"
        ".toml  34          -\n",
        "",
    )
    assert daemon.request == Request("policy", {})
    code, out, _ = ask(capsys, daemon, POLICY, "policy", "--json")
    assert (code, out) == (ExitCode.OK, "".join(json_array(POLICY)))


@pytest.mark.parametrize(("argv", "args"), [([], {}), (["pbx1"], {"source": "pbx1"})])
def test_scan_prints_a_line_per_source(capsys, daemon, argv, args):
    assert ask(capsys, daemon, SCANS, "scan", *argv) == (
        ExitCode.OK,
        "pbx1: 12034 files, 12 new, 3 changed, 1 missing, 4.2 s\n"
        "archive: 1 file, 0 new, 0 changed, 0 missing, 0.0 s\n",
        "",
    )
    assert daemon.request == Request("scan", args)


def test_scan_json_and_an_empty_scan(capsys, daemon):
    assert ask(capsys, daemon, SCANS[:1], "scan", "--json") == (
        ExitCode.OK,
        '[\n{"source": "pbx1", "files": 12034, "new": 12, "changed": 3, "missing": 1, '
        '"seconds": 4.213}\n]\n',
        "",
    )
    assert ask(capsys, daemon, [], "scan") == (ExitCode.OK, "", "")


def test_scan_waits_as_long_as_the_scan_takes(capsys, daemon, monkeypatch):
    monkeypatch.setattr("recd.cli.kit.TIMEOUT", 0.1)
    assert ask(capsys, daemon, Delay(0.5, Reply.success(SCANS[:1])), "scan")[:2] == (
        ExitCode.OK,
        "pbx1: 12034 files, 12 new, 3 changed, 1 missing, 4.2 s\n",
    )
    daemon.answer = Delay(0.5, Reply.success(STATUS))
    assert run(capsys, "--socket", str(daemon.path), "status") == (
        ExitCode.FAILED,
        "",
        f"recctl: recd did not answer within 0.1 s on {daemon.path}; it may be busy or stuck "
        "(see `journalctl -u recd`)\n",
    )


def test_scan_of_an_unknown_source_exits_3(capsys, daemon):
    reply = Reply.failure(ErrorKind.NOT_FOUND, "no source named pbx9 (configured: pbx1)")
    assert ask(capsys, daemon, reply, "scan", "pbx9") == (
        ExitCode.NOT_ALLOWED,
        "",
        "recctl: no source named pbx9 (configured: pbx1)\n",
    )


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


# as a real command ------------------------------------------------------------------------------


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
