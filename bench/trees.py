"""Millions of empty recordings, fast: the tree of the 10M-recording memory benchmark.

``make_empty_tree`` makes the names ``bench.common.make_tree`` makes (``PATTERN``, ``per_dir``
files to a directory ``1000``, ``1001``, ...), but empty and with one system call a file:
``mknod`` relative to the directory's descriptor, no descriptor opened per file and no
``utime``. The files' mtime is therefore their creation time, not ``age_days`` ago: recd takes
``started`` (and with it the deadline) from the name, and reads the mtime only to tell whether
a due file has settled, so for a tree in which nothing is due the catalogue holds the same
recordings, licences, start times and deadlines as ``make_tree``'s
(``tests/test_bench.py``).

Most of what remains is the kernel allocating inodes, and on ext4 that can be slow: without a
journal, ext4 will not reuse an inode freed in the last minute or so, and checks every such one
it passes in its group's bitmap for each new file; right after a large tree was removed
(``workdir`` removes every bench tree) a file could cost ~650 us of kernel time. The root is
therefore marked as the top of a directory hierarchy (``chattr +T``, best effort: only ext2/3/4
know it), so that ext4's Orlov allocator spreads the directories over block groups with more
free inodes than average instead of putting them beside their parent, and each directory is
made under a random name and then renamed (Orlov starts from a hash of the name: the fixed
names ``1000``, ``1001``, ... would pick the groups the previous run's tree has just freed).
Measured on this machine's ext4 (no journal, trees made and removed all day), 50k files, same
run: ``make_tree`` ~1,200 files/s, this ~12,000-14,000 files/s; on tmpfs (no allocation cost)
~100k vs ~210k files/s.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000  # linux/fs.h; not JOURNAL_DATA (0x4000)


def make_empty_tree(root: Path, count: int, *, per_dir: int = 1000, age_days: float = 1) -> None:
    """``count`` empty 3CX-named files, ``per_dir`` to a directory, started ``age_days`` ago
    by name."""
    name_time = (datetime.now(UTC) - timedelta(days=age_days)).strftime("%Y%m%d%H%M%S")
    mode = stat.S_IFREG | 0o640
    mknod = os.mknod
    root.mkdir(parents=True, exist_ok=True)
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mark_topdir(rootfd)
        for d in range((count + per_dir - 1) // per_dir):
            extension = f"{1000 + d}"
            # A random name, then the real one: see the module's docstring.
            scratch = f".{extension}.{os.urandom(8).hex()}"
            os.mkdir(scratch, dir_fd=rootfd)
            os.rename(scratch, extension, src_dir_fd=rootfd, dst_dir_fd=rootfd)
            dfd = os.open(extension, os.O_RDONLY | os.O_DIRECTORY, dir_fd=rootfd)
            try:
                first = d * per_dir
                tail = f"_{extension}_{name_time}("
                for i in range(min(per_dir, count - first)):
                    mknod(f"0770090{i:04}{tail}{first + i}).wav", mode, dir_fd=dfd)
            finally:
                os.close(dfd)
    finally:
        os.close(rootfd)


def mark_topdir(fd: int) -> bool:
    """Set ``FS_TOPDIR_FL`` (``chattr +T``) on the directory open at ``fd``; False where the
    filesystem does not support it."""
    with contextlib.suppress(OSError):
        (flags,) = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
        return True
    return False
