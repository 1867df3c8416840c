"""The irreversible step of a local erase (recd.adapters.local.overwrite) on real files: a
temporary name already taken, a real short write, read-back verification naming the first
wrong byte or chunk, a rename that moved another file undone, and holes left unwritten.
Every test here also checks that no file descriptor leaked.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
from pathlib import Path

import pytest

from recd.adapters.local import overwrite
from recd.adapters.local.erase import LocalEraser
from recd.core.model import ErasePattern
from recd.ports.eraser import (
    EraseError,
    Refused,
)
from tests.adapters.local.helpers import OVERWRITE, TEMP, ident, touch

pytestmark = pytest.mark.usefixtures("no_fd_leaks")  # every test: no descriptor leaked


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
