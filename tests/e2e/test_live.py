"""`recd` as a live daemon, seen from outside: READY, `recctl`, metrics and reloads (SPEC 7-9).

Every test runs `recd --config` as a subprocess with a NotifyListener, talks to it over its real
Unix socket (with `recctl` as a subprocess, or `recd.cli.client` where the moment matters) and
scrapes
its real HTTP metrics endpoint on a port picked here.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recd import __version__
from recd.cli import client
from recd.core.model import recording_id
from recd.protocol import Request
from tests import tools
from tests.e2e.helpers import (
    RETENTION,
    audit_entries,
    catalogued,
    check_consistent,
    env,
    kill_daemon,
    recctl,
    scrape,
    start_daemon,
    stop_daemon,
    wait_until,
    write_due_at,
    write_estate,
    write_licence,
)
from tests.fakes import NotifyListener
from tests.tools import free_port

LS_FIELDS = {"id", "source", "location", "licence", "started", "deadline", "size", "held", "state"}
STATUS_FIELDS = {"version", "mode", "recordings", "next_deadline", "breaker", "clock_guard"}
#: The metric families SPEC section 9 asks for, by the name their `# TYPE` line gives.
FAMILIES = (
    "recd_recordings", "recd_recording_bytes", "recd_unclassified_recordings",
    "recd_held_recordings", "recd_overdue_recordings", "recd_deletions_total",
    "recd_erased_bytes_total", "recd_deletion_lag_seconds", "recd_indexing_lag_seconds",
    "recd_next_deadline_timestamp_seconds", "recd_source_last_scan_timestamp_seconds",
    "recd_source_last_scan_duration_seconds", "recd_watch_overflows_total",
    "recd_breaker_tripped", "recd_clock_guard_paused", "recd_holds_active", "recd_requests",
    "recd_build_info",
)  # fmt: skip
BIG = 20_000  # recordings in the estate whose first scan READY must not wait for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@contextlib.contextmanager
def running(base: Path, listener: NotifyListener) -> Iterator[subprocess.Popen[bytes]]:
    """`recd` on ``base``'s config, READY; SIGKILLed at the end unless the test stopped it."""
    proc = start_daemon(base / "recd.toml", listener, base / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        yield proc
    finally:
        kill_daemon(proc)


def ctl(base: Path, *args: str) -> tuple[int, str, str]:
    """``recctl --socket BASE/recd.sock ARGS``: exit status, stdout, stderr."""
    done = recctl("--socket", str(base / "recd.sock"), *args)
    return done.returncode, done.stdout, done.stderr


def wait_status(listener: NotifyListener, prefix: str, timeout: float = 60.0) -> list[str]:
    """Receive until a ``STATUS=`` line starts with ``prefix``; every STATUS line so far."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        listener.receive(max(0.01, give_up - time.monotonic()))
        statuses = [
            line
            for message in listener.messages
            for line in message.splitlines()
            if line.startswith("STATUS=")
        ]
        if any(line.startswith(f"STATUS={prefix}") for line in statuses):
            return statuses
    raise AssertionError(f"no STATUS={prefix}... within {timeout} s: {listener.messages}")


def put(base: Path, relpath: str, started: float, size: int = 4096) -> str:
    """A recording started at the Unix time ``started`` (its mtime); returns its id."""
    path = base / "recordings" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (started, started))
    return recording_id("pbx", relpath)


def second(when: float | str | datetime) -> str:
    """A Unix time, an aware datetime or an ISO 8601 UTC time as recctl shows it: UTC, to the
    second."""
    if isinstance(when, str):
        return when[:19] + "Z"
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The aligned table recctl prints: columns two spaces apart, no trailing blanks."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]  # fmt: skip
    return "\n".join(lines) + "\n"


def samples(text: str) -> Samples:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped[(name, tuple(sorted(labels.items())))]


def types(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def promtool_check(text: str) -> None:
    done = subprocess.run(
        [tools.need("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def audited(base: Path, action: str) -> list[dict[str, Any]]:
    return [e for e in audit_entries(base) if e["action"] == action]


@contextlib.contextmanager
def scraping(port: int, threads: int = 1) -> Iterator[list[str]]:
    """Scrape /metrics without a pause from ``threads`` threads until the block ends; yields
    the list of failed scrapes (one string each), filled as they happen."""
    failures: list[str] = []
    done = threading.Event()

    def scrape_on() -> None:
        while not done.is_set():
            try:
                scrape(port)
            except OSError as exc:
                failures.append(repr(exc))

    workers = [threading.Thread(target=scrape_on) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield failures
    finally:
        done.set()
        for worker in workers:
            worker.join()


# --- (a) READY only once the socket and the metrics answer ----------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An estate of BIG recordings in two directories (their first scan takes a while)."""
    base = tmp_path_factory.mktemp("big")
    started = time.time() - 86400
    data = b"\0" * 64
    for licence in ("L1", "L2"):
        folder = base / "recordings" / licence
        folder.mkdir(parents=True)
        for i in range(BIG // 2):
            path = folder / f"r{i:05}.wav"
            path.write_bytes(data)
            os.utime(path, (started, started))
    return base


def test_ready_comes_once_the_admin_socket_and_the_metrics_answer(
    big: Path, listener: NotifyListener
) -> None:
    """READY=1 is sent while a 20,000-file first scan is still to run, yet the admin socket
    and the metrics answer the moment it arrives; STATUS= shows the scan's progress before the
    first "next deadline"."""
    port = free_port()
    write_estate(big, listen=f"127.0.0.1:{port}")
    shutil.rmtree(big / "state", ignore_errors=True)  # a first scan, every time
    proc = start_daemon(big / "recd.toml", listener, big / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        # At once: the connection must not fail (ENOENT, ECONNREFUSED) and status must answer.
        status = client.call(big / "recd.sock", Request("status", {}), timeout=30).unwrap()
        assert (status["version"], status["pid"]) == (__version__, proc.pid)
        assert scrape(port)[0] == 200
        # While the first scan runs, status answers (from its own thread) and says so.
        wait_status(listener, "scanning pbx")
        status = client.call(big / "recd.sock", Request("status", {}), timeout=30).unwrap()
        (source,) = status["sources"]
        assert source["name"] == "pbx"
        assert source["scanning"] or source["last_scan"] is not None, source
        statuses = wait_status(listener, "next deadline")
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    assert listener.messages[0] == "READY=1\nSTATUS=scanning sources"
    scanning = statuses.index("STATUS=scanning pbx")
    ready = next(i for i, s in enumerate(statuses) if s.startswith("STATUS=next deadline"))
    assert scanning < ready, statuses
    progress = [
        int(m[1])
        for s in statuses[scanning:ready]
        if (m := re.fullmatch(r"STATUS=scanning pbx: (\d+) files so far", s))
    ]
    assert progress, statuses
    assert progress == sorted(progress) and 0 < progress[-1] <= BIG, statuses
    started = big.joinpath("recordings/L1/r00000.wav").stat().st_mtime
    deadline = second(datetime.fromtimestamp(started, UTC) + RETENTION)
    assert statuses[ready] == f"STATUS=next deadline {deadline}; mode enforce"


def test_status_at_ready_shows_each_source_scanning_or_scanned(
    big: Path, listener: NotifyListener
) -> None:
    """A status asked the moment READY=1 arrives lists every source, as scanning (it was empty
    until the watchers had started)."""
    write_estate(big, listen="127.0.0.1:0")
    with running(big, listener):
        status = client.call(big / "recd.sock", Request("status", {}), timeout=30).unwrap()
    shown = [(s["name"], s["scanning"] or s["last_scan"] is not None) for s in status["sources"]]
    assert shown == [("pbx", True)]


# --- (b) no daemon --------------------------------------------------------------------------------


def test_recctl_without_the_daemon_exits_69_with_one_line(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """After a clean stop (no socket file) and after SIGKILL (a stale one): exit 69, one line."""
    write_estate(tmp_path, listen="127.0.0.1:0")
    sock = tmp_path / "recd.sock"
    with running(tmp_path, listener) as proc:
        assert ctl(tmp_path, "status")[0] == 0
        stop_daemon(proc, listener)
    assert ctl(tmp_path, "status") == (
        69,
        "",
        f"recctl: recd is not running: cannot connect to {sock} (no such socket); "
        "start it with `systemctl start recd`\n",
    )
    with running(tmp_path, listener) as proc:
        proc.send_signal(signal.SIGKILL)  # leaves its socket file behind
        proc.wait(timeout=30)
    assert sock.exists()
    assert ctl(tmp_path, "status") == (
        69,
        "",
        f"recctl: recd is not running: cannot connect to {sock} (connection refused); "
        "start it with `systemctl start recd`\n",
    )


# --- (c) a recctl session against the real daemon -------------------------------------------------

RECORDING_HEADERS = ("ID", "LICENCE", "STARTED", "DEADLINE", "SIZE", "STATE", "LOCATION")


def session_estate(base: Path) -> dict[str, tuple[str, float]]:
    """50 recordings of L1 (40 of them 25 days old), 3 of L2, 1 unclassified; all 4096 bytes,
    started on whole seconds. Returns relative path -> (licence, started)."""
    now = float(int(time.time()))
    estate: dict[str, tuple[str, float]] = {}
    for i in range(40):
        estate[f"L1/old-{i:02}.wav"] = ("L1", now - 25 * 86400)
    for i in range(10):
        estate[f"L1/new-{i:02}.wav"] = ("L1", now - 86400)
    for i in range(3):
        estate[f"L2/b-{i}.wav"] = ("L2", now - 2 * 86400)
    estate["misc/x.wav"] = ("", now - 3 * 86400)  # "misc" is no licence id: unclassified
    for relpath, (_, started) in estate.items():
        put(base, relpath, started)
    return estate


def expected_ls(base: Path, relpath: str, licence: str, started: float) -> dict[str, Any]:
    return {
        "id": recording_id("pbx", relpath),
        "source": "pbx",
        "location": f"{base}/recordings/{relpath}",
        "licence": licence or None,
        "started": second(started),
        "deadline": second(started + RETENTION.total_seconds()) if licence else None,
        "size": 4096,
        "held": False,
        "state": "present",
    }


def check_status(base: Path, pid: int, next_deadline: float) -> dict[str, Any]:
    """`recctl status --json` and `recctl status` before anything is due; the JSON."""
    code, out, err = ctl(base, "status", "--json")
    assert (code, err) == (0, "")
    status: dict[str, Any] = json.loads(out)
    assert set(status) >= STATUS_FIELDS
    assert status | {"started": None, "sources": None, "next_deadline": None} == {
        "version": __version__, "mode": "enforce", "pid": pid, "started": None,
        "node": socket.gethostname(),  # daemon.node's default
        "recordings": 54, "bytes": 54 * 4096, "unclassified": 1, "overdue": 0,
        "next_deadline": None, "breaker": [], "clock_guard": {"paused": False, "reason": None},
        "audit_log": {"writable": True, "problem": None},
        "audit_check": {"paused": False, "problem": None}, "sources": None,
        "licences": [
            {"licence": None, "recordings": 1, "bytes": 4096, "due": 0},
            {"licence": "L1", "recordings": 50, "bytes": 50 * 4096, "due": 0},
            {"licence": "L2", "recordings": 3, "bytes": 3 * 4096, "due": 0},
        ],
    }  # fmt: skip
    assert status["next_deadline"] == second(next_deadline)
    (source,) = status["sources"]
    assert (source["name"], source["type"], source["watch"], source["scanning"]) == (
        "pbx", "directory", "inotify", False,
    )  # fmt: skip
    sources = table(
        ("SOURCE", "TYPE", "WATCH", "SCAN", "LAST SCAN", "TOOK"),
        [("pbx", "directory", "inotify", "idle", second(source["last_scan"]),
          f"{source['scan_seconds']:.1f} s")],
    )  # fmt: skip
    licences = table(
        ("LICENCE", "RECORDINGS", "SIZE", "DUE"),
        [("(unclassified)", "1", "4.1 kB", "0"), ("L1", "50", "205 kB", "0"),
         ("L2", "3", "12.3 kB", "0")],
    )  # fmt: skip
    summary = (
        f"version:        {__version__} (pid {pid}, up since {second(status['started'])})\n"
        f"node:           {socket.gethostname()}\n"
        "mode:           enforce\n"
        "recordings:     54 (221 kB)\n"
        "unclassified:   1\n"
        "overdue:        0\n"
        f"next deadline:  {second(next_deadline)}\n"
        "clock guard:    ok\n"
        "breakers:       none\n"
    )
    assert ctl(base, "status") == (0, f"{summary}\n{sources}\n{licences}", "")
    return status


def check_listing(base: Path, estate: dict[str, tuple[str, float]]) -> None:
    """`recctl ls --json`, `recctl ls --limit 3`, `recctl show` (and --json), show's exit 3."""
    code, out, err = ctl(base, "ls", "--json")
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert all(set(item) >= LS_FIELDS for item in listed)
    want = [expected_ls(base, relpath, *facts) for relpath, facts in estate.items()]
    # Soonest deadline first (ties by id), then the recordings without one.
    want.sort(key=lambda r: (r["deadline"] is None, r["deadline"] or "", r["id"]))
    assert [{k: item[k] for k in LS_FIELDS} for item in listed] == want
    rows = [
        (r["id"], r["licence"], r["started"], r["deadline"], "4.1 kB", "present", r["location"])
        for r in want[:3]
    ]
    assert ctl(base, "ls", "--limit", "3") == (
        0,
        table(RECORDING_HEADERS, rows),
        "recctl: showing the first 3 recordings; use --limit to see more\n",
    )
    first = want[0]
    code, out, err = ctl(base, "show", first["id"], "--json")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["fields"]["licence"] == {"value": "L1", "from": "pattern"}
    assert shown["fields"]["started"] == {"value": first["started"], "from": "mtime"}
    assert shown["retention"] == {
        "period": "30d", "rule": f"retention in {base}/licences.d/l1.toml",
        "deadline": first["deadline"],
    }  # fmt: skip
    st = Path(first["location"]).stat()
    text = (
        f"id:          {first['id']}\n"
        "source:      pbx\n"
        f"location:    {first['location']}\n"
        "state:       present\n"
        "size:        4.1 kB (4096 bytes)\n"
        "licence:     L1 (from pattern)\n"
        f"started:     {first['started']} (from mtime)\n"
        "format:      wav (from pattern)\n"
        f"deadline:    {first['deadline']} (started + 30d, by retention in "
        f"{base}/licences.d/l1.toml)\n"
        "held:        no\n"
        f"first seen:  {second(shown['first_seen'])}\n"
        f"mtime:       {first['started']}\n"
        f"inode:       {st.st_ino} on device {st.st_dev}\n"
    )
    assert ctl(base, "show", first["id"]) == (0, text, "")
    assert ctl(base, "show", first["id"][:8]) == (0, text, "")  # a unique prefix will do
    unknown = "0123456789abcdef0123"
    assert unknown not in {r["id"] for r in want}
    assert ctl(base, "show", unknown) == (
        3, "", f"recctl: no recording with id {unknown} (see `recctl ls`)\n"
    )  # fmt: skip


def check_policy_and_scan(base: Path) -> None:
    config = base / "recd.toml"
    policy = table(
        ("LICENCE", "NAME", "RETENTION", "RULE", "RECORDINGS", "BREAKER"),
        [
            ("L1", "One", "30d", f"retention in {base}/licences.d/l1.toml", "50", "-"),
            ("L2", "-", "30d", f"retention.default in {config} (licence not in licences.d)",
             "3", "-"),
            ("(unclassified)", "-", "keep", f"retention.unclassified = keep in {config}",
             "1", "-"),
        ],
    )  # fmt: skip
    assert ctl(base, "policy") == (0, policy, "")
    code, out, err = ctl(base, "scan")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"pbx: 54 files, 0 new, 0 changed, 0 missing, \d+\.\d s\n", out), out
    assert ctl(base, "breaker", "ls") == (0, "LICENCE  TRIPPED  DUE  TOTAL  RELEASED  BY\n", "")


def test_a_recctl_session_against_the_daemon(tmp_path: Path, listener: NotifyListener) -> None:
    """status, ls, show, policy, scan, breaker ls/release and audit verify, word for word; a
    reload that shortens retention trips the breaker, and only the release erases."""
    write_estate(tmp_path, listen=f"127.0.0.1:{free_port()}", min_breaker_count=10)
    estate = session_estate(tmp_path)
    old = {recording_id("pbx", r) for r in estate if r.startswith("L1/old-")}
    user = pwd.getpwuid(os.getuid()).pw_name  # the peer credentials' user: root here
    with running(tmp_path, listener) as proc:
        wait_status(listener, "next deadline")
        first = min(started for _, started in estate.values()) + RETENTION.total_seconds()
        check_status(tmp_path, proc.pid, first)
        check_listing(tmp_path, estate)
        check_policy_and_scan(tmp_path)

        # 20 days instead of 30: the 40 old recordings fall due at once; the breaker trips.
        write_licence(tmp_path, "20d")
        proc.send_signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1")
        listener.wait_for("READY=1")
        wait_until("breaker.tripped", lambda: audited(tmp_path, "breaker.tripped"))
        (tripped,) = audited(tmp_path, "breaker.tripped")
        assert (tripped["actor"], tripped["subject"], tripped["details"]) == (
            "recd", "L1",
            {"due": 40, "recordings": 50, "max_due_fraction": 0.25, "min_breaker_count": 10},
        )  # fmt: skip
        code, out, err = ctl(tmp_path, "breaker", "ls", "--json")
        (breaker,) = json.loads(out)
        assert breaker == {
            "licence": "L1", "tripped_at": breaker["tripped_at"], "due": 40, "total": 50,
            "released_at": None, "released_by": None,
        }  # fmt: skip
        assert ctl(tmp_path, "breaker", "ls") == (
            0,
            table(
                ("LICENCE", "TRIPPED", "DUE", "TOTAL", "RELEASED", "BY"),
                [("L1", second(breaker["tripped_at"]), "40", "50", "-", "-")],
            ),
            "",
        )
        code, out, err = ctl(tmp_path, "status")
        assert "breakers:       tripped for L1 (see `recctl breaker ls`)" in out.splitlines()
        assert all((tmp_path / "recordings" / r).exists() for r in estate)
        assert not audited(tmp_path, "erase.intent")

        assert ctl(tmp_path, "breaker", "release", "--licence", "L1") == (
            0, "breaker for L1 released: the next sweep erases its 40 due recordings\n", ""
        )  # fmt: skip
        wait_until(
            "the 40 recordings erased",
            lambda: not any((tmp_path / "recordings" / r).exists() for r in estate if "old" in r),
        )
        assert ctl(tmp_path, "breaker", "release", "--licence", "L1") == (
            3, "", "recctl: no tripped mass-deletion breaker for licence L1\n"
        )  # fmt: skip
        code, out, err = ctl(tmp_path, "ls", "--state", "erased", "--json")
        assert (code, err) == (0, "")
        assert {r["id"]: r["state"] for r in json.loads(out)} == dict.fromkeys(old, "erased")
        stop_daemon(proc, listener)
    (released,) = audited(tmp_path, "breaker.released")
    assert (released["actor"], released["subject"], released["details"]) == (
        user, "L1", {"due": 40, "recordings": 50}
    )  # fmt: skip
    done = audited(tmp_path, "erase.done")
    assert {e["subject"] for e in done} == old and len(done) == 40
    assert all(e["seq"] > released["seq"] for e in audited(tmp_path, "erase.intent"))
    assert all(
        (e["details"]["reason"], e["details"]["licence"], e["details"]["method"])
        == ("retention", "L1", "overwrite")
        for e in done
    )
    assert check_consistent(tmp_path, set(estate)) == (40, 14)
    log = tmp_path / "state" / "audit.log"
    entries = audit_entries(tmp_path)
    assert ctl(tmp_path, "audit", "verify", "--file", str(log)) == (
        0, f"{log}: {len(entries)} entries, chain intact, last hash {entries[-1]['hash']}\n", ""
    )  # fmt: skip


# --- (d) metrics, (e) reloads that change them ----------------------------------------------------


def metrics_estate(base: Path, per_licence: bool = True) -> tuple[int, set[str], float]:
    """5 recordings of L1 due a second or two after the start, 20 kept, 3 of L2, 1 unclassified.

    Returns the metrics port, the ids of those due, and the deadline of the first one kept."""
    port = free_port()
    write_estate(base, listen=f"127.0.0.1:{port}", per_licence=per_licence)
    soon = time.time() + 1.0
    due = set()
    for i in range(5):
        write_due_at(base, f"L1/soon-{i}.wav", soon + 0.2 * i)
        due.add(recording_id("pbx", f"L1/soon-{i}.wav"))
    started = float(int(time.time()) - 86400)
    for i in range(20):
        put(base, f"L1/keep-{i:02}.wav", started)
    for i in range(3):
        put(base, f"L2/keep-{i}.wav", started)
    put(base, "misc/x.wav", started)
    return port, due, started + RETENTION.total_seconds()


def erased(base: Path, ids: set[str]) -> bool:
    return {e["subject"] for e in audited(base, "erase.done")} >= ids


def test_metrics_of_a_live_daemon(tmp_path: Path, listener: NotifyListener) -> None:
    """Every SPEC section 9 family, the counts after erasures at their deadlines and one
    recording indexed from its inotify event, and a scrape promtool accepts."""
    port, due, kept_deadline = metrics_estate(tmp_path)
    with running(tmp_path, listener) as proc:
        started = time.time()
        wait_status(listener, "next deadline")
        # A recording moved in while the daemon runs is indexed from its inotify event.
        staged = tmp_path / "staged.wav"
        staged.write_bytes(os.urandom(4096))
        os.utime(staged, (kept_deadline - RETENTION.total_seconds(),) * 2)
        staged.rename(tmp_path / "recordings" / "L2" / "live.wav")
        live = recording_id("pbx", "L2/live.wav")
        wait_until("L2/live.wav indexed", lambda: catalogued(tmp_path, {live}) == 1)
        wait_until("the 5 due recordings erased", lambda: erased(tmp_path, due))
        # The catalogue says erased when the batch commits; the counters move just after it.
        wait_until(
            "the 5 erasures counted",
            lambda: (
                value(
                    samples(scrape(port)[1]),
                    "recd_deletions_total",
                    reason="retention",
                    result="done",
                )
                == 5
            ),
        )
        code, text = scrape(port)
        scraped_at = time.time()
        stop_daemon(proc, listener)
    assert code == 200
    assert set(FAMILIES) <= types(text), sorted(set(FAMILIES) - types(text))
    got = samples(text)
    deletions = {labels: n for (name, labels), n in got.items() if name == "recd_deletions_total"}
    assert deletions == {
        (("reason", reason), ("result", result)): 5.0 if (reason, result) == ("retention", "done")
        else 0.0
        for reason in ("retention", "request")
        for result in ("done", "failed", "skipped", "dry-run")
    }  # fmt: skip
    assert value(got, "recd_deletion_lag_seconds_count") == 5
    assert value(got, "recd_deletion_lag_seconds_bucket", le="5.0") == 5  # within seconds
    assert value(got, "recd_erased_bytes_total") == 5 * 4096
    assert value(got, "recd_overdue_recordings") == 0
    assert value(got, "recd_indexing_lag_seconds_count") == 1
    assert value(got, "recd_indexing_lag_seconds_bucket", le="1.0") == 1  # within a second
    per_licence = {
        (name, dict(labels)["licence"]): n
        for (name, labels), n in got.items()
        if name in ("recd_recordings", "recd_recording_bytes", "recd_breaker_tripped")
    }
    assert per_licence == {
        ("recd_recordings", "L1"): 20, ("recd_recordings", "L2"): 4,
        ("recd_recording_bytes", "L1"): 20 * 4096, ("recd_recording_bytes", "L2"): 4 * 4096,
        ("recd_breaker_tripped", "L1"): 0, ("recd_breaker_tripped", "L2"): 0,
        ("recd_breaker_tripped", "(unclassified)"): 0,
    }  # fmt: skip
    assert value(got, "recd_unclassified_recordings") == 1
    assert value(got, "recd_held_recordings") == 0
    assert value(got, "recd_holds_active") == 0
    assert value(got, "recd_clock_guard_paused") == 0
    assert value(got, "recd_watch_overflows_total", source="pbx") == 0
    assert value(got, "recd_next_deadline_timestamp_seconds") == pytest.approx(kept_deadline)
    assert started <= value(got, "recd_source_last_scan_timestamp_seconds", source="pbx")
    assert value(got, "recd_source_last_scan_timestamp_seconds", source="pbx") <= scraped_at
    assert value(got, "recd_source_last_scan_duration_seconds", source="pbx") >= 0
    assert value(got, "recd_build_info", version=__version__) == 1
    promtool_check(text)


def licence_labelled(scraped: Samples) -> list[str]:
    return sorted({name for name, labels in scraped if "licence" in dict(labels)})


def test_a_reload_that_turns_per_licence_off_keeps_serving_without_the_label(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """SIGHUP with ``per_licence = false``: the same port answers, with no licence label."""
    port, due, _ = metrics_estate(tmp_path)
    with running(tmp_path, listener) as proc:
        wait_until("the 5 due recordings erased", lambda: erased(tmp_path, due))
        code, text = scrape(port)
        assert code == 200
        assert licence_labelled(samples(text)) == [
            "recd_breaker_tripped", "recd_recording_bytes", "recd_recordings"
        ]  # fmt: skip
        config = tmp_path / "recd.toml"
        config.write_text(config.read_text().replace("per_licence = true", "per_licence = false"))
        proc.send_signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1")
        listener.wait_for("READY=1")
        code, text = scrape(port)
        assert proc.poll() is None
        stop_daemon(proc, listener)
    assert code == 200
    got = samples(text)
    assert licence_labelled(got) == []
    assert value(got, "recd_recordings") == 23  # every classified licence: 20 of L1, 3 of L2
    assert value(got, "recd_recording_bytes") == 23 * 4096
    assert value(got, "recd_unclassified_recordings") == 1
    assert value(got, "recd_breakers_tripped") == 0
    assert set(FAMILIES) - {"recd_breaker_tripped"} <= types(text)
    promtool_check(text)


def test_a_reload_that_changes_metrics_settings_loses_no_count_and_no_scrape(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """Scrapes go on through a reload that changes [metrics], and no counter restarts (the
    endpoint used to be closed and the registry rebuilt)."""
    port, due, _ = metrics_estate(tmp_path)
    with running(tmp_path, listener) as proc:
        wait_until("the 5 due recordings erased", lambda: erased(tmp_path, due))
        before = samples(scrape(port)[1])
        with scraping(port) as failures:
            config = tmp_path / "recd.toml"
            config.write_text(
                config.read_text().replace("per_licence = true", "per_licence = false")
            )
            proc.send_signal(signal.SIGHUP)
            listener.wait_for("RELOADING=1")
            listener.wait_for("READY=1")
            time.sleep(0.5)
        after = samples(scrape(port)[1])
        stop_daemon(proc, listener)
    for name, labels in (
        ("recd_deletions_total", {"reason": "retention", "result": "done"}),
        ("recd_erased_bytes_total", {}),
        ("recd_deletion_lag_seconds_count", {}),
    ):
        assert (
            value(after, name, **labels)
            == value(before, name, **labels)
            == (5 * 4096 if name == "recd_erased_bytes_total" else 5)
        ), name
    assert failures == []


# --- the breaker's advice -------------------------------------------------------------------------


def test_the_command_the_breaker_log_line_names_works_with_the_daemon_running(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """The breaker's log line names a command; run as it says, it releases the breaker (it used
    to name `recd release-breaker`, which cannot open the daemon's locked audit log)."""
    config = write_estate(tmp_path, listen="127.0.0.1:0", min_breaker_count=10)
    for i in range(20):
        put(tmp_path, f"L1/old-{i:02}.wav", time.time() - 40 * 86400)
    with running(tmp_path, listener) as proc:
        wait_until("breaker.tripped", lambda: audited(tmp_path, "breaker.tripped"))
        line = next(
            x for x in (tmp_path / "recd.log").read_text().splitlines() if "breaker tripped" in x
        )
        assert line.endswith(
            "ERROR recd.service.sweep: mass-deletion breaker tripped for L1: 20 of its 20 "
            "recordings are due at once (limit 25%, at least 10); none of them will be erased "
            f"until `{line.rpartition('`')[0].rpartition('`')[2]}`"
        )
        advice = shlex.split(line.rpartition("`")[0].rpartition("`")[2])
        if advice[0] == "recctl":
            done = recctl("--socket", str(tmp_path / "recd.sock"), *advice[1:])
        else:
            done = subprocess.run(
                [sys.executable, "-m", "recd", *advice[1:], "--config", str(config)],
                capture_output=True, text=True, env=env(), check=False, timeout=60,
            )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, "")
        wait_until("the 20 recordings erased", lambda: len(audited(tmp_path, "erase.done")) == 20)
        stop_daemon(proc, listener)


# --- signals while other threads are busy ---------------------------------------------------------


def test_signals_are_acted_on_at_once_while_other_threads_are_busy(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """Forty SIGHUPs and a SIGTERM while three clients scrape without a pause: each is acted on
    within seconds. (A signal the kernel gave to a scrape's thread used to wait for the loop's
    next wake-up, up to an hour: CPython runs handlers in the main thread only.)"""
    port = free_port()
    write_estate(tmp_path, listen=f"127.0.0.1:{port}")
    with running(tmp_path, listener) as proc, scraping(port, threads=3) as failures:
        for n in range(1, 41):
            time.sleep(0.05 * (1 + n % 4))
            proc.send_signal(signal.SIGHUP)
            try:
                listener.wait_for("RELOADING=1", timeout=5)
            except AssertionError:
                raise AssertionError(f"SIGHUP {n} not acted on within 5 s") from None
            listener.wait_for("READY=1", timeout=30)
        assert failures == []  # the endpoint served throughout
        proc.send_signal(signal.SIGTERM)
        try:
            listener.wait_for("STOPPING=1", timeout=5)
        except AssertionError:
            raise AssertionError("SIGTERM not acted on within 5 s") from None
        assert proc.wait(timeout=30) == 0
