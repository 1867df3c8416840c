"""The closed segments beside a live audit log, on disk: listing, reading, compressing, and
settling what a crash left half done (``recd.adapters.auditlog`` only).

Each step that creates a name writes the file under a temporary name first, ``fsync``s it, then
renames it into place and ``fsync``s the directory: a crash leaves either the old state, the new
one, or a temporary file that ``settle`` removes. A compressed segment replaces the plain one
only once it is complete (``.gz.tmp``, ``fsync``, rename to ``.gz``); the plain file is removed
after.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

from recd.core.audit import AuditEntry, parse_sealed
from recd.core.auditsegments import GZ, NEW, PARTIAL, ROTATED, Segment, parse_segment, segments
from recd.errors import AuditCorrupt

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
MODE = 0o640  # group recd-admin may read it (recctl audit verify, ls)
#: gzip's default level 6 costs about three times level 1's time for a few per cent less:
#: a rotation runs on the daemon's loop, so the cheap level keeps it short.
LEVEL = 1


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` durable."""
    dirfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


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
