"""Attack: a directory swapped for a symlink to an outside directory while recd erases.

A user who can write to the recording tree exchanges a subdirectory with a symlink to a directory
outside every source, over and over (``renameat2(RENAME_EXCHANGE)``, atomic: at every instant the
name is either the real directory or the symlink), hoping that some lookup between recd's checks
and its overwrite, rename or unlink goes through the symlink. The outside directory holds files of
the same names and sizes, so a path-based check alone would be fooled.

What must hold, both for the eraser in-process and for a ``recd --once`` run: nothing in the
outside directory is touched (every file's content, and no erase temp file left there); each
erase either happens to the indexed file or is refused/failed with a reason; the audit chain and
the catalogue agree; no traceback. The swap loop is bounded (about 2 s), not the issue's 75,000
swaps.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.local.erase import LocalEraser
from recd.core.erasure import Action, EraseSettings, decide
from recd.core.model import ErasePattern
from recd.ports.eraser import EraseError, Gone, Refused
from tests.e2e.helpers import check_consistent, env, write_estate, write_recording

AT_FDCWD = -100
RENAME_EXCHANGE = 2
FILES = 300
SWAP_FOR = 2.0  # seconds
LATER = datetime.now(UTC) + timedelta(hours=1)

_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture(autouse=True)
def renameat2() -> Iterator[None]:
    if not hasattr(_libc, "renameat2"):  # pragma: no cover (glibc < 2.28)
        pytest.skip("libc has no renameat2")
    yield


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (``renameat2`` with ``RENAME_EXCHANGE``)."""
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE):
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(a))


class Swapper:
    """A thread that exchanges ``directory`` with a symlink to ``outside`` until stopped (or
    ``SWAP_FOR`` seconds pass), and leaves the real directory in place."""

    def __init__(self, directory: Path, outside: Path) -> None:
        self.directory = directory
        self.link = directory.parent.parent / f"{directory.name}-link"  # outside the root
        self.link.symlink_to(outside)
        self.swaps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swapper")

    def _run(self) -> None:
        deadline = time.monotonic() + SWAP_FOR
        while not self._stop.is_set() and time.monotonic() < deadline:
            exchange(self.directory, self.link)
            exchange(self.directory, self.link)
            self.swaps += 2

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> Swapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        assert self.directory.is_dir() and not self.directory.is_symlink()


def outside_twins(outside: Path, real: Path) -> dict[str, str]:
    """For every file in ``real``, a file of the same name and size in ``outside``; returns
    their digests."""
    outside.mkdir()
    digests = {}
    for path in real.iterdir():
        data = os.urandom(path.stat().st_size)
        (outside / path.name).write_bytes(data)
        os.utime(outside / path.name, (0, 0))
        digests[path.name] = hashlib.sha256(data).hexdigest()
    return digests


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_in_process_eraser_never_reaches_through_the_swapped_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    sub = root / "sub"
    sub.mkdir(parents=True)
    for i in range(FILES):
        (sub / f"{i:04}.wav").write_bytes(os.urandom(4096))
    indexed = {p.name: p.stat() for p in sub.iterdir()}
    outside = tmp_path / "outside"
    before = outside_twins(outside, sub)
    outcomes: dict[str, int] = {}
    why: dict[str, int] = {}
    with LocalEraser(root, chunk_size=1024) as eraser, Swapper(sub, outside) as swapper:
        for round_ in range(20):  # keep erasing while the swapper runs
            for name, st in indexed.items():
                if name in outcomes and outcomes[name] == 0:
                    continue
                relpath = f"sub/{name}"
                try:
                    with eraser.prepare(relpath, st.st_dev, st.st_ino, st.st_size) as p:
                        decision = decide(p.facts, EraseSettings(settle=timedelta(0)), LATER)
                        assert decision.action is Action.ERASE, decision
                        eraser.erase(
                            p, decision, pattern=ErasePattern.ZEROS, verify=False,
                            temp_name=f".recd-erase-{round_:02}{name}",
                        )  # fmt: skip
                    eraser.sync()
                    outcomes[name] = 0
                except (Refused, Gone, EraseError) as exc:
                    outcomes[name] = 1
                    why[str(exc)] = why.get(str(exc), 0) + 1
            if not swapper.running:
                break
    assert swapper.swaps > 100, swapper.swaps
    assert set(why) <= {"sub is a symbolic link", "sub is not a directory"}, why
    assert digests(outside) == before  # every outside file intact, and nothing added
    erased = [n for n, o in outcomes.items() if o == 0]
    assert all(not (sub / n).exists() for n in erased)
    assert all((sub / n).exists() for n in indexed if n not in erased)
    assert not [p for p in sub.iterdir() if p.name.startswith(".recd-erase-")]


def test_once_during_swaps_touches_nothing_outside(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    written = [f"L1/{i:04}.wav" for i in range(FILES)]
    for relpath in written:
        write_recording(tmp_path, relpath, age_days=31)
    sub = tmp_path / "recordings" / "L1"  # the licence's directory is swapped
    outside = tmp_path / "outside"
    before = outside_twins(outside, sub)
    proc = subprocess.Popen(
        [sys.executable, "-m", "recd", "--once", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        head = [proc.stderr.readline()]  # the scan, then the sweep: swap from its start
        assert head[0].endswith(
            "scan pbx: 300 files, 300 new, 0 changed, 0 missing, 0 unclassified\n"
        )
        with Swapper(sub, outside) as swapper:
            while proc.poll() is None and swapper.running:
                time.sleep(0.01)
        stdout, stderr = proc.communicate(timeout=60)
        stderr = head[0] + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert swapper.swaps > 100, swapper.swaps
    assert proc.returncode in (0, 4), stderr  # 4: some erasures failed (refused mid-swap)
    assert "Traceback" not in stderr, stderr
    summary = re.fullmatch(
        r"L1: 300 recordings, 300 due, \d+ erased(?:, \d+ kept \((.*)\))?\n", stdout
    )
    assert summary is not None, stdout
    kept = re.sub(r"\d+ L1 is (a symbolic link|not a directory)(, )?", "", summary[1] or "")
    assert kept == "", summary[1]  # kept only because the directory was a symlink just then
    assert digests(outside) == before
    check_consistent(tmp_path, written)
