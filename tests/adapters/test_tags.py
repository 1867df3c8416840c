"""recd.adapters.tags: tags and stream facts from real WAV, MP3, Ogg, Opus and FLAC files."""

from __future__ import annotations

import errno
import io
import logging
import os
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen import flac as _flac
from mutagen import id3 as _id3
from mutagen import oggvorbis as _oggvorbis

from recd.adapters.tags import MutagenTagReader
from tests.audio import (
    FORMATS,
    append_chunk,
    have_ffmpeg,
    info_chunk,
    needs_ffmpeg,
    write_encoded,
    write_wav,
)

# mutagen is untyped; aliases keep mypy --strict quiet at the call sites.
FLAC: Any = _flac.FLAC
ID3: Any = _id3.ID3
TXXX: Any = _id3.TXXX
OGG: Any = _oggvorbis.OggVorbis

READER = MutagenTagReader()
CALL_TAGS = {
    "licence": "ACME-0001",
    "call_id": "c0ffee42",
    "caller": "+442071234567",
    "callee": "1001",
    "extension": "1001",
    "started": "2026-11-20T10:30:00Z",
    "Mixed_Case": "kept",
}
EXPECTED_CALL_TAGS = {k.lower(): v for k, v in CALL_TAGS.items()}


def read(path: Path, name: str | None = None) -> dict[str, str]:
    """Read as the service does: an fd opened without following symlinks, wrapped by fdopen."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fileobj:
        return READER.read(fileobj, name or path.name)


def read_bytes(data: bytes, name: str = "x.wav") -> dict[str, str]:
    return READER.read(io.BytesIO(data), name)


def without_duration(tags: dict[str, str]) -> tuple[dict[str, str], float]:
    rest = dict(tags)
    return rest, float(rest.pop("duration"))


def raw_info(*entries: tuple[bytes, bytes]) -> bytes:
    """A LIST/INFO chunk from raw (id, value) bytes, for ids and values info_chunk refuses."""
    body = b"INFO"
    for ident, value in entries:
        body += ident + struct.pack("<I", len(value)) + value + b"\0" * (len(value) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def chunk(ident: bytes, data: bytes) -> bytes:
    return ident + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


# --- WAV -----------------------------------------------------------------------------------------


def test_wav_riff_info_after_the_audio_data(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "a.wav", info={"ICMT": "ACME-0001", "INAM": "Call 23", "LICN": "ACME-0002"}
    )
    assert read(path) == {
        "icmt": "ACME-0001",
        "inam": "Call 23",
        "licn": "ACME-0002",
        "format": "wav",
        "duration": "1",
    }


@needs_ffmpeg
def test_wav_riff_info_before_the_audio_data_as_ffmpeg_writes_it(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "f.wav", "wav", {"title": "Call 23", "comment": "ACME"})
    tags = read(path)
    assert (tags["inam"], tags["icmt"], tags["format"], tags["duration"]) == (
        "Call 23",
        "ACME",
        "wav",
        "1",
    )


def test_wav_id3_chunk(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "a.wav",
        seconds=2.5,
        id3={**CALL_TAGS, "TIT2": "Title", "COMM": "a note", "TPE1": "Agent"},
    )
    assert read(path) == {
        **EXPECTED_CALL_TAGS,
        "title": "Title",
        "comment": "a note",
        "artist": "Agent",
        "format": "wav",
        "duration": "2.5",
    }


def test_wav_id3_values_win_over_riff_info_values(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "a.wav",
        info={"LICN": "from-info", "ICMT": "info only"},
        id3={"licn": "from-id3"},
    )
    assert read(path) == {
        "licn": "from-id3",
        "icmt": "info only",
        "format": "wav",
        "duration": "1",
    }


def test_riff_info_text_encodings_and_terminators(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    append_chunk(
        path,
        raw_info(
            (b"IART", "Zoë Müller".encode()),  # UTF-8
            (b"ICMT", "Café".encode("latin-1")),  # not UTF-8: read as Latin-1
            (b"INAM", b"ACME\0left-over garbage"),  # the value ends at the first NUL
            (b"ISFT", b"odd"),  # odd length: padded to even
            (b"IKEY", b"  spaced  \0"),
            (b"ISBJ", b"   \0"),  # blank: left out
            (b"\x00\x01ab", b"binary id"),  # not an id: skipped, the next one still read
            (b"ab c", b"space in id"),
            (b"IENG", b"after"),
        ),
    )
    assert read(path) == {
        "iart": "Zoë Müller",
        "icmt": "Café",
        "inam": "ACME",
        "isft": "odd",
        "ikey": "spaced",
        "ab c": "space in id",
        "ieng": "after",
        "format": "wav",
        "duration": "1",
    }


def test_a_truncated_riff_info_entry_keeps_what_came_before(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    body = b"INFO" + chunk(b"INAM", b"kept") + b"ICMT" + struct.pack("<I", 100) + b"short"
    append_chunk(path, b"LIST" + struct.pack("<I", len(body)) + body)
    assert read(path) == {"inam": "kept", "format": "wav", "duration": "1"}


def test_riff_chunks_of_odd_size_are_padded(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    append_chunk(path, chunk(b"junk", b"odd"))
    append_chunk(path, info_chunk({"INAM": "after odd chunk"}))
    assert read(path)["inam"] == "after odd chunk"


def test_other_list_chunks_are_ignored(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    append_chunk(path, chunk(b"LIST", b"adtl" + chunk(b"labl", b"\1\0\0\0marker")))
    assert read(path) == {"format": "wav", "duration": "1"}


def test_an_oversized_list_chunk_is_skipped_unread(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav")
    append_chunk(path, info_chunk({"ICMT": "x" * 1000, "IPAD": "p" * (64 * 1024)}))
    append_chunk(path, info_chunk({"INAM": "second list"}))
    assert read(path) == {"inam": "second list", "format": "wav", "duration": "1"}


def test_the_chunk_walk_is_bounded(tmp_path: Path) -> None:
    near = write_wav(tmp_path / "near.wav")
    far = write_wav(tmp_path / "far.wav")
    # fmt and data are chunks 1 and 2; 61 junk chunks put INFO at 64, 62 at 65.
    for path, junk in ((near, 61), (far, 62)):
        for _ in range(junk):
            append_chunk(path, chunk(b"junk", b""))
        append_chunk(path, info_chunk({"INAM": "found"}))
    assert read(near)["inam"] == "found"
    assert "inam" not in read(far)


def test_long_values_are_dropped_not_truncated(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "a.wav",
        info={"ICMT": "x" * 1025, "INAM": "y" * 1024},
        id3={"caller": "z" * 1025, "callee": "w" * 1024},
    )
    assert read(path) == {
        "inam": "y" * 1024,
        "callee": "w" * 1024,
        "format": "wav",
        "duration": "1",
    }


def test_the_number_of_tags_is_capped(tmp_path: Path) -> None:
    path = write_wav(
        tmp_path / "a.wav",
        info={f"I{n:03d}": "v" for n in range(300)},
        id3={f"t{n}": "v" for n in range(10)},
    )
    tags = read(path)
    assert len(tags) == 256 + 2
    assert all(f"t{n}" in tags for n in range(10))
    assert (tags["format"], tags["duration"]) == ("wav", "1")


def write_sparse_wav(path: Path, data_size: int, trailer: bytes) -> None:
    """A WAV whose data chunk is ``data_size`` bytes of holes, followed by ``trailer``."""
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    with path.open("wb") as f:
        f.write(b"RIFF\0\0\0\0WAVE" + chunk(b"fmt ", fmt))
        f.write(b"data" + struct.pack("<I", data_size))
        f.seek(data_size, os.SEEK_CUR)
        f.write(trailer)
        size = f.tell() - 8
        f.seek(4)
        f.write(struct.pack("<I", size))


class CountingFile(io.FileIO):
    """A real file that counts the bytes read through it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count or 0
        return count or 0


def test_the_audio_data_is_skipped_not_read(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    write_sparse_wav(path, 400_000_000, info_chunk({"ICMT": "ACME-0001"}))
    with CountingFile(path, "r") as f:
        tags = READER.read(f, "long.wav")
        assert f.bytes_read < 64 * 1024
    assert tags == {"icmt": "ACME-0001", "format": "wav", "duration": "25000"}


# --- MP3, Ogg Vorbis, Opus, FLAC -----------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_encoded_formats(tmp_path: Path, fmt: str) -> None:
    path = write_encoded(tmp_path / f"call.{fmt}", fmt, CALL_TAGS)
    tags, duration = without_duration(read(path))
    assert tags.pop("format") == fmt
    assert duration == pytest.approx(1.0, abs=0.2)
    tags.pop("encoder", None)  # ffmpeg's own version tag (Vorbis comments)
    assert tags == EXPECTED_CALL_TAGS


@needs_ffmpeg
def test_mp3_common_id3_frames(tmp_path: Path) -> None:
    path = write_encoded(
        tmp_path / "a.mp3", "mp3", {"title": "Call 23", "comment": "note", "artist": "Agent"}
    )
    tags, _ = without_duration(read(path))
    # TSSE (ffmpeg's encoder frame) is not one of the mapped frames, so it is left out.
    assert tags == {"title": "Call 23", "comment": "note", "artist": "Agent", "format": "mp3"}


@needs_ffmpeg
def test_first_of_several_values_wins(tmp_path: Path) -> None:
    flac = write_encoded(tmp_path / "a.flac", "flac")
    audio = FLAC(flac)
    audio["caller"] = ["first", "second"]
    audio["CALLER"] = audio["caller"]  # case-insensitive: the same field
    audio.tags.append(("Callee", "  "))  # blank values are skipped...
    audio.tags.append(("CALLEE", "1001"))  # ...so a later one can fill the name
    audio.save()
    assert (read(flac)["caller"], read(flac)["callee"]) == ("first", "1001")
    mp3 = write_encoded(tmp_path / "a.mp3", "mp3")
    id3 = ID3(mp3)
    id3.add(TXXX(encoding=3, desc="Caller", text=["one", "two"]))
    id3.add(TXXX(encoding=3, desc="empty", text=[]))
    id3.save()
    tags = read(mp3)
    assert tags["caller"] == "one"
    assert "empty" not in tags


@needs_ffmpeg
def test_stream_facts_replace_tags_of_the_same_name(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "a.ogg", "ogg", {"format": "evil", "duration": "99999"})
    tags = read(path)
    assert tags["format"] == "ogg"
    assert float(tags["duration"]) == pytest.approx(1.0, abs=0.2)


@needs_ffmpeg
def test_a_duration_tag_never_stands_in_for_the_stream_fact(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "a.opus", "opus", {"duration": "99999", "caller": "1001"})
    # Cut after the comment header: mutagen reads the tags but the length comes out negative.
    head = path.read_bytes()[:300]
    tags = read_bytes(head, "a.opus")
    tags.pop("encoder")  # ffmpeg's own version tag
    assert tags == {"caller": "1001", "format": "opus"}


@needs_ffmpeg
def test_a_long_vorbis_comment_is_dropped(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "a.opus", "opus", {"caller": "9" * 1025, "callee": "1001"})
    tags = read(path)
    assert "caller" not in tags
    assert tags["callee"] == "1001"


# --- the file is read only through the given file object -----------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_name_that_does_not_exist_is_never_opened(tmp_path: Path, fmt: str) -> None:
    data = write_encoded(tmp_path / f"real.{fmt}", fmt, {"caller": "1001"}).read_bytes()
    buffer = io.BytesIO(data)
    buffer.name = f"/nonexistent/dir/elsewhere.{fmt}"
    tags = READER.read(buffer, f"no/such/dir/x.{fmt}")
    assert tags["format"] == fmt
    # ffmpeg's WAV muxer writes only standard RIFF INFO ids, so a custom tag cannot be in it.
    assert tags.get("caller") == (None if fmt == "wav" else "1001")


def test_the_name_only_hints_the_type(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", info={"INAM": "x"})
    assert read(path, "misnamed.mp3") == {"inam": "x", "format": "wav", "duration": "1"}


# --- unreadable files ----------------------------------------------------------------------------

RNG = random.Random(20261120)
GARBAGE = RNG.randbytes(4096)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"", "empty.wav"),
        (b"RIF", "short.wav"),
        (GARBAGE, "garbage.wav"),
        (GARBAGE, "garbage.mp3"),
        (GARBAGE, "garbage.flac"),
        (GARBAGE, "garbage.opus"),
        (b"fLaC" + GARBAGE, "x.flac"),
        (b"OggS" + GARBAGE, "x.ogg"),
        (b"ID3\x04\0\0\x7f\x7f\x7f\x7f" + GARBAGE, "x.mp3"),
        (b"RIFF\x10\0\0\0AVI LIST\x04\0\0\0INFO", "x.avi"),  # RIFF, but not WAVE
    ],
)
def test_garbage_gives_nothing(data: bytes, name: str) -> None:
    assert read_bytes(data, name) == {}


@needs_ffmpeg
def test_an_index_error_inside_mutagen_gives_nothing(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "a.ogg", "ogg", {"started": "2026-11-20T10:30:00Z"})
    data = bytearray(path.read_bytes())
    # The last comment's length now runs past the packet, so mutagen reads an empty framing
    # byte and indexes it: an IndexError, not a MutagenError (found by fuzzing).
    at = data.index(b"started=") - 4
    struct.pack_into("<I", data, at, 0x7FFF)
    with pytest.raises(IndexError):
        OGG(io.BytesIO(bytes(data)))
    assert read_bytes(bytes(data), "a.ogg") == {}


def test_a_wav_with_only_a_header_says_wav() -> None:
    assert read_bytes(b"RIFF\x04\0\0\0WAVE") == {"format": "wav"}


def test_a_truncated_wav_keeps_what_it_could_read(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", info={"INAM": "x"}, id3={"licence": "L"})
    data = path.read_bytes()
    assert read_bytes(data[:40]) == {"format": "wav", "duration": "0"}
    # Cut inside the INFO list: mutagen cannot walk the chunks; nothing after the cut is read.
    assert read_bytes(data[: data.index(b"LIST") + 20]) == {"format": "wav", "duration": "1"}


def test_mutagen_failures_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="recd.adapters.tags"):
        assert read_bytes(GARBAGE, "garbage.flac") == {}
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("no tags read from garbage.flac: ")


def test_a_closed_file_gives_nothing(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", info={"INAM": "x"})
    f = path.open("rb")
    f.close()
    assert READER.read(f, "a.wav") == {}


def test_a_pipe_gives_nothing(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    data = write_wav(tmp_path / "a.wav", info={"INAM": "x"}).read_bytes()
    r, w = os.pipe()
    os.write(w, data[:4096])
    os.close(w)
    with os.fdopen(r, "rb") as f, caplog.at_level(logging.DEBUG, logger="recd.adapters.tags"):
        assert READER.read(f, "fifo.wav") == {}
    assert caplog.messages[-1].startswith("cannot read fifo.wav: ")


class FailingAfter(io.BytesIO):
    """Real bytes whose reads past ``limit`` fail like a bad disk sector (EIO)."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.limit:
            raise OSError(errno.EIO, "Input/output error")
        return super().read(size)


def test_an_io_error_while_walking_chunks_keeps_what_was_read(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    path = write_wav(tmp_path / "a.wav")
    append_chunk(path, info_chunk({"INAM": "first"}))
    append_chunk(path, chunk(b"junk", b"x" * 100))
    data = path.read_bytes()
    with caplog.at_level(logging.DEBUG, logger="recd.adapters.tags"):
        tags = READER.read(FailingAfter(data, len(data) - 100), "a.wav")
    assert tags == {"inam": "first", "format": "wav", "duration": "1"}
    assert caplog.messages[-1] == "RIFF INFO of a.wav unreadable: [Errno 5] Input/output error"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    base = tmp_path_factory.mktemp("samples")
    files = [write_wav(base / "a.wav", 0.2, info={"INAM": "x"}, id3={"licence": "L"})]
    if have_ffmpeg():
        files += [write_encoded(base / f"a.{f}", f, {"licence": "L"}, 0.2) for f in FORMATS]
    return [(p.name, p.read_bytes()) for p in files]


def mutations() -> st.SearchStrategy[list[tuple[int, int]]]:
    return st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 100), flips=mutations(), cut=st.one_of(st.none(), st.integers(0)))
def test_property_damaged_files_never_raise(
    samples: list[tuple[str, bytes]], pick: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    name, original = samples[pick % len(samples)]
    data = bytearray(original)
    for offset, value in flips:
        data[offset % len(data)] = value
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    tags = read_bytes(bytes(data), name)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    assert len(tags) <= 258
