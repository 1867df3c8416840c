"""Generate a demo estate: real audio recordings for three licences, and a config for them.

Layout (below ``<dir>/recordings``):
- ``3cx/<ext>/<caller>_<callee>_<YYYYMMDDhhmmss>(<callid>).wav``: a 3CX instance whose every
  recording belongs to licence 3CX-1234-5678 (30 days);
- ``tenants/<licence>/<YYYY>/<MM>/<DD>/<callid>_<caller>_<callee>_<YYYYMMDDThhmmssZ>.wav|.opus``:
  a multi-tenant tree for TEN-0001 (3 months) and TEN-0002 (7 days);
- ``tenants/stray-call.wav``: a file no pattern explains and whose tags name no licence
  (unclassified: kept and listed).
Some recordings are past their deadline, some are not, and two were "just written" (modified
now), so the erase.settle guard holds them back although their deadline has passed.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

RATE = 8000


def tone(seconds: float, freq: float) -> bytes:
    n = int(RATE * seconds)
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / RATE))) for i in range(n)
    )


def write_wav(path: Path, seconds: float, freq: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(tone(seconds, freq))


def write_opus(path: Path, seconds: float, freq: float, tags: dict[str, str]) -> bool:
    """An Ogg Opus file with Vorbis comments, via ffmpeg; False when ffmpeg is absent."""
    if shutil.which("ffmpeg") is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = [arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")]
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={freq}:duration={seconds}:sample_rate=48000",
         "-c:a", "libopus", "-b:a", "16k", *meta, str(path)],
        check=True,
    )  # fmt: skip
    return True


@dataclass(frozen=True)
class Call:
    relpath: str
    started: datetime
    fresh: bool = False  # modified "now": still within erase.settle


def calls(now: datetime) -> list[Call]:
    out = []
    for i, days in enumerate([45, 40, 35, 31, 29, 10, 2]):
        t = (now - timedelta(days=days)).replace(microsecond=0)
        ext = 1001 + i % 3
        name = f"{ext}/0{7700900100 + i}_{ext}_{t:%Y%m%d%H%M%S}({1700 + i}).wav"
        out.append(Call(f"3cx/{name}", t, fresh=(days == 35)))
    for licence, ages in (("TEN-0001", [120, 95, 80, 20]), ("TEN-0002", [12, 9, 8, 3, 1])):
        for i, days in enumerate(ages):
            t = (now - timedelta(days=days)).replace(microsecond=0)
            name = f"{t:%Y/%m/%d}/{9000 + i}_+4420794600{i:02}_+44161496{i:04}_{t:%Y%m%dT%H%M%SZ}"
            out.append(
                Call(f"tenants/{licence}/{name}.wav", t, fresh=(licence, days) == ("TEN-0002", 9))
            )
    return out


def build(root: Path, now: datetime) -> list[Call]:
    """Write the recordings below ``root``; returns what was written."""
    written = calls(now)
    for i, call in enumerate(written):
        path = root / call.relpath
        write_wav(path, seconds=1.5, freq=300 + 40 * i)
        if not call.fresh:
            stamp = call.started.timestamp() + 90  # closed 90 s after the call started
            os.utime(path, (stamp, stamp))
    t = now - timedelta(days=60)
    opus = root / "tenants" / "TEN-0002" / "voicemail" / "vm-0001.opus"
    tags = {"licence": "TEN-0002", "started": t.isoformat(), "caller": "+442079460999"}
    if write_opus(opus, 2.0, 440, tags):
        os.utime(opus, (t.timestamp(), t.timestamp()))
        written.append(Call(str(opus.relative_to(root)), t))
    stray = root / "tenants" / "stray-call.wav"
    write_wav(stray, seconds=1.0, freq=200)
    os.utime(stray, (t.timestamp(), t.timestamp()))
    written.append(Call(str(stray.relative_to(root)), t))
    return written


CONFIG = """\
# Demo configuration written by `make demo`: the embedded default (SQLite, local directories).
[daemon]
state_dir = "{state}"
socket = "{run}/recd.sock"

[erase]
method = "overwrite"
settle = "2m"

[[source]]
name = "pbx1"
type = "directory"
path = "{recordings}/3cx"
licence = "3CX-1234-5678"
pattern = '^(?P<extension>\\d+)/(?P<caller>[^_/]+)_(?P<callee>[^_/]+)_(?P<started>\\d{{14}})\\((?P<call_id>\\d+)\\)\\.wav$'
started_format = "%Y%m%d%H%M%S"
timezone = "UTC"

[[source]]
name = "tenants"
type = "directory"
path = "{recordings}/tenants"
pattern = '^(?P<licence>[A-Z0-9-]+)/\\d{{4}}/\\d{{2}}/\\d{{2}}/(?P<call_id>[^_/]+)_(?P<caller>[^_/]+)_(?P<callee>[^_/]+)_(?P<started>\\d{{8}}T\\d{{6}}Z)\\.(wav|opus|mp3)$'
started_format = "%Y%m%dT%H%M%SZ"
tags = true
"""

LICENCES = {
    "acme.toml": ("3CX-1234-5678", "Acme Ltd", "30d"),
    "globex.toml": ("TEN-0001", "Globex Corporation", "3mo"),
    "initech.toml": ("TEN-0002", "Initech", "7d"),
}


def write_config(base: Path) -> Path:
    """Write ``base/etc/recd.toml`` and its licence files; returns the config path."""
    etc = base / "etc"
    (etc / "licences.d").mkdir(parents=True, exist_ok=True)
    config = etc / "recd.toml"
    config.write_text(
        CONFIG.format(state=base / "state", run=base / "run", recordings=base / "recordings")
    )
    for filename, (lid, name, retention) in LICENCES.items():
        (etc / "licences.d" / filename).write_text(
            f'id = "{lid}"\nname = "{name}"\nretention = "{retention}"\n'
        )
    return config


def generate(base: Path, now: datetime | None = None) -> Path:
    """A fresh demo estate below ``base``; returns its config path."""
    if base.exists():
        shutil.rmtree(base)
    build(base / "recordings", now or datetime.now(UTC))
    return write_config(base)
