"""DirectorySource.scan_dirs: a directory unchanged since its stamp (device, inode, mtime, ctime)
is not listed, its stamped subdirectories are still entered with every check, and a directory
changed too near a scan's start is never stamped (coarse timestamps)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from recd.adapters.local import directory
from recd.adapters.local.directory import DirectorySource
from recd.ports.source import DirListing, DirStamp
from tests.adapters.local.helpers import touch

NONE: dict[str, DirStamp] = {}
TICK = 0.05  # more than a coarse clock tick: a change after it gets another mtime


def walk(src: DirectorySource, stamps: dict[str, DirStamp]) -> dict[str, DirListing]:
    time.sleep(TICK)  # every directory changed before this scan's start
    listings = {listing.relpath: listing for listing in src.scan_dirs("", stamps.get)}
    time.sleep(TICK)
    return listings


def stamped(listings: dict[str, DirListing]) -> dict[str, DirStamp]:
    return {d: listing.stamp for d, listing in listings.items() if listing.stamp is not None}


def files(listing: DirListing) -> set[str] | None:
    return None if listing.files is None else {f.relpath for f in listing.files}


@pytest.fixture
def no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "STAMP_SLACK_NS", 0)


@pytest.mark.usefixtures("no_slack")
def test_an_unchanged_directory_is_not_listed_and_its_subdirectories_are_entered(
    tmp_path: Path,
) -> None:
    touch(tmp_path / "L1" / "a.wav")
    touch(tmp_path / "L1" / "sub" / "b.wav")
    src = DirectorySource("pbx", tmp_path)
    first = walk(src, {})
    assert {d: files(x) for d, x in first.items()} == {
        "": set(),
        "L1": {"L1/a.wav"},
        "L1/sub": {"L1/sub/b.wav"},
    }
    stamps = stamped(first)
    assert set(stamps) == {"", "L1", "L1/sub"}
    assert stamps["L1"].subdirs == ("sub",) and stamps["L1"].files == 1
    touch(tmp_path / "L1" / "sub" / "c.wav")  # changes L1/sub, not L1
    second = walk(src, stamps)
    assert {d: files(x) for d, x in second.items()} == {
        "": None,
        "L1": None,
        "L1/sub": {"L1/sub/b.wav", "L1/sub/c.wav"},
    }
    assert second["L1"].stamp == stamps["L1"]
    assert src.report.files == 3
    assert sorted(f.relpath for f in src.scan()) == ["L1/a.wav", "L1/sub/b.wav", "L1/sub/c.wav"]


@pytest.mark.usefixtures("no_slack")
def test_a_rename_a_new_subdirectory_or_another_inode_is_listed(tmp_path: Path) -> None:
    touch(tmp_path / "L1" / "a.wav")
    src = DirectorySource("pbx", tmp_path)
    stamps = stamped(walk(src, {}))
    os.rename(tmp_path / "L1" / "a.wav", tmp_path / "L1" / "b.wav")
    again = walk(src, stamps)
    assert files(again["L1"]) == {"L1/b.wav"}
    stamps = stamped(again)
    (tmp_path / "L1" / "new").mkdir()
    touch(tmp_path / "L1" / "new" / "c.wav")
    os.utime(tmp_path / "L1" / "new")
    again = walk(src, stamps)
    assert files(again["L1"]) == {"L1/b.wav"} and files(again["L1/new"]) == {"L1/new/c.wav"}
    stamps = stamped(again)
    other = stamps["L1"].ino + 1  # the same times on another inode: not the directory stamped
    forged = {**stamps, "L1": DirStamp(stamps["L1"].dev, other, *_times(stamps["L1"]), ())}
    assert files(walk(src, forged)["L1"]) == {"L1/b.wav"}


def _times(s: DirStamp) -> tuple[int, int]:
    return s.mtime_ns, s.ctime_ns


@pytest.mark.usefixtures("no_slack")
def test_a_changed_mode_changes_ctime_and_the_directory_is_listed(tmp_path: Path) -> None:
    touch(tmp_path / "L1" / "a.wav")
    src = DirectorySource("pbx", tmp_path)
    stamps = stamped(walk(src, {}))
    os.chmod(tmp_path / "L1", 0o750)
    assert files(walk(src, stamps)["L1"]) == {"L1/a.wav"}


def test_a_directory_changed_near_the_scan_start_is_not_stamped(tmp_path: Path) -> None:
    touch(tmp_path / "L1" / "a.wav")
    old = time.time() - 3600
    os.utime(tmp_path / "L1", (old, old))  # mtime old, ctime just now
    listings = {x.relpath: x for x in DirectorySource("pbx", tmp_path).scan_dirs("", NONE.get)}
    assert listings["L1"].stamp is None and listings[""].stamp is None


@pytest.mark.usefixtures("no_slack")
def test_an_excluded_directory_below_a_trusted_one_is_not_entered(tmp_path: Path) -> None:
    touch(tmp_path / "L1" / "a.wav")
    touch(tmp_path / "L1" / "state" / "catalog.db")
    src = DirectorySource("pbx", tmp_path, exclude=(tmp_path / "L1" / "state",))
    first = walk(src, {})
    assert set(first) == {"", "L1"}
    assert stamped(first)["L1"].subdirs == ("state",)
    assert set(walk(src, stamped(first))) == {"", "L1"}


@pytest.mark.usefixtures("no_slack")
def test_a_subdirectory_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    touch(tmp_path / "L1" / "sub" / "a.wav")
    touch(tmp_path / "elsewhere" / "secret.wav")
    src = DirectorySource("pbx", tmp_path / "L1")
    stamps = stamped(walk(src, {}))
    (tmp_path / "L1" / "sub" / "a.wav").unlink()
    (tmp_path / "L1" / "sub").rmdir()
    (tmp_path / "L1" / "sub").symlink_to(tmp_path / "elsewhere")
    found = walk(src, stamps)  # the root changed: listed, and the symlink is not a directory
    assert {f.relpath for x in found.values() for f in x.files or []} == set()
