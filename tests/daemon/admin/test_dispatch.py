"""Admin commands end to end in-process: a started daemon, its loop on a thread, a real socket."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.core.safety import SafetySettings
from recd.daemon.loop import Daemon
from recd.errors import ExitCode
from recd.protocol import ErrorKind, RemoteError, Request
from tests.daemon.admin.helpers import Live, three_recordings
from tests.daemon.helpers import value
from tests.estate import Estate
from tests.fakes import FakeClock


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return three_recordings(tmp_path, fake_clock)


@pytest.fixture
def live(estate: Estate) -> Iterator[Live]:
    running = Live(estate)
    yield running
    running.close()


def test_status(live: Live) -> None:
    status = live.ask("status")
    assert status["mode"] == "enforce"
    assert (status["recordings"], status["unclassified"], status["overdue"]) == (3, 1, 0)
    assert status["bytes"] == 3 * 4096
    assert status["breaker"] == []
    assert status["clock_guard"] == {"paused": False, "reason": None}
    assert status["next_deadline"] == "2026-12-10T12:00:00Z"
    assert [(s["name"], s["watch"], s["scanning"]) for s in status["sources"]] == [
        ("pbx", "inotify", False)
    ]
    assert status["sources"][0]["last_scan"] == "2026-11-23T12:00:00Z"
    assert [(x["licence"], x["recordings"], x["due"]) for x in status["licences"]] == [
        (None, 1, 0), ("L1", 1, 0), ("L2", 1, 0),
    ]  # fmt: skip


def test_ls_filters_and_truncation(live: Live) -> None:
    rows = live.ask("ls")
    assert [r["location"].rpartition("/recordings/")[2] for r in rows] == [
        "L1/20261110120000_a.wav", "L2/b.wav", "unknown/c.wav",
    ]  # fmt: skip
    first = rows[0]
    assert set(first) == {"id", "source", "location", "licence", "started", "deadline", "size",
                          "held", "state", "skip_reason", "not_before"}  # fmt: skip
    assert first["not_before"] is None  # no hold was released from it
    assert (first["licence"], first["started"], first["held"], first["state"]) == (
        "L1", "2026-11-10T12:00:00Z", False, "present",
    )  # fmt: skip
    assert [r["licence"] for r in live.ask("ls", unclassified=True)] == [None]
    assert [r["licence"] for r in live.ask("ls", licence="L2")] == ["L2"]
    assert live.ask("ls", due_before="2026-12-11T00:00:00Z") == [rows[0]]
    reply = call(live.estate.config.daemon.socket, Request("ls", {"limit": 1}))
    assert (len(reply.result), reply.truncated) == (1, True)
    assert live.ask("ls", state="erased") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"limit": 0}, "limit: a whole number from 1 to 1000000, not 0"),
        ({"limit": True}, "limit: a whole number from 1 to 1000000, not True"),
        ({"state": "gone"}, "state: one of present, erased, missing, all; not 'gone'"),
        ({"due_before": "tomorrow"}, "due_before: not an ISO 8601 time with a zone: 'tomorrow'"),
        (
            {"due_before": "2026-12-01"},
            "due_before: not an ISO 8601 time with a zone: '2026-12-01'",
        ),
        ({"licence": ""}, "licence: a non-empty text value is required"),
        ({"unclassified": "yes"}, "unclassified: true or false expected"),
        (
            {"licence": "L1", "unclassified": True},
            "--licence and --unclassified exclude each other",
        ),
    ],
)
def test_ls_refuses_bad_arguments(live: Live, args: dict[str, Any], message: str) -> None:
    with pytest.raises(RemoteError) as caught:
        live.ask("ls", **args)
    assert (caught.value.kind, str(caught.value)) == (ErrorKind.USAGE, message)


def test_show_says_where_each_field_and_the_deadline_come_from(live: Live) -> None:
    rid = live.ask("ls", licence="L1")[0]["id"]
    shown = live.ask("show", id=rid[:8])  # a unique prefix will do
    assert shown["id"] == rid
    assert shown["fields"]["licence"] == {"value": "L1", "from": "pattern"}
    assert shown["fields"]["started"] == {"value": "2026-11-10T12:00:00Z", "from": "pattern"}
    assert shown["retention"] == {
        "period": "30d",
        "rule": f"retention in {live.estate.base}/l1.toml",
        "deadline": "2026-12-10T12:00:00Z",
    }
    unknown = live.ask("ls", unclassified=True)[0]["id"]
    assert live.ask("show", id=unknown)["retention"] == {
        "period": "keep",
        "rule": f"retention.unclassified = keep in {live.estate.base}/recd.toml",
        "deadline": None,
    }
    with pytest.raises(RemoteError, match=r"no recording with id 0000000 \(see `recctl ls`\)"):
        live.ask("show", id="0000000")
    with pytest.raises(RemoteError, match="id: a non-empty text value is required"):
        live.ask("show")


def test_policy_lists_every_licence_and_the_unclassified(live: Live) -> None:
    rows = live.ask("policy")
    got = [(r["licence"], r["name"], r["retention"], r["recordings"], r["breaker"]) for r in rows]
    assert got == [
        ("L1", "One", "30d", 1, False),
        ("L2", "Two", "3mo", 1, False),
        (None, None, "keep", 1, False),
    ]


def test_scan_runs_on_the_loop_and_reports(live: Live) -> None:
    # A hard link made into the tree is no event the watcher reports: only a scan finds it.
    outside = live.estate.base / "elsewhere.wav"
    outside.write_bytes(b"x")
    os.link(outside, live.estate.root / "L1" / "new.wav")
    (stats,) = live.ask("scan", source="pbx")
    assert (stats["source"], stats["files"], stats["new"], stats["missing"]) == ("pbx", 4, 1, 0)
    assert len(live.ask("scan")) == 1
    with pytest.raises(RemoteError, match="no source named nope"):
        live.ask("scan", source="nope")


def test_unknown_command(live: Live) -> None:
    with pytest.raises(RemoteError, match="unknown command 'dance'"):
        live.ask("dance")


def test_breaker_ls_and_release_audited_with_the_caller(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    estate = Estate(tmp_path, fake_clock, safety=SafetySettings(min_breaker_count=2))
    for i in range(3):
        estate.write(f"L1/old{i}.wav", age_days=40)
    running = Live(estate)
    try:
        assert [b["licence"] for b in running.ask("breaker ls")] == ["L1"]
        assert running.ask("status")["breaker"] == ["L1"]
        assert running.daemon.snapshot().overdue == 3  # held back on purpose
        assert running.ask("breaker release", licence="L1") == {"licence": "L1", "due": 3}
        released = [e for e in estate.audit() if e["action"] == "breaker.released"]
        me = pwd.getpwuid(os.geteuid()).pw_name
        assert [(e["subject"], e["actor"]) for e in released] == [("L1", me)]
        with pytest.raises(RemoteError, match="no tripped mass-deletion breaker for licence L1"):
            running.ask("breaker release", licence="L1")
    finally:
        running.close()


def test_commands_after_stop_are_refused(estate: Estate) -> None:
    daemon = Daemon(estate.config, estate.clock, Notifier(None))
    daemon.start()
    daemon.stop()
    with pytest.raises(Exception, match="recd is stopping"):
        daemon.call_soon(lambda: None)


def test_a_source_this_node_does_not_serve_in_status_scan_and_metrics(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A source whose nodes leave this node out: status says so (and the node's name), `scan`
    of it is refused with the reason, an unnamed scan leaves it out, and its gauge is 0."""
    estate = three_recordings(tmp_path, fake_clock)
    (pbx,) = estate.config.sources
    other = tmp_path / "other"
    (other / "L1").mkdir(parents=True)
    (other / "L1" / "theirs.wav").write_bytes(b"x" * 4096)
    theirs = replace(pbx, name="theirs", path=other, nodes=("pbx-b", "pbx-c"))
    estate.configure(daemon=replace(estate.config.daemon, node="pbx-a"), sources=(pbx, theirs))
    running = Live(estate)
    try:
        status = running.ask("status")
        assert status["node"] == "pbx-a"
        assert [(s["name"], s["served"], s["scanning"]) for s in status["sources"]] == [
            ("pbx", "served", False),
            ("theirs", "not-listed", False),  # never "scanning": nobody here will
        ]
        with pytest.raises(RemoteError) as refused:
            running.ask("scan", source="theirs")
        assert refused.value.kind is ErrorKind.NOT_ALLOWED
        assert refused.value.exit_code == ExitCode.NOT_ALLOWED
        assert str(refused.value) == (
            "source theirs: this node (pbx-a) does not serve it: its nodes list only pbx-b, "
            "pbx-c; scan it with recctl on one of those, or add pbx-a to its nodes"
        )
        assert [s["source"] for s in running.ask("scan")] == ["pbx"]
        assert status["recordings"] == running.ask("status")["recordings"] == 3  # not indexed
        metrics = running.daemon.metrics
        assert metrics is not None
        assert value(metrics, "recd_source_served", source="pbx") == 1.0
        assert value(metrics, "recd_source_served", source="theirs") == 0.0
    finally:
        running.close()
