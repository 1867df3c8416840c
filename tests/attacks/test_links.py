"""Attack: links that lead recd out of the tree.

A local user who can write to the recording tree plants a symlink named like a due recording
that points at a root-owned file outside (absolute or relative; also symlink loops, a directory
cycle and a dangling link); a symlinked directory inside the tree; a subdirectory
that recd indexed, swapped for a symlink to an outside directory before the deadline; hard links
(to a file outside the tree, and two names inside it); and a symlink to a recording of another
source.

What must hold: nothing outside a source root is touched (content, name and link intact); a
symlink is never followed, neither by the scan nor by the erase; a file with more than one hard
link is skipped and reported (``erase.skipped``, a warning naming it); a recording of another
source is erased only by its own source, at its own deadline; the recordings around the links are
erased on time; no traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    audit_entries,
    check_consistent,
    kill_daemon,
    recd,
    start_daemon,
    stop_daemon,
    wait_until,
    write_due_at,
    write_estate,
    write_recording,
)
from tests.fakes import NotifyListener

SECRET = b"root's own file, not a recording"


def outside_file(path: Path, data: bytes = SECRET) -> Path:
    """A file outside every source, old enough to be due were it a recording."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (0, 0))
    return path


def backdated_link(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    os.utime(link, (0, 0), follow_symlinks=False)
    return link


def locations(base: Path) -> set[str]:
    return {e["details"]["location"] for e in audit_entries(base) if "location" in e["details"]}


def test_symlinks_to_a_file_and_to_a_directory_outside_are_not_followed(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    rec = tmp_path / "recordings"
    secret = outside_file(tmp_path / "outside" / "secret.wav")
    outside_dir = tmp_path / "outside" / "dir"
    inner = outside_file(outside_dir / "x.wav")
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    links = [
        backdated_link(rec / "L1" / "link.wav", secret),
        backdated_link(rec / "L1" / "relative.wav", Path("../../outside/secret.wav")),
        backdated_link(rec / "L1" / "sub", outside_dir),  # L1/sub/x.wav would match
        backdated_link(rec / "L2", outside_dir),  # a whole licence directory
        backdated_link(rec / "L1" / "loop-a.wav", rec / "L1" / "loop-b.wav"),  # a -> b -> a
        backdated_link(rec / "L1" / "loop-b.wav", rec / "L1" / "loop-a.wav"),
        backdated_link(rec / "L1" / "self", rec / "L1"),  # a directory cycle
        backdated_link(rec / "L1" / "dangling.wav", tmp_path / "nowhere.wav"),
    ]
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert "Traceback" not in result.stderr
    assert not due.exists()
    assert secret.read_bytes() == inner.read_bytes() == SECRET
    assert all(link.is_symlink() for link in links)
    assert locations(tmp_path) == {str(due)}


@pytest.mark.root
def test_hard_links_are_skipped_and_reported_and_the_victim_is_intact(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    rec = tmp_path / "recordings"
    victim = outside_file(tmp_path / "outside" / "shadow")
    os.chown(victim, 0, 0)
    (rec / "L1").mkdir()
    os.link(victim, rec / "L1" / "planted.wav")  # an outside file made to look due
    twin = write_recording(tmp_path, "L1/twin.wav", age_days=31)
    os.link(twin, rec / "L1" / "twin-copy.wav")
    due = write_recording(tmp_path, "L1/due.wav", age_days=31)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (
        0, "L1: 4 recordings, 4 due, 1 erased, 3 kept (3 has 2 hard links)\n",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    for name in ("planted.wav", "twin.wav", "twin-copy.wav"):
        assert f"WARNING recd.service.sweep: not erasing {rec}/L1/{name}: has 2 hard links" in (
            result.stderr
        )
    assert victim.read_bytes() == SECRET and victim.stat().st_nlink == 2
    assert (rec / "L1" / "twin-copy.wav").read_bytes() == twin.read_bytes()
    assert not due.exists()
    skipped = {
        e["details"]["location"]: e["details"]["skipped"]
        for e in audit_entries(tmp_path)
        if e["action"] == "erase.skipped"
    }
    assert skipped == {
        f"{rec}/L1/{n}": "has 2 hard links" for n in ("planted.wav", "twin.wav", "twin-copy.wav")
    }
    check_consistent(tmp_path, ["L1/planted.wav", "L1/twin.wav", "L1/twin-copy.wav", "L1/due.wav"])


def test_symlink_to_a_recording_of_another_source_is_not_followed(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    other = tmp_path / "other"
    config.write_text(
        config.read_text()
        + f'\n[[source]]\nname = "pbx2"\ntype = "directory"\npath = "{other}"\n'
        + "pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'\n"
    )
    young = outside_file(other / "L1" / "young.wav", b"not due for weeks")
    now = time.time() - 86400
    os.utime(young, (now, now))
    old = outside_file(other / "L1" / "old.wav", b"due in pbx2")
    rec = tmp_path / "recordings"
    backdated_link(rec / "L1" / "young.wav", young)
    backdated_link(rec / "L1" / "old.wav", old)
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert young.read_bytes() == b"not due for weeks"
    assert not old.exists()
    done = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    assert [e["details"]["location"] for e in done] == [str(old)]  # once, by its own source
    assert (rec / "L1" / "young.wav").is_symlink() and (rec / "L1" / "old.wav").is_symlink()


def test_indexed_subdirectory_swapped_for_a_symlink_leads_nowhere(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """The daemon indexed ``L1/sub/x.wav``; before its deadline ``sub`` is moved away and a
    symlink to an outside directory holding an ``x.wav`` of the same size takes its place."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    deadline = time.time() + 3.0
    write_due_at(tmp_path, "L1/sub/x.wav", deadline)
    write_due_at(tmp_path, "L1/y.wav", deadline)
    rec = tmp_path / "recordings"
    outside = tmp_path / "outside"
    victim = outside_file(outside / "x.wav", os.urandom(4096))
    content = victim.read_bytes()
    log = tmp_path / "recd.log"
    proc = start_daemon(config, listener, log)
    try:
        listener.wait_for("READY=1", timeout=30)
        wait_until("the first scan", lambda: "scan pbx: 2 files, 2 new" in log.read_text())
        (rec / "L1" / "sub").rename(tmp_path / "moved")
        (rec / "L1" / "sub").symlink_to(outside)
        wait_until("y.wav erased", lambda: not (rec / "L1" / "y.wav").exists(), 15)
        time.sleep(1.0)  # a retry would come now
        assert proc.poll() is None
        stop_daemon(proc, listener)
    finally:
        kill_daemon(proc)
    assert "Traceback" not in log.read_text()
    assert victim.read_bytes() == content
    assert (tmp_path / "moved" / "x.wav").exists()  # moved out of the tree: not recd's any more
    assert (rec / "L1" / "sub").is_symlink()
    assert locations(tmp_path) == {str(rec / "L1" / "y.wav")}
