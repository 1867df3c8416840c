"""``recctl status``, ``ls``, ``show``, ``policy`` and ``scan`` (``recd.cli.commands.records``)
against a fake daemon on a real Unix socket answering canned replies (``tests/cli/replies.py``):
the request sent, stdout, the stderr line and the exit status, word for word."""

from __future__ import annotations

import json

import pytest

from recd.cli.render.text import json_array
from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.cli.helpers import ask, run
from tests.cli.replies import HOSTILE, POLICY, REC, SCANS, SHOW, STATUS
from tests.fakedaemon import Delay

STATUS_TEXT = """\
version:        0.1.0 (pid 4242, up since 2026-11-23T08:00:00Z)
node:           pbx-a
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
        "node:           pbx-a\n"
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
        "node:             pbx-a\n"
        "mode:             enforce\n"
    )
    assert (
        "next deadline:    2026-12-01T10:00:00Z\n"
        f"audit log check:  erasing paused: {problem}\n"
        "clock guard:      ok\n"
    ) in out
    status["audit_check"] = {"paused": False, "problem": None}
    assert "audit log check" not in ask(capsys, daemon, status, "status")[1]


def test_status_while_the_catalogue_cannot_be_reached_says_why_and_no_counts(capsys, daemon):
    """The daemon runs, its database does not answer: the reason, and "unknown" where the
    catalogue would have answered (never a count of 0 that reads as an empty estate)."""
    problem = 'catalogue database "recd" on db1 as user "recd": cannot reach the database: gone'
    status = STATUS | {
        "recordings": 0,
        "bytes": 0,
        "unclassified": 0,
        "overdue": 0,
        "next_deadline": None,
        "breaker": [],
        "audit_log": {"writable": False, "problem": problem},
        "catalogue": {"reachable": False, "problem": problem},
        "licences": [],
    }
    out = ask(capsys, daemon, status, "status")[1]
    unknown = "unknown: the catalogue cannot be reached"
    assert out.startswith(
        "version:        0.1.0 (pid 4242, up since 2026-11-23T08:00:00Z)\n"
        "node:           pbx-a\n"
        "mode:           enforce\n"
        f"catalogue:      erasing paused: {problem}; retrying\n"
        f"recordings:     {unknown}\n"
        f"unclassified:   {unknown}\n"
        f"overdue:        {unknown}\n"
        f"next deadline:  {unknown}\n"
        "clock guard:    ok\n"
        f"breakers:       {unknown}\n"
    )
    assert "audit log" not in out  # the same reason, said once


def test_status_says_which_sources_this_node_does_not_serve(capsys, daemon):
    pbx1, archive = STATUS["sources"]
    status = STATUS | {
        "sources": [
            pbx1 | {"served": "not-listed"},
            archive | {"served": "elsewhere", "scanning": False},
            pbx1 | {"name": "nfs", "served": "unknown"},
            pbx1 | {"name": "later", "served": "taken"},  # a value of a newer daemon: as is
        ]
    }
    out = ask(capsys, daemon, status, "status")[1]
    assert (
        "SOURCE   TYPE       WATCH    SCAN  LAST SCAN             TOOK   SERVED\n"
        "pbx1     directory  inotify  idle  2026-11-23T14:00:00Z  4.2 s  no: not listed for this "
        "node\n"
        "archive  s3         none     idle  never                 -      no: served by another "
        "node (one at a time)\n"
        "nfs      directory  inotify  idle  2026-11-23T14:00:00Z  4.2 s  unknown (not asked yet)\n"
        "later    directory  inotify  idle  2026-11-23T14:00:00Z  4.2 s  taken\n"
    ) in out


def test_status_of_an_older_daemon_without_node_or_served(capsys, daemon):
    """A daemon from before issue 18 sends neither: the status reads as it always did."""
    status = {key: value for key, value in STATUS.items() if key != "node"}
    status["sources"] = [
        {key: value for key, value in source.items() if key != "served"}
        for source in STATUS["sources"]
    ]
    expected = STATUS_TEXT.replace("node:           pbx-a\n", "")
    assert ask(capsys, daemon, status, "status") == (ExitCode.OK, expected, "")


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
