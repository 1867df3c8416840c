"""Processes that open a recording while recd erases it (issue 13, point 6).

recd checks for writers when it prepares an erase; a process that opened the file after that
check used to have it overwritten and unlinked under it. The overwrite now runs under a write
lease: the kernel refuses it while another process has the file open and breaks it when one
opens the file, and recd then stops, leaves the file in place, says what it had already done,
and lets a later sweep try again. Variants: readers and writers opening between the check and
the erase and in the middle of the overwrite, a non-blocking opener, a reader holding the file
from before, a writer holding it at the check, no right to take a lease, and an attacker's own
lease on the file, which must not stall recd for the lease-break time (45 s here); without
the right to a lease, recd says at start that the writer check is off.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import EraseError, Refused
from tests.adapters.local.helpers import ident, touch
from tests.e2e.helpers import audit_entries, recd, write_estate, write_recording

OVERWRITE = Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
TEMP = ".recd-erase-0123456789abcdef"
LATER = datetime.now(UTC) + timedelta(hours=1)
NOBODY = 65534
OLD = 1_500_000_000 * 10**9  # an mtime long past, so the overwrite's first write changes it

#: Opens argv[1] (argv[2]: read, write or read-nonblock) at once, or (argv[3] "mid-overwrite")
#: as soon as its mtime changes, which only a write does; says how it went and holds the file
#: open until its stdin closes.
OPENER = """
import os, sys, time
path, mode, when = sys.argv[1:4]
flags = {"read": os.O_RDONLY, "write": os.O_WRONLY | os.O_APPEND,
         "read-nonblock": os.O_RDONLY | os.O_NONBLOCK}[mode]
if when == "mid-overwrite":
    before = os.stat(path).st_mtime_ns
    print("watching", flush=True)
    while os.stat(path).st_mtime_ns == before:
        pass
start = time.monotonic()
try:
    fd = os.open(path, flags)
except BlockingIOError:
    print("refused", flush=True)
else:
    print(f"opened after {time.monotonic() - start:.3f}s", flush=True)
sys.stdin.read()
"""

#: Takes a write lease on argv[1] (as its owner may) and holds it until its stdin closes.
LEASER = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("leased", flush=True)
sys.stdin.read()
"""


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = sorted(os.listdir("/proc/self/fd"))
    yield
    assert sorted(os.listdir("/proc/self/fd")) == before


class Opener:
    """A process that opens the file (see ``OPENER``); ``close`` lets it go."""

    def __init__(self, path: Path, mode: str, when: str = "now") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path), mode, when],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.communicate("", timeout=60)


@pytest.fixture
def openers() -> Iterator[list[Opener]]:
    made: list[Opener] = []
    yield made
    for opener in made:
        opener.close()


def open_it(openers: list[Opener], path: Path, mode: str, when: str = "now") -> Opener:
    opener = Opener(path, mode, when)
    openers.append(opener)
    return opener


def recording(path: Path, size: int) -> os.stat_result:
    touch(path, os.urandom(size))
    os.utime(path, ns=(OLD, OLD))
    return path.stat()


def erase(e: LocalEraser, relpath: str, st: os.stat_result) -> EraseResult:
    with e.prepare(relpath, *ident(st)) as p:
        assert p.facts.open_for_write is False
        return e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)


# -- openers between the writer check and the erase -----------------------------------------


@pytest.mark.parametrize("mode", ["read", "write"])
def test_opened_between_the_check_and_the_erase_is_left_untouched(
    root: Path, openers: list[Opener], mode: str
) -> None:
    data = os.urandom(100_000)
    st = touch(root / "a.wav", data)
    with LocalEraser(root, chunk_size=4096) as e, e.prepare("a.wav", *ident(st)) as p:
        assert decide(p.facts, EraseSettings(), LATER).action is Action.ERASE
        assert open_it(openers, root / "a.wav", mode).line().startswith("opened after")
        with pytest.raises(
            Refused, match=r"^open by another process; left in place, nothing written$"
        ):
            e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert os.listdir(root) == ["a.wav"]
    assert (root / "a.wav").read_bytes() == data


def test_reader_holding_the_file_from_before_stops_the_erase(
    root: Path, openers: list[Opener]
) -> None:
    """A reader does not stop the writer check, but recd cannot hold the file alone."""
    data = os.urandom(10_000)
    st = touch(root / "a.wav", data)
    assert open_it(openers, root / "a.wav", "read").line().startswith("opened after")
    with LocalEraser(root) as e, pytest.raises(Refused, match=r"^open by another process; "):
        erase(e, "a.wav", st)
    assert (root / "a.wav").read_bytes() == data


def test_writer_holding_the_file_at_the_check_is_still_skipped(
    root: Path, openers: list[Opener]
) -> None:
    st = touch(root / "a.wav")
    assert open_it(openers, root / "a.wav", "write").line().startswith("opened after")
    with LocalEraser(root) as e, e.prepare("a.wav", *ident(st)) as p:
        assert p.facts.open_for_write is True
        decision = decide(p.facts, EraseSettings(), LATER)
    assert decision == Decision(
        Action.SKIP, EraseMethod.OVERWRITE, False, "open for writing by another process"
    )


# -- openers during the overwrite ------------------------------------------------------------

SIZE = 32 * 1024 * 1024
ALL_DONE = f"opened by another process during erasure; left in place, all {SIZE} bytes overwritten"
PARTLY = re.compile(
    rf"^opened by another process during erasure; left in place, (\d+) of {SIZE} bytes "
    r"overwritten$"
)


@pytest.mark.parametrize("mode", ["read", "write", "read-nonblock"])
def test_opened_during_the_overwrite_stops_it_and_is_released_at_once(
    root: Path, openers: list[Opener], mode: str
) -> None:
    st = recording(root / "a.wav", SIZE)
    opener = open_it(openers, root / "a.wav", mode, "mid-overwrite")
    assert opener.line() == "watching"
    with LocalEraser(root, chunk_size=4096) as e, e.prepare("a.wav", *ident(st)) as p:
        with pytest.raises(EraseError) as info:
            e.erase(p, OVERWRITE, pattern=ErasePattern.RANDOM, verify=False, temp_name=TEMP)
        # The lease was released before erase returned: the opener did not wait for 45 s.
        said = opener.line()
    found = PARTLY.match(str(info.value))
    assert found is not None, str(info.value)
    assert 0 < int(found[1]) < SIZE
    if mode == "read-nonblock":
        assert said == "refused"  # yet its attempt alone stopped the erase
    else:
        waited = float(said.removeprefix("opened after ").removesuffix("s"))
        assert waited < 5
    assert os.listdir(root) == ["a.wav"]
    assert (root / "a.wav").stat().st_size == SIZE  # partly overwritten, not truncated


def test_the_next_erase_after_the_opener_left_completes(root: Path, openers: list[Opener]) -> None:
    st = recording(root / "a.wav", SIZE)
    opener = open_it(openers, root / "a.wav", "read", "mid-overwrite")
    assert opener.line() == "watching"
    with LocalEraser(root, chunk_size=4096) as e:
        with e.prepare("a.wav", *ident(st)) as p, pytest.raises(EraseError):
            e.erase(p, OVERWRITE, pattern=ErasePattern.RANDOM, verify=False, temp_name=TEMP)
        # Partly overwritten, yet its modification time is the recording's again: recd's own
        # writing must not make it look like a new recording with a later deadline.
        assert (root / "a.wav").stat().st_mtime_ns == OLD
        opener.close()
        result = erase(e, "a.wav", (root / "a.wav").stat())
        e.sync()
    assert result == EraseResult(EraseMethod.OVERWRITE, True, None, SIZE)
    assert os.listdir(root) == []


def test_once_leaves_a_file_a_reader_holds_for_later_and_a_later_run_erases_it(
    tmp_path: Path, openers: list[Opener]
) -> None:
    """A backup or a player holding a due recording open: the erase would stop at once (its
    write lease is refused), so it is left for later like a file being written, with no
    audit entry, rather than failed at every sweep."""
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    assert open_it(openers, old, "read").line().startswith("opened after")
    first = recd("--once", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        "L1: 1 recording, 1 due, 0 erased, 1 kept (1 open by another process (reading it))\n"
    )
    assert old.exists()
    assert "not erasing" in first.stderr and "open by another process (reading it)" in first.stderr
    assert not [e for e in audit_entries(tmp_path) if e["action"].startswith("erase.")]
    openers.pop().close()
    second = recd("--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert not old.exists()
    assert [e["action"] for e in audit_entries(tmp_path)][-1] == "erase.done"


def test_an_erase_that_failed_part_way_does_not_postpone_the_recording(
    tmp_path: Path, openers: list[Opener]
) -> None:
    """Its start time comes from its mtime: were recd's partial overwrite to leave the mtime
    at the attempt, the next scan would give it a deadline a whole retention period later."""
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31, size=SIZE)
    mtime = old.stat().st_mtime_ns
    assert open_it(openers, old, "read", "mid-overwrite").line() == "watching"
    first = recd("--once", "--config", str(config))
    assert (first.returncode, first.stdout) == (4, "L1: 1 recording, 1 due, 0 erased, 1 failed\n")
    [failed] = [e for e in audit_entries(tmp_path) if e["action"] == "erase.failed"]
    # The opener spins on the mtime; under load the whole overwrite (recd's large chunks) may
    # be done before it opens, and the lease is found broken at the next check: either way the
    # erase stopped with the file in place and its name, size and mtime the recording's.
    error = failed["details"]["error"]
    assert PARTLY.match(error) or error == ALL_DONE, failed
    assert old.stat().st_size == SIZE
    assert old.stat().st_mtime_ns == mtime
    openers.pop().close()
    second = recd("--once", "--config", str(config))
    assert (second.returncode, second.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not old.exists()


# -- leases recd cannot have, leases others hold ---------------------------------------------


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A root other users can write in (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="recd-test-"))
    try:
        root.chmod(0o777)
        yield root
    finally:
        shutil.rmtree(root)


@pytest.mark.root
def test_without_the_right_to_a_lease_the_erase_goes_on_and_says_so(
    shared_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sts = [touch(shared_root / name) for name in ("a.wav", "b.wav")]
    for name in ("a.wav", "b.wav"):
        (shared_root / name).chmod(0o666)
    caplog.set_level(logging.WARNING, logger="recd.adapters.local.erase")
    with LocalEraser(shared_root) as e:
        os.seteuid(NOBODY)  # neither the owner nor CAP_LEASE
        try:
            for name, st in zip(("a.wav", "b.wav"), sts, strict=True):
                with e.prepare(name, *ident(st)) as p:
                    e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        finally:
            os.seteuid(0)
        e.sync()
    assert os.listdir(shared_root) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"erasing below {shared_root} without a lease (Permission denied): a process "
        "that opens a file while it is being erased is not noticed; erase.settle and the "
        "writer check before each erase still apply"
    ]


@pytest.mark.root
def test_without_the_right_to_a_lease_the_writer_check_is_said_off_at_start(
    shared_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real process: as nobody, root's capabilities are gone from its effective set."""
    caplog.set_level(logging.WARNING, logger="recd.adapters.local.erase")
    os.seteuid(NOBODY)
    try:
        LocalEraser(shared_root).close()
    finally:
        os.seteuid(0)
    LocalEraser(shared_root).close()  # root again, with CAP_LEASE: nothing to say
    assert caplog.messages == [
        f"writer check off below {shared_root}: recd lacks CAP_LEASE, so the kernel refuses "
        "the leases that find a process writing or reading a file recd does not own "
        "(erase.settle alone guards against erasing a call still being recorded); add "
        "AmbientCapabilities=CAP_LEASE to the unit (systemctl edit recd), then restart recd"
    ]


def test_a_lease_another_process_holds_does_not_stall_recd(root: Path) -> None:
    """A file's owner may take a lease on it; an open by recd would then wait 45 s."""
    st = touch(root / "a.wav")
    leaser = subprocess.Popen(
        [sys.executable, "-c", LEASER, str(root / "a.wav")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert leaser.stdout is not None
        assert leaser.stdout.readline() == "leased\n"
        start = time.monotonic()
        with LocalEraser(root) as e, pytest.raises(BlockingIOError) as info:
            e.prepare("a.wav", *ident(st))
        assert time.monotonic() - start < 5  # not lease-break-time (45 s)
        assert info.value.strerror == "another process holds a lease on it"
    finally:
        leaser.communicate("", timeout=60)
    assert (root / "a.wav").exists()
