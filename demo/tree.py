"""The demo estate: real recordings for three licences whose deadlines fall due over the next few
minutes, and a configuration for a live recd.

Layout (below ``<dir>/recordings``):
- ``3cx/<ext>/<caller>_<callee>_<YYYYMMDDhhmmss>(<callid>).wav``: a 3CX instance whose every
  recording belongs to licence 3CX-1234-5678 (Acme Ltd, 30 days);
- ``tenants/<licence>/<YYYY>/<MM>/<DD>/<callid>_<caller>_<callee>_<YYYYMMDDThhmmssZ>.wav``: a
  multi-tenant tree for TEN-0001 (Globex Corporation, 3 calendar months) and TEN-0002 (Initech,
  a retention of minutes, shortened for the demo);
- ``tenants/TEN-0002/voicemail/vm-0001.opus`` (``.wav`` without ffmpeg): a name no pattern
  explains, classified by its audio tags;
- ``tenants/stray-call.wav``: no pattern and no tag names a licence (unclassified: kept).

Timeline, in units of ``pace`` seconds after ``start`` (15 s by default):
- two recordings were due before the demo starts (erased at once);
- one was due hours ago but was "restored from backup" just now: erase.settle (8 paces) keeps it;
- recordings fall due one per pace from 1 to 16 paces, the three licences in turn, and the
  voicemail at 5.5 paces;
- the demo itself records a new Initech call every 4 paces while it runs (``live_call``), which
  falls due 11 paces later;
- the rest fall due in days or months.
Every deadline is a whole second, and every file was closed at least erase.settle before its
deadline (except the restored one), so each is erased at its deadline, not after it.
"""

from __future__ import annotations

import grp
import math
import os
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recd.core.model import recording_id
from recd.core.periods import Period, add_period, parse_period

RATE = 8000
DEFAULT_PACE = 15
SCHEDULED = 16  # recordings falling due one pace apart
SETTLE_PACES = 8  # erase.settle, in paces (2m at the default pace)
SHORT_PACES = 12  # Initech's retention, in paces (3m at the default pace)
LIVE_PACES = 4  # the demo records a new Initech call this often


@dataclass(frozen=True)
class Licence:
    id: str
    name: str
    retention: str
    filename: str
    source: str  # the source whose layout its recordings use


@dataclass(frozen=True)
class Call:
    source: str  # "pbx1" or "tenants"
    relpath: str  # below the source's root
    licence: str | None
    deadline: datetime | None  # as recd will compute it (None: never)
    kind: str  # "overdue", "restored", "due", "later", "voicemail", "unclassified", "live"

    @property
    def id(self) -> str:
        return recording_id(self.source, self.relpath)


@dataclass(frozen=True)
class Estate:
    base: Path
    start: datetime
    pace: int
    calls: tuple[Call, ...]
    licences: tuple[Licence, ...]
    opus: bool  # the voicemail is Opus (ffmpeg found) rather than WAV with ID3 tags

    @property
    def config(self) -> Path:
        return self.base / "etc" / "recd.toml"

    @property
    def socket(self) -> Path:
        return self.base / "run" / "recd.sock"

    @property
    def audit_log(self) -> Path:
        return self.base / "state" / "audit.log"

    @property
    def roots(self) -> dict[str, Path]:
        return {
            "pbx1": self.base / "recordings" / "3cx",
            "tenants": self.base / "recordings" / "tenants",
        }

    @property
    def settle(self) -> timedelta:
        return timedelta(seconds=SETTLE_PACES * self.pace)

    def path(self, call: Call) -> Path:
        return self.roots[call.source] / call.relpath

    def name(self, call: Call) -> str:
        """The call's path below ``recordings``, e.g. ``3cx/1001/...wav``."""
        return str(self.path(call).relative_to(self.base / "recordings"))

    def of_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


def seconds_text(seconds: int) -> str:
    """A duration as recd.toml takes it: "2m" when whole minutes, else "90s"."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def licences(pace: int) -> tuple[Licence, ...]:
    return (
        Licence("3CX-1234-5678", "Acme Ltd", "30d", "acme.toml", "pbx1"),
        Licence("TEN-0001", "Globex Corporation", "3mo", "globex.toml", "tenants"),
        Licence("TEN-0002", "Initech", seconds_text(SHORT_PACES * pace), "initech.toml", "tenants"),
    )


# --- audio -----------------------------------------------------------------------------------


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


def write_tagged_wav(path: Path, seconds: float, freq: float, tags: dict[str, str]) -> None:
    """A WAV file with an ID3 chunk of TXXX frames (what recd reads without ffmpeg around)."""
    import mutagen.id3
    import mutagen.wave

    frames: Any = mutagen.id3  # mutagen is untyped
    wav: Any = mutagen.wave
    write_wav(path, seconds, freq)
    audio = wav.WAVE(str(path))
    audio.add_tags()
    for key, value in tags.items():
        audio.tags.add(frames.TXXX(encoding=3, desc=key, text=[value]))
    audio.save()


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


# --- names -----------------------------------------------------------------------------------


def started_for(deadline: datetime, period: Period) -> datetime | None:
    """The call start whose deadline under ``period`` is ``deadline``; None when calendar
    clamping makes it unreachable (3 months before 31 May is 28 February, due 28 May)."""
    guess = deadline - timedelta(days=30 * period.months, seconds=period.seconds)
    for _ in range(3):
        got = add_period(guess, period)
        if got is None:
            return None
        if got == deadline:
            return guess
        guess += deadline - got
    return None


def relpath(licence: Licence, started: datetime, n: int) -> str:
    if licence.source == "pbx1":
        ext = 1001 + n % 3
        return f"{ext}/0{7700900100 + n}_{ext}_{started:%Y%m%d%H%M%S}({1700 + n}).wav"
    return (
        f"{licence.id}/{started:%Y/%m/%d}/{9000 + n}_+44207946{n:04}_+44161496{n:04}"
        f"_{started:%Y%m%dT%H%M%SZ}.wav"
    )


# --- the estate ------------------------------------------------------------------------------


class _Writer:
    """Writes recordings below the estate's roots and remembers what it wrote."""

    def __init__(self, roots: dict[str, Path], start: datetime, pace: int) -> None:
        self.roots = roots
        self.start = start
        self.pace = pace
        self.calls: list[Call] = []

    def call(
        self, licence: Licence, deadline: datetime, kind: str, closed: datetime | None
    ) -> bool:
        """A recording of ``licence`` due at ``deadline``, closed at ``closed`` (None: now).

        False, writing nothing, when no call start gives that deadline, or when the file would
        have to be closed in the future or within erase.settle of its deadline."""
        started = started_for(deadline, parse_period(licence.retention))
        if started is None:
            return False
        if closed is None and kind != "restored":
            closed = started + timedelta(seconds=min(90, self.pace))
        if closed is not None and (
            closed > self.start or closed + timedelta(seconds=SETTLE_PACES * self.pace) > deadline
        ):
            return False
        n = len(self.calls)
        call = Call(licence.source, relpath(licence, started, n), licence.id, deadline, kind)
        path = self.roots[call.source] / call.relpath
        write_wav(path, seconds=1.0, freq=300 + 20 * (n % 30))
        if closed is not None:
            set_mtime(path, closed)
        self.calls.append(call)
        return True


def build(base: Path, start: datetime, pace: int) -> Estate:
    """Write the recordings below ``base/recordings`` for a demo starting at ``start``."""
    acme, globex, initech = known = licences(pace)
    roots = {"pbx1": base / "recordings" / "3cx", "tenants": base / "recordings" / "tenants"}
    writer = _Writer(roots, start, pace)
    writer.call(acme, start - timedelta(days=2), "overdue", None)
    writer.call(globex, start - timedelta(hours=1), "overdue", None)
    writer.call(acme, start - timedelta(hours=6), "restored", None)  # mtime: now
    cycle = (acme, globex, initech)
    for k in range(1, SCHEDULED + 1):
        deadline = start + timedelta(seconds=k * pace)
        for turn in range(len(cycle)):  # the next licence in turn that can be due then
            if writer.call(cycle[(k + turn) % len(cycle)], deadline, "due", None):
                break
    for licence, days in ((acme, 3), (acme, 20), (globex, 10), (globex, 60), (acme, 27)):
        writer.call(licence, start + timedelta(days=days), "later", None)
    opus = _voicemail(writer, initech, start + timedelta(seconds=round(5.5 * pace)))
    stray = roots["tenants"] / "stray-call.wav"
    write_wav(stray, seconds=1.0, freq=200)
    set_mtime(stray, start - timedelta(days=60))
    writer.calls.append(Call("tenants", "stray-call.wav", None, None, "unclassified"))
    return Estate(base, start, pace, tuple(writer.calls), known, opus)


def _voicemail(writer: _Writer, licence: Licence, deadline: datetime) -> bool:
    """Initech's voicemail, classified by its tags; True when written as Opus."""
    started = deadline - timedelta(seconds=SHORT_PACES * writer.pace)
    tags = {"licence": licence.id, "started": started.isoformat(), "caller": "+442079460999"}
    root = writer.roots["tenants"]
    opus = write_opus(root / "TEN-0002/voicemail/vm-0001.opus", 2.0, 440, tags)
    rel = "TEN-0002/voicemail/vm-0001." + ("opus" if opus else "wav")
    if not opus:
        write_tagged_wav(root / rel, 2.0, 440, tags)
    set_mtime(root / rel, started + timedelta(seconds=min(60, writer.pace)))
    writer.calls.append(Call("tenants", rel, licence.id, deadline, "voicemail"))
    return opus


def live_call(estate: Estate, n: int, now: datetime) -> Call:
    """Record the demo's ``n``-th live Initech call, which ended ``now`` after one pace."""
    initech = estate.licences[2]
    started = now.replace(microsecond=0) - timedelta(seconds=estate.pace)
    deadline = add_period(started, parse_period(initech.retention))
    call = Call("tenants", relpath(initech, started, 500 + n), initech.id, deadline, "live")
    write_wav(estate.path(call), seconds=1.0, freq=500 + 20 * n)
    return call


# --- configuration ---------------------------------------------------------------------------


CONFIG = """\
# Demo configuration written by `make demo`: the embedded default (SQLite, local directories).
[daemon]
state_dir = "{state}"
socket = "{socket}"
# Root and recd's own user may always use recctl; naming your own group here only avoids the
# warning about a missing recd-admin group.
admin_group = "{group}"

[metrics]
listen = "{listen}"

[erase]
method = "overwrite"
settle = "{settle}"

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


def own_group() -> str:
    try:
        return grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return "recd-admin"


def write_config(estate: Estate, listen: str) -> Path:
    """Write ``etc/recd.toml`` and ``etc/licences.d/*.toml``; returns the config path."""
    etc = estate.config.parent
    (etc / "licences.d").mkdir(parents=True, exist_ok=True)
    estate.config.write_text(
        CONFIG.format(
            state=estate.base / "state",
            socket=estate.socket,
            group=own_group(),
            listen=listen,
            settle=seconds_text(SETTLE_PACES * estate.pace),
            recordings=estate.base / "recordings",
        )
    )
    for licence in estate.licences:
        (etc / "licences.d" / licence.filename).write_text(
            f'id = "{licence.id}"\nname = "{licence.name}"\nretention = "{licence.retention}"\n'
        )
    estate.socket.parent.mkdir(mode=0o755, exist_ok=True)  # systemd's RuntimeDirectory=
    return estate.config


def generate(
    base: Path,
    now: datetime | None = None,
    *,
    pace: int = DEFAULT_PACE,
    listen: str = "127.0.0.1:9464",
) -> Estate:
    """A fresh demo estate below ``base`` whose schedule starts at ``now`` (default: now)."""
    if base.exists():
        shutil.rmtree(base)
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    estate = build(base, start, pace)
    write_config(estate, listen)
    return estate
