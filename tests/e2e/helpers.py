"""Run `recd` and `recctl` as real subprocesses on an estate written to disk, and check what
they leave behind: the audit chain, the catalogue and the files agree."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recd.core.audit import verify
from recd.core.model import recording_id
from tests.fakes import NotifyListener
from tests.intentshape import per_recording

Completed = subprocess.CompletedProcess[str]

CONFIG = """\
[daemon]
state_dir = "{base}/state"
socket = "{base}/recd.sock"

[erase]
settle = "0s"
verify = {verify}

[safety]
min_breaker_count = {min_breaker_count}

[[source]]
name = "pbx"
type = "directory"
path = "{base}/recordings"
pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'
"""

METRICS = """
[metrics]
listen = "{listen}"
per_licence = {per_licence}
"""

RETENTION = timedelta(days=30)  # L1's retention and the default one
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TEMP_PREFIX = ".recd-erase-"  # the name an erase renames a file to before unlinking it


def write_estate(
    base: Path,
    *,
    verify: bool = False,
    listen: str | None = "127.0.0.1:0",
    per_licence: bool = True,
    min_breaker_count: int = 100_000,
) -> Path:
    """Config + licence files below ``base``; returns the config path.

    ``listen``: the ``[metrics]`` table's address; by default any free port, so that a daemon
    under test never takes recd's default port from a recd running beside the tests (found:
    two attack tests failed beside `make demo`). None leaves the table out.
    """
    (base / "recordings").mkdir(parents=True, exist_ok=True)
    (base / "licences.d").mkdir(exist_ok=True)
    write_licence(base, "30d")
    config = base / "recd.toml"
    text = CONFIG.format(base=base, verify=str(verify).lower(), min_breaker_count=min_breaker_count)
    if listen is not None:
        text += METRICS.format(listen=listen, per_licence=str(per_licence).lower())
    config.write_text(text)
    return config


def on_shared_catalogue(config: Path, url: str, node: str = "pbx-a") -> None:
    """``write_estate``'s ``config`` on the shared catalogue ``url`` as the host ``node``, its
    directory source this node's own (``nodes``, which a shared catalogue requires)."""
    text = config.read_text()
    text = text.replace("[daemon]\n", f'[daemon]\nnode = "{node}"\n', 1)
    text = text.replace('name = "pbx"\n', f'name = "pbx"\nnodes = ["{node}"]\n', 1)
    config.write_text(text + f'\n[catalogue]\nurl = "{url}"\n')


def write_licence(base: Path, retention: str) -> Path:
    """(Re)write licence L1's file with ``retention``."""
    path = base / "licences.d" / "l1.toml"
    path.write_text(f'id = "L1"\nname = "One"\nretention = "{retention}"\n')
    return path


def write_recording(base: Path, relpath: str, age_days: float, size: int = 4096) -> Path:
    path = base / "recordings" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    stamp = (datetime.now(UTC) - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def backdate(path: Path, days: float) -> None:
    """Set a catalogued recording's start (its mtime) ``days`` back (30 make it due), as a
    new recording would come: with its directory changed too. A file whose times alone change
    leaves its directory's stamp valid, and a rescan trusts that for a day
    (``recd.service.indexing.STAMP_TRUST``): the next ``recd --once`` would not see it."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))
    os.utime(path.parent)


def write_due_at(base: Path, relpath: str, deadline: float, size: int = 4096) -> datetime:
    """A recording whose 30-day deadline is the Unix time ``deadline`` (to the microsecond,
    from its mtime); returns that deadline."""
    path = base / "recordings" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    started_us = round((deadline - RETENTION.total_seconds()) * 1_000_000)
    os.utime(path, ns=(started_us * 1000, started_us * 1000))
    assert path.stat().st_mtime_ns == started_us * 1000, "the file system rounds mtimes"
    return EPOCH + timedelta(microseconds=started_us) + RETENTION


def env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RECD_")}
    keep.pop("NOTIFY_SOCKET", None)
    return keep


def recd(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd", *args],
        capture_output=True, text=True, env=env(), check=check, timeout=120,
    )  # fmt: skip


def recctl(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from recd.cli.main import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False, capture_output=True, text=True, env=env(), timeout=120,
    )  # fmt: skip


# --- the daemon as a process ---------------------------------------------------------------------


def start_daemon(config: Path, listener: NotifyListener, log: Path) -> subprocess.Popen[bytes]:
    """``recd --config CONFIG`` in the foreground, notifying ``listener``; stderr to ``log``."""
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "recd", "--config", str(config)],
            env={**env(), "NOTIFY_SOCKET": listener.path},
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def stop_daemon(proc: subprocess.Popen[bytes], listener: NotifyListener) -> None:
    """SIGTERM: ``STOPPING=1``, then exit status 0."""
    proc.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING=1", timeout=30)
    assert proc.wait(timeout=30) == 0


def kill_daemon(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap (no-op for a process that is gone already)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def drain(listener: NotifyListener) -> list[str]:
    """The messages already queued on ``listener`` (after its sender died or stopped)."""
    got: list[str] = []
    while (message := listener.receive(0.001)) is not None:
        got.append(message)
    return got


def scrape(port: int) -> tuple[int, str]:
    """HTTP status and body of ``/metrics`` on 127.0.0.1:``port``."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return int(reply.status), reply.read().decode()


def wait_until(what: str, done: Any, timeout: float = 30.0, every: float = 0.02) -> None:
    """Poll ``done()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)


# --- what a run leaves behind --------------------------------------------------------------------


def audit_entries(base: Path) -> list[dict[str, Any]]:
    """Every complete entry of the audit log, in order."""
    log = (base / "state" / "audit.log").read_bytes()
    return [json.loads(line) for line in log.splitlines(keepends=True) if line.endswith(b"\n")]


def check_consistent(base: Path, written: Collection[str]) -> tuple[int, int]:
    """Assert the invariants after a run that ended (or was recovered); (erased, present).

    The audit chain verifies; every ``erase.done`` follows its own ``erase.intent``; no
    recording has two; every recording gone from disk has exactly one and is ``erased`` in the
    catalogue, every one on disk has none and is not; no intent is pending; and nothing else is
    on disk (no erase temp file was left behind).
    """
    log = (base / "state" / "audit.log").read_bytes()
    result = verify(log.splitlines(keepends=True))
    assert result.ok, result
    entries = per_recording(json.loads(line) for line in log.splitlines())
    done: Counter[str] = Counter()
    intents: dict[str, str] = {}  # intent id -> recording id, as the log reached them
    for e in entries:
        if e["action"] == "erase.intent":
            intents[e["details"]["intent"]] = e["subject"]
        elif e["action"] == "erase.done":
            done[e["subject"]] += 1
            assert intents.get(e["details"]["intent"]) == e["subject"], (
                f"erase.done of {e['subject']} (seq {e['seq']}) without an earlier intent"
            )
    assert all(n == 1 for n in done.values()), f"erased twice: {done.most_common(3)}"
    db = sqlite3.connect(base / "state" / "catalog.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM intents").fetchone() == (0,)
        state = dict(db.execute("SELECT id, state FROM recordings"))
    finally:
        db.close()
    erased = present = 0
    for relpath in written:
        rid = recording_id("pbx", relpath)
        if (base / "recordings" / relpath).exists():
            present += 1
            assert rid not in done, f"{relpath} audited as erased but still on disk"
            assert state.get(rid) != "erased"
        else:
            erased += 1
            assert done[rid] == 1, f"{relpath} gone without an erase.done"
            assert state[rid] == "erased"
    on_disk = {
        str(p.relative_to(base / "recordings"))
        for p in (base / "recordings").rglob("*")
        if not p.is_dir()
    }
    strays = sorted(on_disk - set(written))
    assert not strays, f"files nobody wrote are on disk (erase temp files?): {strays[:5]}"
    return erased, present


def check_deadlines(base: Path, deadlines: Mapping[str, datetime]) -> int:
    """No erase began, or was done, before the recording's deadline; returns the erasures.

    ``deadlines`` maps recording ids to the deadlines the test computed from the mtimes it set;
    each ``erase.intent`` must also carry that deadline, and only those recordings may be erased.
    """
    erased = 0
    for e in per_recording(audit_entries(base)):
        if e["action"] not in ("erase.intent", "erase.done"):
            continue
        rid, when = e["subject"], datetime.fromisoformat(e["time"])
        assert rid in deadlines, f"seq {e['seq']}: {e['action']} of {rid}, which nobody wrote"
        deadline = deadlines[rid]
        assert when >= deadline, (
            f"seq {e['seq']}: {e['action']} of {e['details']['location']} at {e['time']}, "
            f"{(deadline - when).total_seconds():.6f} s before its deadline {deadline.isoformat()}"
        )
        assert datetime.fromisoformat(e["details"]["deadline"]) == deadline, e
        erased += e["action"] == "erase.done"
    return erased


def _read_only(base: Path) -> sqlite3.Connection | None:
    try:
        return sqlite3.connect(f"file:{base / 'state' / 'catalog.db'}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return None  # killed before the catalogue was created


def pending_intents(base: Path) -> int:
    """Intents left by a killed run (0 if it died before creating the catalogue)."""
    db = _read_only(base)
    if db is None:
        return 0
    try:
        return int(db.execute("SELECT COUNT(*) FROM intents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # killed before the schema was committed
    finally:
        db.close()


def catalogued(base: Path, ids: Collection[str]) -> int:
    """How many of the recording ``ids`` the catalogue holds (0 if it has no schema yet)."""
    db = _read_only(base)
    if db is None:
        return 0
    try:
        known = {row[0] for row in db.execute("SELECT id FROM recordings")}
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
    return len(known & set(ids))


def wait_swept(listener: NotifyListener, since: int = 0, timeout: float = 60.0) -> None:
    """Receive until a ``STATUS=next deadline`` (the end of a sweep) among the messages from
    index ``since`` on."""
    give_up = time.monotonic() + timeout
    while not any(
        line.startswith("STATUS=next deadline")
        for message in listener.messages[since:]
        for line in message.splitlines()
    ):
        assert time.monotonic() < give_up, f"no sweep within {timeout} s: {listener.messages}"
        listener.receive(max(0.01, give_up - time.monotonic()))


def write_estate_with_grace(base: Path, release_grace: str = "7d") -> Path:
    """``write_estate`` with an ephemeral metrics port and ``holds.release_grace``."""
    config = write_estate(base, listen="127.0.0.1:0")
    with config.open("a") as f:
        f.write(f'\n[holds]\nrelease_grace = "{release_grace}"\n')
    return config


@contextmanager
def running(config: Path, base: Path, listener: NotifyListener) -> Iterator[Path]:
    """The daemon, READY and done with its first sweep; yields its socket; stopped after
    (SIGKILLed if the test failed first)."""
    mark = len(listener.messages)
    proc = start_daemon(config, listener, base / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        wait_swept(listener, since=mark)
        yield base / "recd.sock"
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)


def ctl(sock: Path, *args: str) -> Completed:
    """``recctl --socket SOCK ARGS``, which must succeed."""
    done = recctl("--socket", str(sock), *args)
    assert done.returncode == 0, done.stderr
    return done


def place(sock: Path, *scope: str) -> str:
    """Place a hold on L1 (case CASE-1) limited by ``scope`` options; its id."""
    placed = ctl(sock, "hold", "place", "--licence", "L1", "--case", "CASE-1",
                 "--reason", "court order", *scope)  # fmt: skip
    hold = placed.stdout.strip()
    assert hold.startswith("H-"), placed.stdout
    return hold


def age(base: Path, relpath: str, days: float) -> None:
    """Set a recording's start (its mtime) ``days`` back: 30 days make it due."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(base / "recordings" / relpath, (stamp, stamp))


def rid(relpath: str) -> str:
    """The recording id of ``relpath`` in the estate's one source, pbx."""
    return recording_id("pbx", relpath)


def held_and_due(base: Path, listener: NotifyListener) -> tuple[Path, str]:
    """An estate with L1/held.wav held (placed through a real daemon while not yet due) and
    L1/other.wav, both then made due; the config and the hold's id."""
    config = write_estate_with_grace(base)
    write_recording(base, "L1/held.wav", age_days=5)
    write_recording(base, "L1/other.wav", age_days=5)
    with running(config, base, listener) as sock:
        hold = place(sock, "--recording", rid("L1/held.wav"))
    age(base, "L1/held.wav", 40)
    age(base, "L1/other.wav", 40)
    return config, hold


def rebuilt(base: Path) -> list[dict[str, Any]]:
    """The details of every catalogue.rebuilt entry in the audit log, oldest first."""
    return [e["details"] for e in audit_entries(base) if e["action"] == "catalogue.rebuilt"]
