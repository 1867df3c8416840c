"""Fixtures and helpers the attack modules share."""

from __future__ import annotations

import os
from pathlib import Path

SECRET = b"root-owned data outside every source"


class Victim:
    """A file outside every tree (at the relpath a recording had, where that matters),
    backdated so that it would be due if recd ever reached it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SECRET)
        os.utime(path, (1_000_000_000, 1_000_000_000))
        self.path = path
        self.st = path.stat()

    def untouched(self) -> bool:
        st = self.path.stat()
        return self.path.read_bytes() == SECRET and (st.st_ino, st.st_mtime_ns) == (
            self.st.st_ino, self.st.st_mtime_ns,
        )  # fmt: skip
