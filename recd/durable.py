"""Making files and names durable: the few lines every writer of a state file shares.

A leaf module like ``recd.errors``: it imports only the standard library, so the CLI, the
adapters and the service can all use the one copy.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` durable."""
    dirfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
