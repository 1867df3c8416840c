"""Hostile file names (issue 13, 1): none may stop indexing, sweeping or the daemon.

A name that is not UTF-8 is catalogued losslessly (its bytes), erased on time through the very
bytes it has, and audited as an escaped ``location`` plus the exact ``location_bytes`` (hex);
``recctl`` shows it escaped. Real files, ``recd --once`` and a real daemon.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.helpers import (
    audit_entries,
    recctl,
    recd,
    start_daemon,
    stop_daemon,
    wait_until,
    write_estate,
)
from tests.fakes import NotifyListener

#: Names below a licence directory (so classified and due), as bytes; each must be erased.
DUE = [
    b"bad\xff\nname\x1b[31m.wav",  # invalid UTF-8, a newline, an escape sequence
    b"\x80lone-continuation.wav",
    b"\xc3truncated-sequence.wav",
    b"overlong-\xc0\xaf.wav",  # '/' encoded in two bytes
    b"overlong-\xe0\x80\xae\xe0\x80\xae.wav",  # '..' in three bytes each
    b"surrogate-\xed\xa0\x80.wav",  # U+D800 encoded: not UTF-8
    b"ctl-\r\t\x07\x7f\x1b]0;pwned\x07.wav",
    "bidi-\u202evaw.exe.wav".encode(),  # U+202E: valid UTF-8, shown reversed by terminals
    b"x" * 251 + b".wav",  # 255 bytes, the most a name may have
    b"\xfe" * 251 + b".wav",  # 255 bytes, none of them UTF-8
    b"...wav",
    b"..\xe2\x80\x8b.wav",  # '..' and a zero-width space
    "\u2024\u2024.wav".encode(),  # two one-dot leaders: looks like '..'
    b"-rf .wav",
    b" .wav",
]
#: Names a source never indexes (what an erase renames a file to), hostile or not.
TEMP_LOOKALIKES = [b".recd-erase-feedfacecafebeef", b".recd-erase-\xff\n.wav"]


def is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def write(path: bytes, mtime: float) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(4096))
    os.utime(path, (mtime, mtime))


def deep_path(base: Path) -> bytes:
    """A file 60 directories down, every directory named with a byte that is not UTF-8."""
    directory = os.fsencode(base / "recordings") + b"/L1" + b"/d\xff" * 60
    os.makedirs(directory)
    return directory + b"/deep\xfe.wav"


def hostile_estate(base: Path) -> tuple[Path, list[bytes], list[bytes]]:
    """A due recording of each hostile name, plus files recd must leave alone (temp-name
    lookalikes, a deep unclassified one); returns the config, the due and the kept paths."""
    config = write_estate(base)
    l1 = os.fsencode(base / "recordings" / "L1")
    os.makedirs(l1)
    old = (datetime.now(UTC) - timedelta(days=31)).timestamp()
    due = [l1 + b"/" + name for name in DUE]
    kept = [l1 + b"/" + name for name in TEMP_LOOKALIKES] + [deep_path(base)]
    for path in due + kept:
        write(path, old)
    return config, due, kept


def check_erased_and_audited(base: Path, due: list[bytes], kept: list[bytes]) -> None:
    assert [p for p in due if os.path.lexists(p)] == []
    assert [p for p in kept if not os.path.lexists(p)] == []
    verified = recctl("audit", "verify", "--file", str(base / "state" / "audit.log"))
    assert verified.returncode == 0, verified.stderr
    done = [e["details"] for e in audit_entries(base) if e["action"] == "erase.done"]
    recorded = {bytes.fromhex(d["location_bytes"]) if "location_bytes" in d
                else d["location"].encode() for d in done}  # fmt: skip
    assert recorded == set(due)
    for d in done:
        raw = d["location"].encode()
        assert ("location_bytes" in d) is not is_utf8(bytes.fromhex(d.get("location_bytes", "")))
        if "location_bytes" in d:  # escaped: every byte that is not UTF-8 as \xHH
            assert (
                bytes.fromhex(d["location_bytes"]).decode("utf-8", "backslashreplace")
                == (d["location"])
            )
        else:
            assert raw in due


def test_once_erases_every_hostile_name_on_time_and_audits_it_exactly(tmp_path: Path) -> None:
    config, due, kept = hostile_estate(tmp_path)
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"L1: {len(DUE)} recordings, {len(DUE)} due, {len(DUE)} erased\n" in result.stdout
    assert "Traceback" not in result.stderr
    check_erased_and_audited(tmp_path, due, kept)


def test_once_twice_over_hostile_names_that_are_kept(tmp_path: Path) -> None:
    """Names that are not due are catalogued once and found unchanged by the next scan."""
    config = write_estate(tmp_path)
    l1 = os.fsencode(tmp_path / "recordings" / "L1")
    os.makedirs(l1)
    young = [l1 + b"/" + name for name in DUE]
    for path in young:
        write(path, time.time() - 86400)
    for _ in range(2):
        result = recd("--once", "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert f"L1: {len(DUE)} recordings, 0 due, 0 erased\n" in result.stdout
    assert "0 new, 0 changed, 0 missing" in result.stderr
    assert all(os.path.exists(p) for p in young)


def test_the_daemon_keeps_running_and_erasing_through_hostile_names(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """At start (the scan) and live (the watcher): every hostile name is erased when due, a
    young one is listed escaped by ``recctl ls`` and ``show``, and the daemon stays up."""
    config, due, kept = hostile_estate(tmp_path)
    log = tmp_path / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1")
        wait_until("the due hostile names erased", lambda: not any(map(os.path.lexists, due)))
        l1 = os.fsencode(tmp_path / "recordings" / "L1")
        live_due = l1 + b"/live\xff\x1b[2J.wav"
        young = l1 + b"/young\xff\n.wav"
        write(live_due, (datetime.now(UTC) - timedelta(days=31)).timestamp())
        write(young, time.time())
        wait_until("the live hostile name erased", lambda: not os.path.lexists(live_due))
        sock = str(tmp_path / "recd.sock")
        listed = recctl("--socket", sock, "ls", "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = [r for r in json.loads(listed.stdout) if "young" in r["location"]]
        shown = recctl("--socket", sock, "ls")
        assert "young\\xff\\n.wav" in shown.stdout
        assert "\x1b" not in shown.stdout
        show = recctl("--socket", sock, "show", row["id"])
        assert show.returncode == 0, show.stderr
        assert "young\\xff\\n.wav" in show.stdout
        assert proc.poll() is None
        stop_daemon(proc, listener)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(errors="replace")
    assert os.path.exists(young)
    check_erased_and_audited(tmp_path, [*due, live_due], kept)
