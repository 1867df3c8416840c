"""The irreversible part of a local erase: overwrite in chunks, verify, truncate, rename, unlink.

``overwrite_held`` writes a pattern over every byte of a held file that holds data, in
fixed-size chunks (memory stays flat whatever the file size; holes are not written), flushes,
optionally drops the cache and reads back (``verify_chunks``), truncates, renames the file to
the intent's temporary name in the same directory (``renameat2(RENAME_NOREPLACE)``: never
replacing an entry), checks the entry renamed is still the inode and unlinks it, all under a
``WriteLease``: once another process opens the file, the lease is broken, the erase stops and
the file is left (or put back) at its name, partly overwritten.

Invariants: only the descriptor given is written; a rename never replaces an entry and one that
moved another file is undone; every failure raises ``EraseError`` with a one-line reason saying
what was already done to the file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from recd.adapters._closing import Closing
from recd.adapters.local.checks import Held, is_inode
from recd.adapters.local.probes import LEASE_BREAK_SIGNAL
from recd.core.model import ErasePattern
from recd.errors import os_reason
from recd.ports.eraser import EraseError, Refused

RENAME_NOREPLACE = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = (
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
)
_libc.renameat2.restype = ctypes.c_int


def rename_noreplace(dir_fd: int, old: str, new: str) -> None:
    """``renameat2(RENAME_NOREPLACE)``: fails with EEXIST instead of replacing ``new``."""
    rc = _libc.renameat2(dir_fd, os.fsencode(old), dir_fd, os.fsencode(new), RENAME_NOREPLACE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), new)


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise EraseError(f"{what} failed: {os_reason(exc)}") from exc


def check_renamed(dir_fd: int, name: str, temp_name: str, dev: int, ino: int) -> None:
    """The rename moved our inode; if another file had taken the name, move it back."""
    if is_inode(dir_fd, temp_name, dev, ino):
        return
    try:
        rename_noreplace(dir_fd, temp_name, name)
    except OSError as exc:  # pragma: no cover (race: the name was taken yet again)
        raise EraseError(
            f"replaced during erasure; the other file is left at {temp_name}: {os_reason(exc)}"
        ) from exc
    raise Refused("replaced during erasure; the other file was left in place")


def data_chunks(fd: int, size: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of at most ``chunk`` bytes covering every byte of ``[0, size)``
    that holds data, in order: holes (``SEEK_HOLE``) are skipped, since they hold nothing to
    erase and writing them would allocate blocks (a sparse terabyte named .wav would fill the
    filesystem). Where the filesystem cannot tell, the whole file is data."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset
                return
            start, end = offset, size  # SEEK_DATA not supported: all of it
        while start < end:
            n = min(chunk, end - start)
            yield start, n
            start += n
        offset = max(end, offset + 1)


def overwrite_fd(
    fd: int,
    size: int,
    pattern: ErasePattern,
    chunk: int,
    *,
    keep_digests: bool,
    check: Callable[[int], None] = lambda done: None,
) -> tuple[list[tuple[int, int]], list[bytes]]:
    """Write ``pattern`` over every byte of ``[0, size)`` that holds data (``data_chunks``).

    Returns the chunks written and, for random data with ``keep_digests``, their digests.
    ``check(file offset reached)`` is called before each chunk and may raise to stop."""
    chunks = list(data_chunks(fd, size, chunk))
    zeros = memoryview(bytes(min(chunk, size)))
    digests: list[bytes] = []
    for offset, n in chunks:
        check(offset)
        if pattern is ErasePattern.RANDOM:
            data = memoryview(os.urandom(n))
            if keep_digests:
                digests.append(hashlib.blake2b(data, digest_size=16).digest())
        else:
            data = zeros[:n]
        _pwrite_all(fd, data, offset, size)
    return chunks, digests


def _pwrite_all(fd: int, data: memoryview, offset: int, size: int) -> None:
    """pwrite all of ``data`` at ``offset``, continuing after short writes."""
    done = 0
    while done < len(data):
        try:
            n = os.pwrite(fd, data[done:], offset + done)
        except OSError as exc:
            raise EraseError(
                f"write failed: {os_reason(exc)} after {offset + done} of {size} bytes"
            ) from exc
        if n == 0:  # pragma: no cover (pwrite of a regular file returns 0 only for 0 bytes)
            raise EraseError(f"write failed: no progress after {offset + done} of {size} bytes")
        done += n


def verify_chunks(
    fd: int, pattern: ErasePattern, chunks: Sequence[tuple[int, int]], digests: list[bytes]
) -> None:
    """Read the overwritten ``chunks`` back from the device (cache dropped) and compare."""
    with step("verify"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    for index, (offset, n) in enumerate(chunks):
        with step("verify read"):
            data = os.pread(fd, n, offset)
        if pattern is ErasePattern.RANDOM:
            bad = _digest_mismatch(data, n, digests[index])
        else:
            bad = _first_nonzero(data, n)
        if bad is not None:
            raise EraseError(f"verify failed at offset {offset + bad}")


def _digest_mismatch(data: bytes, n: int, digest: bytes) -> int | None:
    """0 when a chunk of random data read back differs (a digest cannot say where)."""
    if len(data) == n and hashlib.blake2b(data, digest_size=16).digest() == digest:
        return None
    return 0


def _first_nonzero(data: bytes, n: int) -> int | None:
    """Where a chunk of zeros read back first differs (a short read differs at its end)."""
    rest = data.lstrip(b"\0")
    if rest:
        return len(data) - len(rest)
    return None if len(data) == n else len(data)


class WriteLease(Closing):
    """A write lease on ``fd`` (opened ``O_RDWR``), held until ``close``.

    Taking it fails with ``Refused`` while any other process has the file open (the kernel
    grants a write lease only to the sole opener). Without the right (not the owner and no
    CAP_LEASE: EACCES) or lease support (EINVAL), ``unavailable`` says why and ``check``
    never fails. Once another process opens the file, the kernel breaks the lease: it
    signals ``LEASE_BREAK_SIGNAL`` (ignored, so the daemon cannot be killed by it), makes the
    opener wait (``/proc/sys/fs/lease-break-time``) and ``F_GETLEASE`` no longer says
    ``F_WRLCK``; ``check`` then raises ``EraseError``. The descriptor must be the only one
    this process opens on the file meanwhile: an open by recd itself breaks the lease too.
    """

    __slots__ = ("_fd", "_held", "unavailable")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._held = False
        self.unavailable: str | None = None
        try:
            fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_BREAK_SIGNAL)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                raise Refused("open by another process; left in place, nothing written") from None
            self.unavailable = os_reason(exc)
            return
        self._held = True

    @property
    def closed(self) -> bool:
        return not self._held

    def broken(self) -> bool:
        """Whether another process opened the file since the lease was taken."""
        return self._held and fcntl.fcntl(self._fd, fcntl.F_GETLEASE) != fcntl.F_WRLCK

    def opened(self, done: str) -> EraseError:
        """The error for a lease broken when ``done`` had been done to the file."""
        self.close()  # at once: the opener waits until then
        return EraseError(f"opened by another process during erasure; left in place, {done}")

    def check(self, done: str) -> None:
        """Raise ``EraseError`` (releasing the lease) if another process opened the file."""
        if self.broken():
            raise self.opened(done)

    def close(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(OSError):  # released anyway when the descriptor closes
                fcntl.fcntl(self._fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def _put_back(dir_fd: int, temp_name: str, name: str, error: EraseError) -> NoReturn:
    """Rename ``temp_name`` back to ``name`` and raise ``error`` (saying where it was left)."""
    try:
        rename_noreplace(dir_fd, temp_name, name)
    except OSError as exc:  # pragma: no cover (race: the name was taken meanwhile)
        why = str(error).replace("left in place", f"left at {temp_name}")
        raise EraseError(f"{why}: {os_reason(exc)}") from exc
    raise error


def overwrite_held(
    p: Held,
    fd: int,
    lease: WriteLease,
    pattern: ErasePattern,
    verify: bool,
    temp_name: str,
    chunk_size: int,
) -> int:
    """The overwrite, truncate, rename and unlink of ``p`` through ``fd``, ``lease`` held;
    returns the bytes overwritten (the file's data: holes hold none and are not written)."""
    size = p.st.st_size

    def check(done: int) -> None:
        written = f"{done} of {size} bytes overwritten" if done else "nothing written"
        lease.check(written)

    chunks, digests = overwrite_fd(fd, size, pattern, chunk_size, keep_digests=verify, check=check)
    with step("flush"):
        os.fdatasync(fd)
        grown = os.fstat(fd).st_size
    if grown != size:  # pragma: no cover (race: a writer appended during the overwrite)
        raise EraseError(f"grew during erasure (size {grown}, overwrote {size})")
    lease.check(f"all {size} bytes overwritten")
    if verify:
        verify_chunks(fd, pattern, chunks, digests)
        lease.check(f"all {size} bytes overwritten")
    with step("truncate"):
        os.ftruncate(fd, 0)
        os.fsync(fd)
    _rename_and_unlink(p, temp_name, lease)
    return sum(n for _, n in chunks)


def _rename_and_unlink(p: Held, temp_name: str, lease: WriteLease) -> None:
    """Rename to ``temp_name`` (unless already there), check it is ours, unlink it; if the
    lease is broken on the way, the file is put back at its name and left there."""
    done = "overwritten and truncated"
    if p.name != temp_name:
        lease.check(done)
        with step("rename"):
            rename_noreplace(p.dir_fd, p.name, temp_name)
        check_renamed(p.dir_fd, p.name, temp_name, p.st.st_dev, p.st.st_ino)
        if lease.broken():
            _put_back(p.dir_fd, temp_name, p.name, lease.opened(done))
    lease.check(done)
    with step("unlink"):
        os.unlink(temp_name, dir_fd=p.dir_fd)
