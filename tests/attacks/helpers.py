"""Shared by the attack modules: a victim file outside every tree (``Victim``: recd must never
reach it), a writer process that keeps a recording open for appending, and an estate whose
recordings are due by the start time their names give (an mtime set by hand cannot make them due).

``OPEN`` is the reason recd gives, word for word, for a file it will not erase yet because a
process has it open for writing; ``SECRET`` is what every victim file holds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.helpers import write_estate, write_recording

OPEN = "open for writing by another process"

#: Holds ``argv[1]`` open for appending: "write" appends 100 bytes, "close" closes and exits.
WRITER = """
import sys
f = open(sys.argv[1], "ab")
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("close"):
        break
    f.write(b"x" * 100)
    f.flush()
    print("written", flush=True)
f.close()
"""


class Writer:
    """A process holding ``path`` open for appending until ``close`` (ready once constructed)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._line() == "ready\n"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def write(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("write\n")
        self.proc.stdin.flush()
        assert self._line() == "written\n"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("close\n", timeout=30)


def named_estate(base: Path, settle: str, listen: str | None = None) -> Path:
    """An estate whose pattern takes ``started`` from the name (``L1/<UTC time>-<name>.wav``)."""
    config = write_estate(base, listen=listen)
    text = config.read_text()
    old = "pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'\n"
    new = (
        "pattern = '^(?P<licence>[A-Z0-9-]+)/(?P<started>\\d{14})-[^/]+\\.wav$'\n"
        'started_format = "%Y%m%d%H%M%S"\ntimezone = "UTC"\n'
    )
    assert old in text
    config.write_text(text.replace(old, new).replace('settle = "0s"', f'settle = "{settle}"'))
    return config


def named(base: Path, name: str, age_days: float) -> Path:
    """A recording whose name says it started ``age_days`` ago; its mtime is now."""
    started = (datetime.now(UTC) - timedelta(days=age_days)).strftime("%Y%m%d%H%M%S")
    return write_recording(base, f"L1/{started}-{name}.wav", age_days=0)


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
