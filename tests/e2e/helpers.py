"""Run `recd` and `recctl` as real subprocesses on an estate written to disk."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

CONFIG = """\
[daemon]
state_dir = "{base}/state"
socket = "{base}/recd.sock"

[erase]
settle = "0s"
verify = {verify}

[safety]
min_breaker_count = 100000

[[source]]
name = "pbx"
type = "directory"
path = "{base}/recordings"
pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'
"""


def write_estate(base: Path, *, verify: bool = False) -> Path:
    """Config + licence files below ``base``; returns the config path."""
    (base / "recordings").mkdir(parents=True, exist_ok=True)
    (base / "licences.d").mkdir(exist_ok=True)
    (base / "licences.d" / "l1.toml").write_text('id = "L1"\nname = "One"\nretention = "30d"\n')
    config = base / "recd.toml"
    config.write_text(CONFIG.format(base=base, verify=str(verify).lower()))
    return config


def write_recording(base: Path, relpath: str, age_days: float, size: int = 4096) -> Path:
    path = base / "recordings" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    stamp = (datetime.now(UTC) - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RECD_")}
    keep.pop("NOTIFY_SOCKET", None)
    return keep


def recd(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd", *args],
        capture_output=True, text=True, env=env(), check=check, timeout=120,
    )  # fmt: skip


def recctl(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from recd.recctl import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False, capture_output=True, text=True, env=env(), timeout=120,
    )  # fmt: skip
