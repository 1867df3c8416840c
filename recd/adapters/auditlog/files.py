"""The files of an audit log on disk: the live file's low-level reads, writes and lock, and
the closed segments beside it: listing, reading, compressing, and settling what a crash left
half done (``recd.adapters.auditlog.log`` only).

Each step that creates a name writes the file under a temporary name first, ``fsync``s it, then
renames it into place and ``fsync``s the directory: a crash leaves either the old state, the new
one, or a temporary file that ``settle`` removes. A compressed segment replaces the plain one
only once it is complete (``.gz.tmp``, ``fsync``, rename to ``.gz``); the plain file is removed
after.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import logging
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

from recd.core.audit import AuditEntry, parse_sealed
from recd.core.auditsegments import GZ, NEW, PARTIAL, ROTATED, Segment, parse_segment, segments
from recd.durable import fsync_dir as fsync_dir  # noqa: PLC0414 (log.py calls files.fsync_dir)
from recd.errors import AuditCorrupt, StateError

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
MODE = 0o640  # group recd-admin may read it (recctl audit verify, ls)
#: gzip's default level 6 costs about three times level 1's time for a few per cent less:
#: a rotation runs on the daemon's loop, so the cheap level keeps it short.
LEVEL = 1


def pread_exact(fd: int, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of ``fd``; short if the file ends sooner."""
    parts: list[bytes] = []
    while start < end:
        chunk = os.pread(fd, min(CHUNK, end - start), start)
        if not chunk:
            break
        parts.append(chunk)
        start += len(chunk)
    return b"".join(parts)


def line_start(fd: int, pos: int) -> int:
    """The offset just after the last newline before ``pos`` (0 if there is none)."""
    while pos > 0:
        begin = max(0, pos - CHUNK)
        found = pread_exact(fd, begin, pos).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        pos = begin
    return 0


def sha256(fd: int, start: int, end: int) -> str:
    digest = hashlib.sha256()
    for begin in range(start, end, CHUNK):
        digest.update(pread_exact(fd, begin, min(end, begin + CHUNK)))
    return digest.hexdigest()


def open_append(path: Path) -> tuple[int, bool]:
    """The append descriptor, and whether this call created the file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, MODE), True
    except FileExistsError:
        return os.open(path, flags), False


def settle_new(fd: int, path: Path) -> None:
    """Give a new log its mode whatever the umask, and make its name durable."""
    os.fchmod(fd, MODE)
    fsync_dir(path.parent)


def lock(path: Path) -> tuple[int, int]:
    """The append and read descriptors of ``path``, locked; (-1, -1) if a rotation replaced
    the file between its open and its lock (try again)."""
    wfd, created = open_append(path)
    try:
        if created:
            settle_new(wfd, path)
        try:
            fcntl.flock(wfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(f"{path}: in use by another recd process") from None
        rfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # the last step: nothing to undo after
    except BaseException:
        os.close(wfd)
        raise
    if not os.path.samestat(os.fstat(wfd), os.fstat(rfd)):  # pragma: no cover (race)
        os.close(wfd)
        os.close(rfd)
        return -1, -1
    return wfd, rfd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:])


def first_line(fd: int, end: int) -> bytes:
    """The first line of the first ``end`` bytes (``end`` is at a line's end)."""
    parts: list[bytes] = []
    pos = 0
    while pos < end:
        chunk = pread_exact(fd, pos, min(end, pos + CHUNK))
        cut = chunk.find(b"\n")
        if cut >= 0:
            parts.append(chunk[: cut + 1])
            break
        if not chunk:  # cut short by another program since ``end`` was read: not forever
            break
        parts.append(chunk)
        pos += len(chunk)
    return b"".join(parts)


def list_segments(live: Path) -> list[Segment]:
    """The closed segments beside ``live``, in chain order."""
    return segments(live.name, os.listdir(live.parent))


def open_segment(path: Path) -> io.BufferedIOBase:
    """A segment's bytes (uncompressed), from its start."""
    if path.name.endswith(GZ):
        return gzip.open(path, "rb")
    return path.open("rb")


def first_entry(path: Path) -> AuditEntry | None:
    """The first entry of a segment or log (None if it is empty); ``AuditCorrupt`` if it is
    damaged."""
    try:
        with open_segment(path) as file:
            line = file.readline()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise AuditCorrupt(f"{path}: not a complete gzip file ({exc})") from None
    if not line:
        return None
    try:
        return parse_sealed(line)
    except ValueError as exc:
        raise AuditCorrupt(f"{path}: the first entry is damaged ({exc})") from None


def chain_offset(path: Path, segment: Segment) -> int:
    """Where ``segment`` starts in the whole chain: 0 for the first, else the offset its first
    entry (``audit.rotated``) records."""
    entry = first_entry(path)
    if segment.first == 1:
        return 0
    offset = None if entry is None else entry.details.get("offset")
    if entry is None or entry.action != ROTATED or type(offset) is not int:
        raise AuditCorrupt(
            f"{path}: does not begin with the {ROTATED} entry recd writes when it starts a "
            "segment, so where it lies in the chain is unknown"
        )
    return offset


def compress(path: Path) -> Path:
    """Compress segment ``path`` into ``path.gz`` and remove ``path``; the ``.gz``."""
    target = path.with_name(path.name + GZ)
    partial = target.with_name(target.name + PARTIAL)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, MODE)
    try:
        os.fchmod(fd, MODE)
        with os.fdopen(fd, "wb") as raw, path.open("rb") as source:
            with gzip.GzipFile(path.name, "wb", LEVEL, raw, mtime=0) as packed:
                shutil.copyfileobj(source, packed, CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    fsync_dir(path.parent)
    os.unlink(path)
    fsync_dir(path.parent)
    return target


def settle(live: Path, live_fd: int) -> list[str]:
    """Undo a rotation a crash interrupted before its new log took the name ``live``, and
    finish a compression it interrupted after the ``.gz`` was complete; what was done, to log.

    Call with the live log locked (``live_fd``): no other recd is rotating it then.
    """
    done: list[str] = []
    directory = live.parent
    names = os.listdir(directory)
    prepared = f"{live.name}{NEW}"
    if prepared in names:
        os.unlink(directory / prepared)
        done.append(f"removed {directory / prepared}, left by a rotation that did not finish")
    here = os.fstat(live_fd)
    plain = {s.name: s for s in segments(live.name, names) if not s.compressed}
    for name in names:
        if name.endswith(GZ + PARTIAL) and parse_segment(live.name, name[: -len(PARTIAL)]):
            os.unlink(directory / name)
            done.append(f"removed {directory / name}, a compression that did not finish")
        elif (
            name in plain
            and here.st_nlink > 1
            and os.path.samestat(os.stat(directory / name), here)
        ):
            os.unlink(directory / name)
            done.append(f"removed {directory / name}, a rotation that did not finish")
        elif name.endswith(GZ) and name[: -len(GZ)] in plain:
            os.unlink(directory / name[: -len(GZ)])
            done.append(f"removed {directory / name[: -len(GZ)]}, compressed as {name}")
    if done:
        fsync_dir(directory)
    return done


def lines_of(path: Path, skip: int) -> Iterator[bytes]:
    """The bytes of a segment from ``skip`` on, in chunks; ``AuditCorrupt`` for a damaged
    gzip stream."""
    try:
        with open_segment(path) as file:
            while skip > 0:
                dropped = len(file.read(min(CHUNK, skip)))
                if not dropped:
                    return
                skip -= dropped
            while chunk := file.read(CHUNK):
                yield chunk
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise AuditCorrupt(f"{path}: not a complete gzip file ({exc})") from None


def segment_entries(path: Path) -> Iterator[tuple[AuditEntry, int]]:
    """The entries of one segment, each with the bytes read through its line; ``AuditCorrupt``
    for a line that does not parse, a missing last newline or a damaged gzip stream."""
    pending = b""
    done = 0
    for chunk in lines_of(path, 0):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            try:
                entry = parse_sealed(line + b"\n")
            except ValueError as exc:
                raise AuditCorrupt(f"{path}: entry at byte {done}: {exc}") from None
            done += len(line) + 1
            yield entry, done
    if pending:
        raise AuditCorrupt(f"{path}: entry at byte {done}: no newline at the end of the file")
