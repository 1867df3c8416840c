"""Audio tags and stream facts of an open recording, read with mutagen (``ports.TagReader``).

Reads WAV (RIFF ``LIST``/``INFO`` chunk and ``id3 `` chunk), MP3 (ID3), Ogg Vorbis, Ogg Opus
and FLAC (Vorbis comments), and returns lower-cased tag names mapped to the first non-blank
value, plus the stream facts ``duration`` (seconds as text, e.g. ``"12.5"``) and ``format``
(``wav``, ``mp3``, ``ogg``, ``opus`` or ``flac``).

Names: ID3 ``TXXX`` frames by their description (``TXXX:licence`` -> ``licence``); a few common
ID3 frames by meaning (``TIT2`` -> ``title``, ``TPE1`` -> ``artist``, ``COMM`` -> ``comment``
...); Vorbis comments by their field name; RIFF INFO entries by their four-character id,
lower-cased, standard or custom (``ICMT`` -> ``icmt``, ``INAM`` -> ``inam``, a PBX's own
``LICN`` -> ``licn``). An operator maps them to fields through the source's tag names, e.g.
``[source.tag_names]`` ``licence = ["licence", "licn"]`` and ``call_id = ["call_id", "icmt"]``.
When a WAV file has both, its ID3 values win over INFO ones (ID3 declares its text encoding;
INFO does not, and is read as UTF-8, else Latin-1).

Invariants: ``read`` never raises, whatever the bytes (an unreadable, truncated or garbage file
gives ``{}`` or what could be read before the damage); the file is read only through the file
object the caller opened safely, never reopened by name; the RIFF parser walks a bounded number
of chunk headers, seeks over audio data rather than reading it, and reads at most one
``_MAX_LIST``-byte INFO list. Values longer than ``_MAX_VALUE`` characters are dropped rather
than truncated (a cut value would be silently wrong), as are keys beyond ``_MAX_KEYS``.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Iterable
from typing import IO, Any

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TXXX
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

logger = logging.getLogger(__name__)

_FORMATS: dict[type[Any], str] = {
    WAVE: "wav",
    MP3: "mp3",
    OggVorbis: "ogg",
    OggOpus: "opus",
    FLAC: "flac",
}

#: ID3 frames read besides TXXX, by the name Vorbis comments use for the same thing.
_ID3_NAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TALB": "album",
    "TCON": "genre",
    "TDRC": "date",
    "TCOP": "copyright",
    "COMM": "comment",
}

_MAX_VALUE = 1024  # characters
_MAX_KEYS = 256
_MAX_CHUNKS = 64  # top-level RIFF chunks walked before giving up
_MAX_LIST = 64 * 1024  # bytes; a larger LIST chunk is skipped unread
_INFO_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9 ]{3}")
_STREAM_FACTS = ("duration", "format")


class MutagenTagReader:
    """``ports.TagReader`` over mutagen, plus a small RIFF INFO parser mutagen lacks."""

    def read(self, fileobj: IO[bytes], name: str) -> dict[str, str]:
        """Tags and stream facts of ``fileobj``; ``name`` (relative path) only hints the type.

        Never raises: what cannot be read is left out.
        """
        found: dict[str, str] = {}
        facts: dict[str, str] = {}
        audio = _load(fileobj, name)
        if audio is not None:
            _add(found, _mutagen_tags(audio.tags))
            facts["format"] = _FORMATS[type(audio)]
            length = getattr(audio.info, "length", None)
            if isinstance(length, int | float) and math.isfinite(length) and length >= 0:
                facts["duration"] = f"{length:.3f}".rstrip("0").rstrip(".")
        info: dict[str, str] = {}
        if _riff_info(fileobj, name, info):
            facts.setdefault("format", "wav")
        _add(found, info.items())
        for key in _STREAM_FACTS:
            found.pop(key, None)
        found.update(facts)
        return found


def _load(fileobj: IO[bytes], name: str) -> Any:
    try:
        fileobj.seek(0)
        # filename= only names the file for mutagen's type scoring; with a file object given,
        # mutagen reads that object and opens nothing.
        return mutagen.File(fileobj, filename=name, options=list(_FORMATS))
    # mutagen parses untrusted bytes and fuzzing shows it can raise more than MutagenError
    # (IndexError, struct.error, ...); one bad file must never fail a scan (ports.TagReader).
    except Exception as exc:
        logger.debug("no tags read from %s: %s", name, exc)
        return None


def _add(found: dict[str, str], items: Iterable[tuple[str, str]]) -> None:
    for raw_key, raw_value in items:
        if len(found) >= _MAX_KEYS:
            return
        key, value = raw_key.strip().lower(), raw_value.strip()
        if key and value and len(value) <= _MAX_VALUE:
            found.setdefault(key, value)


def _mutagen_tags(tags: Any) -> list[tuple[str, str]]:
    if tags is None:
        return []
    if isinstance(tags, ID3):
        frames: Any = tags  # mutagen's ID3 methods are untyped
        items = []
        for frame in frames.values():
            if isinstance(frame, TXXX):
                key = str(getattr(frame, "desc", ""))
            else:
                key = _ID3_NAMES.get(frame.FrameID, "")
            text = getattr(frame, "text", None)
            if key and text:
                items.append((key, str(text[0])))
        return items
    # Vorbis comments (Ogg Vorbis, Opus, FLAC): a list of (name, value) pairs in file order.
    return [(str(key), str(value)) for key, value in tags]


def _riff_info(fileobj: IO[bytes], name: str, out: dict[str, str]) -> bool:
    """Fill ``out`` from the LIST/INFO chunk of a RIFF/WAVE file; False if not RIFF/WAVE."""
    try:
        fileobj.seek(0)
        header = fileobj.read(12)
    except (OSError, ValueError) as exc:
        logger.debug("cannot read %s: %s", name, exc)
        return False
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return False
    try:
        _walk_chunks(fileobj, out)
    except (OSError, ValueError) as exc:
        logger.debug("RIFF INFO of %s unreadable: %s", name, exc)
    return True


def _walk_chunks(fileobj: IO[bytes], out: dict[str, str]) -> None:
    position = 12
    for _ in range(_MAX_CHUNKS):
        fileobj.seek(position)
        chunk = fileobj.read(8)
        if len(chunk) < 8:
            return
        size = struct.unpack("<I", chunk[4:])[0]
        if chunk[:4] == b"LIST" and size <= _MAX_LIST:
            body = fileobj.read(size)
            if body[:4] == b"INFO":
                _info_entries(body[4:], out)
        # RIFF pads every chunk to an even length.
        position += 8 + size + (size & 1)


def _info_entries(body: bytes, out: dict[str, str]) -> None:
    position = 0
    while position + 8 <= len(body) and len(out) < _MAX_KEYS:
        ident, size = body[position : position + 4], struct.unpack_from("<I", body, position + 4)[0]
        value = body[position + 8 : position + 8 + size]
        if len(value) < size:
            return  # truncated entry: keep what came before it
        position += 8 + size + (size & 1)
        if not _INFO_ID.fullmatch(ident):
            continue
        text = _decode(value.split(b"\0", 1)[0]).strip()
        if text and len(text) <= _MAX_VALUE:
            out.setdefault(ident.decode("ascii").strip().lower(), text)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
