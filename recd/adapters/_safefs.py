"""fd-relative path primitives shared by the directory source and the local eraser.

recd runs privileged in directories other users can write to. Every path below a source root is
opened one component at a time relative to the parent's descriptor, with ``O_NOFOLLOW``, and each
directory is checked to be on the root's filesystem, so a symlink or a mount planted anywhere on
the way can never lead outside the root. The root path itself is the operator's and may be a
symlink.
"""

from __future__ import annotations

import errno
import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class CrossesMount(OSError):
    """A directory below the root is on another filesystem (a mount point)."""

    def __init__(self, relpath: str) -> None:
        super().__init__(errno.EXDEV, "is on another filesystem (a mount below the root)", relpath)


def split_relpath(relpath: str) -> list[str]:
    """The components of a '/'-separated path relative to a root; refuses any way out of it."""
    parts = relpath.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"unsafe relative path {relpath!r}")
    return parts


def open_root(path: str) -> tuple[int, int]:
    """Open a source root directory; returns ``(fd, st_dev)``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fd, os.fstat(fd).st_dev
    except BaseException:  # pragma: no cover (fstat on an open fd does not fail)
        os.close(fd)
        raise


def open_subdir(parent_fd: int, name: str, root_dev: int, relpath: str) -> int:
    """Open directory ``name`` in ``parent_fd`` without following a symlink or leaving the fs."""
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        if os.fstat(fd).st_dev != root_dev:
            raise CrossesMount(relpath)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_parent(root_fd: int, root_dev: int, relpath: str) -> tuple[int, str]:
    """Open the directory holding ``relpath``; returns ``(dir_fd, final name)``.

    The caller closes ``dir_fd``. Raises ``OSError`` (``ELOOP``/``ENOTDIR`` for a symlink on the
    way, ``ENOENT`` when gone) or ``CrossesMount``.
    """
    parts = split_relpath(relpath)
    fd = os.dup(root_fd)
    try:
        walked: list[str] = []
        for part in parts[:-1]:
            walked.append(part)
            new_fd = open_subdir(fd, part, root_dev, "/".join(walked))
            os.close(fd)
            fd = new_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)
