"""``recctl audit verify|head|ls|acknowledge`` (``recd.cli.commands.audit``): the chain checked
and listed from a real log file, word for word; ``acknowledge`` asked of a fake daemon."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from recd.cli.main import main
from recd.core.audit import GENESIS, AuditDraft, AuditEntry, seal, to_line
from recd.core.times import parse_time
from recd.errors import ExitCode
from recd.protocol import Request
from tests.cli.helpers import ENTRIES, LINES, ask, run


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


def test_ls_shows_a_batch_intent_on_one_line_and_an_old_intent_as_before(capsys, tmp_path):
    """A batch's ``erase.intent`` (SPEC 7) is one row: how many recordings and the directory
    they are in, not a list cut at 80 characters; ``--json`` keeps every recording. A
    per-recording intent of an older log reads as it always did."""
    item = {"deadline": "2026-11-20T00:00:00.000000Z", "size": 7}
    recordings = [
        {"id": f"pbx1:{n}", "intent": f"i{n}", "location": f"/rec/7/{n}.wav", **item}
        for n in range(3)
    ]
    batch = {"batch": "b1", "reason": "retention", "method": "unlink", "recordings": recordings}
    old = {"intent": "i9", "location": "/rec/8/x.wav", "reason": "retention"}
    drafts = [AuditDraft("erase.intent", "b1", batch), AuditDraft("erase.intent", "pbx1:9", old)]
    prev, lines = GENESIS, []
    for seq, draft in enumerate(drafts, 1):
        entry = seal(draft, seq=seq, prev=prev, time=parse_time("2026-11-23T13:44:09.000000Z"))
        lines.append(to_line(entry))
        prev = entry.hash
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines))
    code, out, err = run(capsys, "audit", "ls", "--file", str(path))
    assert (code, err) == (ExitCode.OK, "")
    _header, first, second = out.splitlines()
    assert first.split()[3:5] == ["erase.intent", "b1"]
    assert first.endswith("recordings=3 under=/rec/7/ reason=retention method=unlink batch=b1")
    assert second.endswith("location=/rec/8/x.wav reason=retention intent=i9")
    code, out, _ = run(capsys, "audit", "ls", "--file", str(path), "--json")
    assert json.loads(out)[0]["details"] == batch
