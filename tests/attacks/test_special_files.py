"""Attack: special files named like recordings.

A local user who can write to the recording tree creates a FIFO (also one a level deeper), a
Unix socket, a directory, a character device and a block device (root: ``mknod`` with the
numbers of ``/dev/null`` and of a loop device) named ``*.wav``, among due recordings and in place
of an indexed one. A FIFO opened for reading blocks until a writer comes; a device opened for
writing reaches whatever it stands for.

What must hold: recd never opens any of them (inotify sees no ``IN_OPEN`` on them; an ``O_PATH``
look-up is not an open); ``recd --once`` and the daemon finish on time (a FIFO blocks neither the
scan nor the erase); the recordings around them are erased; the special files are left as they
were; and nothing logs a traceback.
"""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import struct
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    audit_entries,
    kill_daemon,
    recd,
    start_daemon,
    stop_daemon,
    wait_until,
    write_due_at,
    write_estate,
    write_recording,
)
from tests.fakes import NotifyListener

IN_OPEN = 0x20
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


class OpenWatch:
    """Which of some paths were opened (inotify ``IN_OPEN``) since the watch began."""

    def __init__(self, paths: list[Path]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self._paths: dict[int, Path] = {}
        for path in paths:
            wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN)
            assert wd >= 0, f"{path}: {os.strerror(ctypes.get_errno())}"
            self._paths[wd] = path

    def opened(self) -> list[Path]:
        found: list[Path] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                if mask & IN_OPEN and wd in self._paths:
                    found.append(self._paths[wd])

    def close(self) -> None:
        os.close(self.fd)


def make_special(directory: Path, name: str, kind: str) -> Path:
    """A special file of ``kind`` at ``directory/name`` (devices need root)."""
    path = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        cwd = os.getcwd()
        os.chdir(directory)  # socket paths are limited to 108 bytes
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(name)
        finally:
            os.chdir(cwd)
    elif kind == "chr":
        os.mknod(path, stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
    else:
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 250))  # a loop device's numbers
    return path


def file_types(paths: list[Path]) -> list[int]:
    return [stat.S_IFMT(p.lstat().st_mode) for p in paths]


KINDS = ["fifo", "socket", "chr", "blk"]


def test_special_files_in_the_tree_are_never_opened_and_do_not_stop_once(
    tmp_path: Path,
) -> None:
    unprivileged = os.geteuid() != 0
    kinds = ["fifo", "socket"] if unprivileged else KINDS
    config = write_estate(tmp_path)
    due = [write_recording(tmp_path, f"L1/{n}.wav", age_days=31) for n in ("a", "z")]
    kept = write_recording(tmp_path, "L1/new.wav", age_days=1)
    specials = [make_special(tmp_path / "recordings" / "L1", f"{k}.wav", k) for k in kinds]
    specials.append(make_special(tmp_path / "recordings" / "L1" / "deep", "in.wav", "fifo"))
    (tmp_path / "recordings" / "L1" / "dir.wav").mkdir()  # a directory named like a recording
    for special in specials:
        os.utime(special, (0, 0), follow_symlinks=False)  # due by any measure
    before = file_types(specials)
    watch = OpenWatch(specials)
    try:
        started = time.monotonic()
        result = recd("--once", "--config", str(config))
        took = time.monotonic() - started
        opened = watch.opened()
    finally:
        watch.close()
    assert (result.returncode, result.stdout) == (0, "L1: 3 recordings, 2 due, 2 erased\n")
    assert "Traceback" not in result.stderr
    assert took < 30
    assert opened == []
    assert not any(p.exists() for p in due) and kept.exists()
    assert file_types(specials) == before
    subjects = {e["details"].get("location") for e in audit_entries(tmp_path)}
    assert not subjects & {str(p) for p in specials}


@pytest.mark.root
def test_indexed_recordings_replaced_by_special_files_are_not_opened_by_the_daemon(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """The daemon indexed regular files; before their deadline each becomes a special file
    (replaced in place), while the recordings around them fall due at the same moment."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    deadline = time.time() + 3.0
    l1 = tmp_path / "recordings" / "L1"
    victims = [l1 / f"{kind}.wav" for kind in KINDS]
    others = [l1 / f"{n}.wav" for n in ("a", "b")]
    for path in victims + others:
        write_due_at(tmp_path, f"L1/{path.name}", deadline)
    log = tmp_path / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1", timeout=30)
        wait_until("the first scan", lambda: "scan pbx: 6 files, 6 new" in log.read_text())
        for kind, victim in zip(KINDS, victims, strict=True):
            victim.unlink()
            make_special(l1, victim.name, kind)
        before = file_types(victims)
        watch = OpenWatch(victims)
        try:
            wait_until("the others erased", lambda: not any(p.exists() for p in others), 15)
            erased_at = time.time()
            time.sleep(1.0)  # a retry would come now
            opened = watch.opened()
        finally:
            watch.close()
        assert erased_at < deadline + 3.0
        assert opened == []
        assert file_types(victims) == before
        assert proc.poll() is None
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    stderr = log.read_text()
    assert "Traceback" not in stderr, stderr
    done = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    assert sorted(e["details"]["location"] for e in done) == sorted(map(str, others))
