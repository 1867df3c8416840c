"""Making files and names durable: the few lines every writer of a state file shares.

A leaf module like ``recd.errors``: it imports only the standard library, so the CLI, the
adapters and the service can all use the one copy. Errors are the ``OSError`` the system gave;
each caller words them for its own people.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` durable."""
    dirfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` whole or not at all, with permissions ``mode``: a temporary
    file in the same directory, synced, renamed over ``path``, and the directory synced. A
    failure before the rename removes the temporary file and leaves ``path`` as it was."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError:
        os.unlink(temporary)
        raise
    fsync_dir(path.parent)
