"""``recctl request add|approve|reject|ls|show|certificate`` (``recd.cli.commands.requests``)
against a fake daemon answering canned replies (``tests/cli/replies.py``): request files and
standard input read by recctl itself, the requests sent, the output and the exit status, word
for word; a certificate written whole or not at all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.errors import ExitCode
from recd.protocol import ErrorKind, Reply, Request
from tests.cli.helpers import ask, usage
from tests.cli.replies import (
    APPROVED,
    CERT_REPLY,
    CERT_SHA,
    CERTIFICATE,
    COUNTS,
    DOCUMENT,
    DONE,
    ITEMS,
    REC_A,
    REC_B,
    REQUEST,
    SIGNED,
)


def stdin_bytes(data: bytes) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


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
