"""Real audio files with tags, for tag-reader, pattern, demo and end-to-end tests.

- ``write_wav(path, seconds=1.0, info=None, id3=None)``: a PCM WAV written with the ``wave``
  module (8 kHz mono 16-bit silence), with an optional RIFF ``LIST``/``INFO`` chunk appended
  after the audio data (keys are four-character ids such as ``"ICMT"`` or a custom
  ``"LICN"``) and an optional ``id3 `` chunk written by mutagen (keys are TXXX descriptions
  such as ``"licence"``, or four-character frame ids such as ``"TIT2"``).
- ``write_encoded(path, fmt, tags=None, seconds=1.0)``: a file encoded by ffmpeg from a
  440 Hz tone, ``fmt`` one of ``wav``, ``mp3``, ``ogg`` (Vorbis), ``opus``, ``flac``; each
  tag is passed as ``-metadata key=value`` (ID3 TXXX / Vorbis comment / RIFF INFO for the few
  names ffmpeg maps, such as ``title`` -> ``INAM``).
- ``have_ffmpeg()`` and the ``needs_ffmpeg`` marker: a test that needs ffmpeg skips without it,
  naming the package (``tests/tools.py``; CI, which installs it, fails such a test instead).

Every writer creates missing parent directories and returns the path it wrote. Files default
to one second at 8 kHz (libopus accepts 8 kHz too), so a test that writes dozens stays fast.
"""

from __future__ import annotations

import struct
import subprocess
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from mutagen import id3 as _id3
from mutagen import wave as _wave

from tests import tools

RATE = 8000

# mutagen is untyped; these aliases keep mypy --strict quiet at the call sites.
id3frames: Any = _id3
WAVE: Any = _wave.WAVE

#: ffmpeg arguments per format: codec and muxer.
_ENCODE: dict[str, tuple[str, ...]] = {
    "wav": ("-c:a", "pcm_s16le", "-f", "wav"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "16k", "-f", "mp3"),
    "ogg": ("-c:a", "libvorbis", "-f", "ogg"),
    "opus": ("-c:a", "libopus", "-b:a", "12k", "-f", "opus"),
    "flac": ("-c:a", "flac", "-f", "flac"),
}
FORMATS = tuple(_ENCODE)


def have_ffmpeg() -> bool:
    """Whether an ``ffmpeg`` executable is on PATH (under ``RECD_TEST_REQUIRE_TOOLS`` a test
    asking fails when it is not: CI must check every format)."""
    return tools.optional("ffmpeg") is not None


#: ffmpeg encodes the MP3/Ogg/Opus/FLAC fixtures.
needs_ffmpeg = pytest.mark.tools("ffmpeg")


def info_chunk(info: Mapping[str, str]) -> bytes:
    """A RIFF ``LIST`` chunk of type ``INFO`` holding ``info`` (NUL-terminated UTF-8 values)."""
    body = b"INFO"
    for key, value in info.items():
        ident = key.encode("ascii")
        if len(ident) != 4:
            raise ValueError(f"RIFF INFO ids have four characters, got {key!r}")
        data = value.encode("utf-8") + b"\0"
        body += ident + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def append_chunk(path: Path, chunk: bytes) -> None:
    """Append a complete chunk to the RIFF file at ``path`` and fix the RIFF size."""
    with path.open("r+b") as f:
        f.seek(0, 2)
        f.write(chunk)
        size = f.tell() - 8
        f.seek(4)
        f.write(struct.pack("<I", size))


def write_wav(
    path: Path,
    seconds: float = 1.0,
    info: Mapping[str, str] | None = None,
    id3: Mapping[str, str] | None = None,
) -> Path:
    """Write an 8 kHz mono 16-bit WAV of silence, with optional RIFF INFO and ID3 tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"\0\0" * round(seconds * RATE))
    if info:
        append_chunk(path, info_chunk(info))
    if id3:
        write_id3(path, id3)
    return path


def write_id3(path: Path, tags: Mapping[str, str]) -> None:
    """Add an ID3 tag to the WAV at ``path`` with mutagen: TXXX frames, or frames by id."""
    audio = WAVE(path)
    audio.add_tags()
    for key, value in tags.items():
        audio.tags.add(_frame(key, value))
    audio.save()


def _frame(key: str, value: str) -> Any:
    if len(key) == 4 and key.isupper() and key in id3frames.Frames:
        if key == "COMM":
            return id3frames.COMM(encoding=3, lang="eng", desc="", text=[value])
        return id3frames.Frames[key](encoding=3, text=[value])
    return id3frames.TXXX(encoding=3, desc=key, text=[value])


def write_encoded(
    path: Path, fmt: str, tags: Mapping[str, str] | None = None, seconds: float = 1.0
) -> Path:
    """Encode a 440 Hz tone as ``fmt`` with ffmpeg, each tag as ``-metadata key=value``."""
    if fmt not in _ENCODE:
        raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata: list[str] = []
    for key, value in (tags or {}).items():
        metadata += ["-metadata", f"{key}={value}"]
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={RATE}:duration={seconds}",
            *metadata, *_ENCODE[fmt], str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path
