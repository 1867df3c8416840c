"""The daemon's half of ``recctl backup`` (recd.adapters.snapshot) on a state directory written
here: segments compressed or moved between listing and opening, a live log cut short after the
cut, an empty live log, a torn last entry; every failure leaves no descriptor open and no
snapshot directory behind."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from recd.adapters import snapshot
from recd.adapters.snapshot import Snapshot, close_all
from recd.core.backup import audit_order
from tests.auditchains import write_chain


def fds_open() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def state_with_segment(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    write_chain(state, [("audit.log.1-3", 1, 3), ("audit.log", 4, 5)])
    return state


def compress(state: Path, name: str) -> None:
    """What rotation does to a closed segment: ``name.gz`` written, ``name`` removed."""
    (state / f"{name}.gz").write_bytes(gzip.compress((state / name).read_bytes()))
    (state / name).unlink()


def test_a_segment_compressed_between_listing_and_opening_is_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = state_with_segment(tmp_path)
    listed: list[list[str]] = []

    def compress_once_listed(names: list[str]) -> list[str]:
        listed.append(sorted(names))
        if len(listed) == 1:
            compress(state, "audit.log.1-3")
        return audit_order(names)

    monkeypatch.setattr(snapshot, "audit_order", compress_once_listed)
    snap = Snapshot(state)
    cut = snap.cut()
    try:
        assert listed == [["audit.log.1-3"], ["audit.log.1-3.gz"]]
        assert [h.name for h in cut.segments] == ["audit.log.1-3.gz"]
        assert cut.last is not None and (cut.last.seq, cut.end) == (5, cut_size(state))
    finally:
        close_all([cut.live, *(h.fd for h in cut.segments)])
        snap.remove()


def cut_size(state: Path) -> int:
    return (state / "audit.log").stat().st_size


def test_a_segment_that_keeps_moving_is_an_error_and_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved away after each of the three listings: the last attempt's error is raised (the
    admin command says it), no descriptor stays open, the snapshot directory goes."""
    state = state_with_segment(tmp_path)
    names = ["audit.log.1-3", "audit.log.1-3.gz"]

    def moved_once_listed(listed: list[str]) -> list[str]:
        old, new = names if names[0] in listed else names[::-1]
        (state / old).rename(state / new)
        return audit_order(listed)

    monkeypatch.setattr(snapshot, "audit_order", moved_once_listed)
    before = fds_open()
    snap = Snapshot(state)
    with pytest.raises(FileNotFoundError):
        snap.cut()
    snap.remove()
    assert fds_open() == before
    assert list(state.glob(".backup-*")) == []


def test_a_live_log_cut_short_after_the_cut_is_an_error_and_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    state = state_with_segment(tmp_path)
    before = fds_open()
    snap = Snapshot(state)
    snap.catalogue.write_bytes(b"the catalogue's copy")
    cut = snap.cut()
    os.truncate(state / "audit.log", 10)
    with pytest.raises(OSError) as exc:
        snap.hand_over(cut)
    assert str(exc.value) == (
        f"the audit log ends at byte 10, before the {cut.end} bytes recd wrote"
    )
    snap.remove()
    assert fds_open() == before
    assert list(state.glob(".backup-*")) == []


def test_an_empty_live_log_is_handed_over_empty(tmp_path: Path) -> None:
    """Only segments, the live log begun and not yet written: the head is the last segment's."""
    state = state_with_segment(tmp_path)
    (state / "audit.log").write_bytes(b"")
    snap = Snapshot(state)
    snap.catalogue.write_bytes(b"the catalogue's copy")
    cut = snap.cut()
    assert (cut.end, cut.last) == (0, None)
    handed = snap.hand_over(cut)
    snap.remove()
    try:
        assert [(h.name, h.size) for h in handed] == [
            ("catalog.db", 20), ("audit.log.1-3", (state / "audit.log.1-3").stat().st_size),
            ("audit.log", 0),
        ]  # fmt: skip
    finally:
        close_all([h.fd for h in handed])


def test_a_last_entry_longer_than_a_read_is_found_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newline before the last entry is searched for backwards a chunk at a time (1 MiB;
    64 bytes here, so that every entry spans several) and the torn tail is left out."""
    state = state_with_segment(tmp_path)
    whole = cut_size(state)
    with (state / "audit.log").open("ab") as f:
        f.write(b'{"seq": 6, "torn')  # a write in progress
    monkeypatch.setattr(snapshot, "_CHUNK", 64)
    snap = Snapshot(state)
    cut = snap.cut()
    try:
        assert cut.last is not None and (cut.last.seq, cut.end) == (5, whole)
    finally:
        close_all([cut.live, *(h.fd for h in cut.segments)])
        snap.remove()
