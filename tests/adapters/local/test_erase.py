"""LocalEraser on real files in a temporary directory: safe opening, erasing, recovery states.

Filesystem-specific behaviour (ext4 raw blocks, btrfs, XFS reflink, data=journal, mounts,
ENOSPC) is in test_erase_root.py on loop-mounted filesystems. Every test here also checks that
no file descriptor leaked.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from recd.adapters.local import checks, erase, overwrite, probes
from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.adapters.local.probes import filesystem_name
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import (
    EraseError,
    EraseJob,
    EraseOutcome,
    Eraser,
    EraseTarget,
    Gone,
    PreparedErase,
    Refused,
)
from tests.adapters.local.helpers import LATER, OVERWRITE, TEMP, erase_one, ident, touch

FS_IOC_FIEMAP = 0xC020660B  # linux/fs.h: the ioctl that maps a file's extents
UNLINK = Decision(Action.ERASE, EraseMethod.UNLINK, False, "btrfs copy-on-write")


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = sorted(os.listdir("/proc/self/fd"))
    yield
    assert sorted(os.listdir("/proc/self/fd")) == before


@pytest.fixture
def eraser(root: Path) -> Iterator[LocalEraser]:
    with LocalEraser(root, chunk_size=64 * 1024) as e:
        yield e


@pytest.fixture
def timeout() -> Iterator[None]:
    """Fail instead of hanging: a blocking open is interrupted after 5 seconds."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- the normal erase -----------------------------------------------------------------------


def test_overwrite_leaves_no_file_and_no_temp_name(root: Path, eraser: LocalEraser) -> None:
    data = os.urandom(300_000)  # several chunks and a partial one
    st = touch(root / "1001" / "a.wav", data)
    touch(root / "1001" / "keep.wav")
    result = erase_one(eraser, "1001/a.wav", st)
    assert result == EraseResult(EraseMethod.OVERWRITE, True, None, 300_000)
    assert os.listdir(root / "1001") == ["keep.wav"]


@pytest.mark.parametrize("pattern", list(ErasePattern))
@pytest.mark.parametrize("verify", [True, False])
def test_both_patterns_with_and_without_verify(
    root: Path, eraser: LocalEraser, pattern: ErasePattern, verify: bool
) -> None:
    st = touch(root / "a.wav", os.urandom(200_001))
    result = erase_one(eraser, "a.wav", st, pattern=pattern, verify=verify)
    assert result.bytes_overwritten == 200_001
    assert os.listdir(root) == []


def test_empty_file_is_erased(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.shared_extents in (False, None)
        result = eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
    assert result.bytes_overwritten == 0
    assert os.listdir(root) == []


def test_ineffective_overwrite_is_recorded_with_its_reason(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    decision = Decision(Action.ERASE, EraseMethod.OVERWRITE, False, "xfs extent sharing unknown")
    result = erase_one(eraser, "a.wav", st, decision)
    assert result == EraseResult(EraseMethod.OVERWRITE, False, "xfs extent sharing unknown", 9)


def test_unlink_removes_the_file_and_carries_the_reason(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "d" / "a.wav")
    assert erase_one(eraser, "d/a.wav", st, UNLINK) == EraseResult(
        EraseMethod.UNLINK, False, "btrfs copy-on-write", 0
    )
    assert os.listdir(root / "d") == []


def test_facts_describe_the_file(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"x" * 5000)
    with eraser.prepare("a.wav", *ident(st)) as p:
        f = p.facts
        assert (f.nlink, f.mtime_ns, f.open_for_write) == (1, st.st_mtime_ns, False)
        assert f.fs_type == filesystem_name(probes.fstatfs_magic(p.path_fd)) or f.fs_type in (
            "ext2", "ext3",
        )  # fmt: skip
        prepared: PreparedErase = p  # mypy: Prepared satisfies the port
        assert prepared.facts is f
        assert p.relpath == "a.wav"
    assert p.closed
    p.close()  # idempotent


def test_local_eraser_is_an_eraser(root: Path) -> None:
    # Checked by mypy: LocalEraser and EraseResult satisfy the ports.
    e: Eraser = LocalEraser(root)
    r: EraseOutcome = EraseResult(EraseMethod.UNLINK, False, None, 0)
    assert e is not None
    assert r.method is EraseMethod.UNLINK


def test_filesystem_names() -> None:
    assert filesystem_name(0xEF53) == "ext4"
    assert filesystem_name(0x9123683E) == "btrfs"
    assert filesystem_name(0x1234) == "unknown-0x1234"


def test_fragmented_file_extents_are_walked_in_batches(
    root: Path, eraser: LocalEraser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of 192 extents is mapped 64 extents per FIEMAP call (bounded memory for a
    fragmented multi-gigabyte file), each call starting where the last extent seen ended."""
    path = root / "a.wav"
    with path.open("wb") as f:
        for i in range(3 * 64):  # a data block every other block: one extent each
            f.seek(i * 8192)
            f.write(b"x" * 4096)
        f.flush()
        os.fsync(f.fileno())
    starts: list[int] = []  # fm_start of each FIEMAP call
    real = fcntl.ioctl

    def ioctl(fd: int, request: int, arg: Any = 0, mutate: bool = True) -> Any:
        if request == FS_IOC_FIEMAP:
            starts.append(struct.unpack_from("=Q", arg)[0])
        return real(fd, request, arg, mutate)

    monkeypatch.setattr(fcntl, "ioctl", ioctl)
    with eraser.prepare("a.wav", *ident(path.stat())) as p:
        shared = p.facts.shared_extents
    if shared is None:
        pytest.skip(f"FIEMAP is not supported on {root}'s filesystem")
    assert shared is False
    assert starts == [0, 63 * 8192 + 4096, 127 * 8192 + 4096]


# -- symlinks, swaps, special files ---------------------------------------------------------


def test_symlink_to_a_file_outside_the_root_is_refused(tmp_path: Path, root: Path) -> None:
    secret = tmp_path / "outside" / "secret.wav"
    outside_st = touch(secret, b"not yours")
    (root / "x.wav").symlink_to(secret)
    link_st = (root / "x.wav").lstat()
    with LocalEraser(root) as e:
        for st in (outside_st, link_st):
            with pytest.raises(Refused, match=r"^is a symbolic link$"):
                e.prepare("x.wav", st.st_dev, st.st_ino, st.st_size)
    assert secret.read_bytes() == b"not yours"


def test_file_swapped_for_a_symlink_after_prepare_is_not_touched(
    tmp_path: Path, root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "x.wav", b"indexed")
    victim = tmp_path / "victim.wav"
    touch(victim, b"victim data")
    with eraser.prepare("x.wav", *ident(st)) as p:
        (root / "x.wav").rename(tmp_path / "moved.wav")
        (root / "x.wav").symlink_to(victim)
        for decision in (OVERWRITE, UNLINK):
            with pytest.raises(Refused, match=r"^replaced since it was checked$"):
                eraser.erase(p, decision, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert victim.read_bytes() == b"victim data"
    assert (tmp_path / "moved.wav").read_bytes() == b"indexed"
    assert (root / "x.wav").is_symlink()
    assert sorted(os.listdir(root)) == ["x.wav"]


def test_file_replaced_before_prepare_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "x.wav")
    (root / "x.wav").unlink()
    touch(root / "other.wav", b"other")  # keeps the old inode number from being reused
    touch(root / "x.wav", b"new recording")
    with pytest.raises(Refused, match=r"^replaced since it was indexed$"):
        eraser.prepare("x.wav", *ident(st))
    assert (root / "x.wav").read_bytes() == b"new recording"


def test_parent_directory_swapped_for_a_symlink_is_not_followed(
    tmp_path: Path, root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "sub" / "x.wav", b"indexed")
    outside = tmp_path / "outside"
    touch(outside / "x.wav", b"outside")
    (root / "sub").rename(tmp_path / "away")
    (root / "sub").symlink_to(outside)
    with pytest.raises(Refused, match=r"^sub is a symbolic link$"):
        eraser.prepare("sub/x.wav", *ident(st))
    with pytest.raises(Refused, match=r"^sub is a symbolic link$"):
        eraser.locate("sub/x.wav", TEMP, st.st_dev, st.st_ino)
    assert (outside / "x.wav").read_bytes() == b"outside"


def test_parent_directory_replaced_by_a_file_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a" / "sub" / "x.wav")
    shutil.rmtree(root / "a" / "sub")
    touch(root / "a" / "sub", b"a file")
    with pytest.raises(Refused, match=r"^a/sub is not a directory$"):
        eraser.prepare("a/sub/x.wav", *ident(st))


def test_unsafe_relative_paths_are_refused(eraser: LocalEraser) -> None:
    for relpath in ("../x.wav", "a//b.wav", "/etc/passwd", "a/./b"):
        with pytest.raises(Refused, match=r"^unsafe relative path"):
            eraser.prepare(relpath, 1, 2, 3)


@pytest.mark.usefixtures("timeout")
def test_fifo_named_like_a_recording_never_blocks_and_is_refused(
    root: Path, eraser: LocalEraser
) -> None:
    os.mkfifo(root / "x.wav")
    st = (root / "x.wav").lstat()
    with pytest.raises(Refused, match=r"^is not a regular file \(a FIFO\)$"):
        eraser.prepare("x.wav", *ident(st))
    assert stat.S_ISFIFO((root / "x.wav").lstat().st_mode)


def test_socket_and_directory_are_refused(
    root: Path, eraser: LocalEraser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)  # a short relative name: socket paths are limited to 108 bytes
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("s.wav")
        st = (root / "s.wav").lstat()
        with pytest.raises(Refused, match=r"^is not a regular file \(a socket\)$"):
            eraser.prepare("s.wav", *ident(st))
    (root / "d.wav").mkdir()
    st = (root / "d.wav").lstat()
    with pytest.raises(Refused, match=r"^is not a regular file \(a directory\)$"):
        eraser.prepare("d.wav", *ident(st))


# -- hard links, writers, changes -----------------------------------------------------------


def test_hard_linked_file_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    os.link(root / "a.wav", root / "b.wav")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.nlink == 2
        decision = decide(p.facts, EraseSettings(), LATER)
    assert decision == Decision(Action.REFUSE, EraseMethod.OVERWRITE, False, "has 2 hard links")


def test_hard_link_made_after_prepare_stops_the_erase(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"kept")
    with eraser.prepare("a.wav", *ident(st)) as p:
        os.link(root / "a.wav", root / "b.wav")
        with pytest.raises(Refused, match=r"^has 2 hard links$"):
            eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (root / "a.wav").read_bytes() == (root / "b.wav").read_bytes() == b"kept"


WRITER = """
import sys, time
f = open(sys.argv[1], "ab")
print("ready", flush=True)
sys.stdin.read()
"""


def test_file_open_for_writing_by_another_process_is_skipped(
    root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "a.wav")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root / "a.wav")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        with eraser.prepare("a.wav", *ident(st)) as p:
            assert p.facts.open_for_write is True
            decision = decide(p.facts, EraseSettings(), LATER)
        assert decision == Decision(
            Action.SKIP, EraseMethod.OVERWRITE, False, "open for writing by another process"
        )
    finally:
        writer.communicate("")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.open_for_write is False


def test_a_writer_opening_during_the_lease_probe_does_not_kill_the_daemon(root: Path) -> None:
    touch(root / "a.wav")
    fd = os.open(root / "a.wav", os.O_RDONLY)
    try:
        with probes.read_lease(fd) as held:
            assert held is True
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root / "a.wav")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.3)  # its open() breaks our lease: the kernel signals us now
            assert writer.poll() is None  # and blocks it until we release the lease
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        writer.communicate("")
    finally:
        os.close(fd)


def test_size_changed_since_indexing_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"abc")
    (root / "a.wav").write_bytes(b"abcde")
    with pytest.raises(Refused, match=r"^changed since it was indexed \(size 5, indexed 3\)$"):
        eraser.prepare("a.wav", *ident(st))


def test_file_changed_after_prepare_is_not_touched(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"abc")
    with eraser.prepare("a.wav", *ident(st)) as p:
        with (root / "a.wav").open("ab") as f:
            f.write(b"more")
        with pytest.raises(Refused, match=r"^changed since it was checked$"):
            eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (root / "a.wav").read_bytes() == b"abcmore"


def test_file_removed_after_prepare_is_gone(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    with eraser.prepare("a.wav", *ident(st)) as p:
        (root / "a.wav").unlink()
        with pytest.raises(Gone, match=r"^removed since it was checked$"):
            eraser.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)


def test_gone_file_and_gone_directory(root: Path, eraser: LocalEraser) -> None:
    with pytest.raises(Gone, match=r"^no longer exists$"):
        eraser.prepare("a.wav", 1, 2, 3)
    (root / "a").mkdir()
    with pytest.raises(Gone, match=r"^a/b no longer exists$"):
        eraser.prepare("a/b/c.wav", 1, 2, 3)


def test_missing_root_is_an_os_error_not_gone(tmp_path: Path) -> None:
    with LocalEraser(tmp_path / "unmounted") as e:
        with pytest.raises(FileNotFoundError):
            e.prepare("a.wav", 1, 2, 3)
        with pytest.raises(FileNotFoundError):
            e.locate("a.wav", TEMP, 1, 2)


# -- failures during the irreversible step --------------------------------------------------


def test_temp_name_taken_fails_without_replacing_it(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"secret")
    touch(root / TEMP, b"someone else's")
    with eraser.prepare("a.wav", *ident(st)) as p:
        with pytest.raises(EraseError, match=r"^rename failed: File exists$"):
            eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (root / TEMP).read_bytes() == b"someone else's"
    assert (root / "a.wav").stat().st_size == 0  # overwritten and truncated; not claimed


def test_write_failure_is_reported_with_progress(root: Path) -> None:
    """A real short write then EFBIG, from a file size limit (RLIMIT_FSIZE)."""
    st = touch(root / "a.wav", os.urandom(1 << 20))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    with LocalEraser(root, chunk_size=65536) as e, e.prepare("a.wav", *ident(st)) as p:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))
        try:
            with pytest.raises(EraseError) as info:
                e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old)
    assert info.value.reason == "write failed: File too large after 300000 of 1048576 bytes"
    assert (root / "a.wav").stat().st_size == 1 << 20  # still there: not claimed erased


def test_file_that_cannot_be_opened_for_writing_fails(root: Path, eraser: LocalEraser) -> None:
    shutil.copy("/bin/sleep", root / "a.wav")
    (root / "a.wav").chmod(0o755)
    st = (root / "a.wav").stat()
    try:
        running = subprocess.Popen([str(root / "a.wav"), "30"])
    except PermissionError:  # pragma: no cover (a noexec /tmp)
        pytest.skip("cannot execute files in the temporary directory")
    try:
        time.sleep(0.2)
        with eraser.prepare("a.wav", *ident(st)) as p:
            with pytest.raises(EraseError, match=r"^cannot open for writing: Text file busy$"):
                eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    finally:
        running.kill()
        running.wait()
    assert (root / "a.wav").stat().st_size == st.st_size


def chunked_file(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


@pytest.mark.parametrize(
    ("data", "size", "message"),
    [
        (b"\0" * 1000 + b"x" + b"\0" * 999, 2000, "verify failed at offset 1000"),
        (b"\0" * 150, 200, "verify failed at offset 150"),  # shorter than written
    ],
)
def test_verify_finds_the_first_wrong_byte(
    tmp_path: Path, data: bytes, size: int, message: str
) -> None:
    fd = chunked_file(tmp_path / "f", data)
    try:
        with pytest.raises(EraseError, match=f"^{message}$"):
            chunks = [(offset, min(64, size - offset)) for offset in range(0, size, 64)]
            overwrite.verify_chunks(fd, ErasePattern.ZEROS, chunks, [])
    finally:
        os.close(fd)


def test_verify_of_random_data_names_the_chunk(tmp_path: Path) -> None:
    chunks = [os.urandom(64) for _ in range(3)]
    digests = [hashlib.blake2b(c, digest_size=16).digest() for c in chunks]
    fd = chunked_file(tmp_path / "f", chunks[0] + chunks[1] + b"x" + chunks[2][1:])
    try:
        with pytest.raises(EraseError, match=r"^verify failed at offset 128$"):
            where = [(0, 64), (64, 64), (128, 64)]
            overwrite.verify_chunks(fd, ErasePattern.RANDOM, where, digests)
    finally:
        os.close(fd)


def test_rename_that_moved_another_file_is_undone(root: Path) -> None:
    mine = touch(root / "mine.wav")
    touch(root / "a.wav", b"someone else's")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        overwrite.rename_noreplace(fd, "a.wav", TEMP)  # as if the name had just been swapped
        with pytest.raises(Refused, match=r"^replaced during erasure; the other file was left"):
            overwrite.check_renamed(fd, "a.wav", TEMP, mine.st_dev, mine.st_ino)
    finally:
        os.close(fd)
    assert (root / "a.wav").read_bytes() == b"someone else's"
    assert not (root / TEMP).exists()


# -- caller errors --------------------------------------------------------------------------


def test_erase_rejects_what_it_cannot_do(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    kw = {"pattern": ErasePattern.ZEROS, "verify": False}
    with eraser.prepare("a.wav", *ident(st)) as p:
        for decision, message in [
            (Decision(Action.SKIP, EraseMethod.OVERWRITE, False, "x"), "decision is skip"),
            (Decision(Action.ERASE, EraseMethod.S3_DELETE, True), "s3-delete does not apply"),
        ]:
            with pytest.raises(ValueError, match=message):
                eraser.erase(p, decision, temp_name=TEMP, **kw)  # type: ignore[arg-type]
        for name in ("", ".", "..", "a/b", "a\0b"):
            with pytest.raises(ValueError, match="unsafe temporary name"):
                eraser.erase(p, OVERWRITE, temp_name=name, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an open Prepared"):
        eraser.erase(p, OVERWRITE, temp_name=TEMP, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an open Prepared"):
        eraser.erase(object(), OVERWRITE, temp_name=TEMP, **kw)  # type: ignore[arg-type]
    assert (root / "a.wav").read_bytes() == b"recording"
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        LocalEraser(root, chunk_size=0)


# -- sync, close, locate, recovery ----------------------------------------------------------


def directory_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (device, inode) of every directory fsynced from now on, in call order (files
    fsynced are left out). Nothing on a live filesystem shows that an fsync happened, so the
    calls themselves are watched; each still reaches the real ``os.fsync``."""
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_sync_flushes_each_touched_directory_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = {rel: touch(root / rel) for rel in ("a/1.wav", "a/2.wav", "b/3.wav")}
    dirs = {(st.st_dev, st.st_ino) for st in (os.stat(root / "a"), os.stat(root / "b"))}
    synced = directory_fsyncs(monkeypatch)
    with LocalEraser(root) as e:
        for rel, st in sts.items():
            with e.prepare(rel, *ident(st)) as p:
                e.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        assert synced == [], "flushed before sync: once per erase, not once per batch"
        e.sync()
        assert sorted(synced) == sorted(dirs)  # each directory once, the root untouched
        e.sync()  # nothing to do
        assert sorted(synced) == sorted(dirs)


def test_close_releases_unsynced_directories(root: Path) -> None:
    st = touch(root / "a.wav")
    e = LocalEraser(root)
    with e.prepare("a.wav", *ident(st)) as p:
        e.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    e.close()  # the fd-leak check fails if the directory descriptor stayed open
    e.close()


def test_locate_in_each_state(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "d" / "a.wav")
    dev, ino = st.st_dev, st.st_ino
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "original"
    (root / "d" / "a.wav").rename(root / "d" / TEMP)
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "temp"
    touch(root / "d" / "a.wav", b"a new file at the old name")
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "temp"
    (root / "d" / TEMP).unlink()
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "gone"
    shutil.rmtree(root / "d")
    assert eraser.locate("d/a.wav", TEMP, dev, ino) == "gone"
    with pytest.raises(ValueError, match="unsafe temporary name"):
        eraser.locate("d/a.wav", "../x", dev, ino)


def test_recovery_finishes_an_erase_interrupted_at_the_temp_name(
    root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "d" / "a.wav", b"secret" * 1000)
    # As a crash would leave it: partly overwritten, renamed, not yet unlinked.
    with (root / "d" / "a.wav").open("r+b") as f:
        f.write(b"\0" * 100)
    (root / "d" / "a.wav").rename(root / "d" / TEMP)
    assert eraser.locate("d/a.wav", TEMP, st.st_dev, st.st_ino) == "temp"
    with eraser.prepare(f"d/{TEMP}", st.st_dev, st.st_ino, None) as p:
        result = eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
    eraser.sync()
    assert result.bytes_overwritten == 6000
    assert os.listdir(root / "d") == []
    assert eraser.locate("d/a.wav", TEMP, st.st_dev, st.st_ino) == "gone"


def test_recovery_of_a_truncated_file_at_its_name(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"secret")
    os.truncate(root / "a.wav", 0)
    with pytest.raises(Refused, match="changed since it was indexed"):
        eraser.prepare("a.wav", *ident(st))
    with eraser.prepare("a.wav", st.st_dev, st.st_ino, None) as p:
        result = eraser.erase(
            p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP
        )
    assert result.bytes_overwritten == 0
    assert os.listdir(root) == []
    eraser.sync()


# -- without /proc --------------------------------------------------------------------------


def test_without_proc_files_are_reopened_by_name_and_checked(tmp_path: Path, root: Path) -> None:
    st = touch(root / "a.wav", b"x" * 1000)
    with LocalEraser(root, proc=tmp_path / "no-proc") as e:
        with e.prepare("a.wav", *ident(st)) as p:
            if p.facts.fs_type in ("ext2", "ext3", "ext4"):
                assert p.facts.data_journal is None  # mount options unknown: not claimed
            result = e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
        e.sync()
        assert result.bytes_overwritten == 1000
        assert os.listdir(root) == []

        st = touch(root / "b.wav")
        with e.prepare("b.wav", *ident(st)) as p:
            (root / "b.wav").rename(root / "c.wav")
            touch(root / "b.wav", b"new")
            with pytest.raises(Refused, match=r"^replaced since it was checked$"):
                checks.reopen(p, os.O_RDONLY, e._fd_dir)


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 7:1 / /mnt/a rw shared:1 - tmpfs tmpfs rw
31 27 7:1 / /mnt/b rw - ext3 /dev/loop1 rw,data=journal
32 27 7:2 / /mnt/c rw - ext4 /dev/loop2 rw,data=ordered,journal_checksum
garbage
33 27 7:3 / /mnt/d rw no-separator
34 27 7:4 / /mnt/e rw - ext2 /dev/disk/by-label/rec\\040tree rw
"""


@pytest.mark.parametrize(
    ("dev", "expected"),
    [
        (os.makedev(254, 0), probes.ExtMount("ext4", "/dev/vda", False)),
        (os.makedev(7, 1), probes.ExtMount("ext3", "/dev/loop1", True)),
        (os.makedev(7, 2), probes.ExtMount("ext4", "/dev/loop2", False)),
        (os.makedev(7, 3), None),
        (os.makedev(7, 4), probes.ExtMount("ext2", "/dev/disk/by-label/rec tree", False)),
        (os.makedev(9, 9), None),
        (os.makedev(0, 21), None),  # not ext
    ],
)
def test_mountinfo_gives_ext_type_source_and_data_journalling(
    tmp_path: Path, dev: int, expected: probes.ExtMount | None
) -> None:
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    assert probes.read_mountinfo(tmp_path / "mountinfo", dev) == expected
    assert probes.read_mountinfo(tmp_path / "missing", dev) is None


def ext4_proc(proc: Path, name: str, options: str | None, journals: list[str] | None) -> Path:
    """A fake ``<proc>/fs``: ext4's options for device ``name``, jbd2's journal entries."""
    (proc / "fs" / "ext4" / name).mkdir(parents=True)
    if options is not None:
        (proc / "fs" / "ext4" / name / "options").write_text(options.replace(" ", "\n") + "\n")
    if journals is not None:
        (proc / "fs" / "jbd2").mkdir(parents=True)
        for journal in journals:
            (proc / "fs" / "jbd2" / journal).mkdir()
    return proc


@pytest.mark.parametrize(
    ("options", "journals", "expected"),
    [
        ("rw nodelalloc data=journal commit=5", ["loop7-8"], True),
        ("rw delalloc data=ordered commit=5", ["loop7-8"], False),
        ("rw delalloc data=writeback", ["loop7-8"], False),
        ("rw nojournal_checksum commit=5", [], False),  # no journal: ext2, ^has_journal
        ("rw nojournal_checksum", ["loop70-8"], False),  # another device's journal
        ("rw commit=5", ["loop7-8"], None),  # a journal, yet no data= shown
        ("rw commit=5", None, None),  # jbd2 cannot be listed
        ("rw data=journal data=ordered", ["loop7-8"], None),
        (None, ["loop7-8"], None),  # no options file
    ],
)
def test_ext_data_journalling_in_force_is_read_from_procfs(
    tmp_path: Path, options: str | None, journals: list[str] | None, expected: bool | None
) -> None:
    proc = ext4_proc(tmp_path, "loop7", options, journals)
    assert probes.ext_data_journal(proc, "loop7") is expected
    assert probes.ext_data_journal(proc, "loop8") is None  # no such entry


def test_block_device_name_from_sysfs_else_from_the_mount_source(tmp_path: Path) -> None:
    dev = os.makedev(7, 3)
    uevent = tmp_path / "sys" / "dev" / "block" / "7:3" / "uevent"
    uevent.parent.mkdir(parents=True)
    uevent.write_text("MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n")
    assert probes.block_device_name(tmp_path / "sys", dev, "/nonexistent") == "loop3"
    uevent.write_text("MAJOR=7\nMINOR=3\n")
    assert probes.block_device_name(tmp_path / "sys", dev, "/nonexistent") is None
    # Without sysfs, a source that is not that block device names nothing.
    assert probes.block_device_name(tmp_path / "none", dev, str(uevent)) is None
    assert probes.block_device_name(tmp_path / "none", dev, "/dev/null") is None
    assert probes.block_device_name(tmp_path / "none", dev, "bad\0name") is None


def test_holes_of_a_sparse_file_are_not_written(root: Path) -> None:
    """A hole holds nothing to erase; writing it would allocate blocks (a sparse terabyte
    named .wav would fill the filesystem before the erase failed)."""
    path = root / "sparse.wav"
    with path.open("wb") as f:
        f.write(b"secret" * 1000)
        f.seek(64 * 1024 * 1024)
        f.write(b"tail-secret")
    fd = os.open(path, os.O_RDWR)
    try:
        chunks = list(overwrite.data_chunks(fd, os.fstat(fd).st_size, 1 << 20))
        if chunks == [(offset, min(1 << 20, 64 * 1024 * 1024 + 11 - offset))
                      for offset in range(0, 64 * 1024 * 1024 + 11, 1 << 20)]:  # fmt: skip
            pytest.skip("this filesystem does not report holes (SEEK_HOLE)")
        assert sum(n for _, n in chunks) < 1 << 20
        assert chunks[0][0] == 0 and chunks[-1][0] + chunks[-1][1] == 64 * 1024 * 1024 + 11
        allocated = os.fstat(fd).st_blocks
        overwrite.overwrite_fd(fd, os.fstat(fd).st_size, ErasePattern.ZEROS, 1 << 20,
                            keep_digests=False)  # fmt: skip
        assert os.fstat(fd).st_blocks == allocated
        assert b"secret" not in path.read_bytes()
    finally:
        os.close(fd)


def test_an_unexpected_failure_fails_that_file_alone(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug reached by one file (here: a check that raises what no check should) fails that
    file's erase with a one-line reason; the batch goes on."""
    bad, good = touch(root / "bad.wav"), touch(root / "good.wav")
    real = checks.check_identity

    def check(st: os.stat_result, *args: Any) -> None:
        if st.st_ino == bad.st_ino:
            raise KeyError("boom")
        real(st, *args)

    monkeypatch.setattr(checks, "check_identity", check)
    with LocalEraser(root) as e:
        targets = [
            EraseTarget(name, *ident(st)) for name, st in (("bad.wav", bad), ("good.wav", good))
        ]
        failed, prepared = e.prepare_many(targets)
        assert isinstance(failed, EraseError)
        assert str(failed) == "prepare failed unexpectedly: KeyError: 'boom'"
        assert "Traceback" in caplog.text
        assert isinstance(prepared, erase.Prepared)
        with prepared:
            job = EraseJob(prepared, UNLINK, TEMP)
            monkeypatch.setattr(LocalEraser, "_recheck", lambda self, p: 1 / 0)
            [outcome] = e.erase_many([job], pattern=ErasePattern.ZEROS, verify=False)
    assert str(outcome) == "erase failed unexpectedly: ZeroDivisionError: division by zero"
    assert (root / "bad.wav").exists() and (root / "good.wav").exists()


def test_prepare_tells_a_reader_from_a_writer(root: Path) -> None:
    path = root / "a.wav"
    st = touch(path)
    with LocalEraser(root) as e:
        with e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (False, False)
        with path.open("rb"), e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (False, True)
        with path.open("ab"), e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.open_for_write, p.facts.open_by_other) == (True, True)
