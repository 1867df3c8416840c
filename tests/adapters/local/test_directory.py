"""The directory source's scan: safe, fd-relative, and honest about what it could not see."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.adapters.local import directory, safefs
from recd.adapters.local.directory import DirectorySource
from recd.core.model import ERASE_PREFIX
from tests.adapters.loopfs import Mounts


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def scan(root: Path, **kwargs: object) -> dict[str, int]:
    src = DirectorySource("pbx", root, **kwargs)  # type: ignore[arg-type]
    return {f.relpath: f.size for f in src.scan()}


def test_scan_yields_regular_files_with_facts(tmp_path: Path) -> None:
    f = touch(tmp_path / "1001" / "a.wav", b"abc")
    touch(tmp_path / "b.wav", b"")
    src = DirectorySource("pbx", tmp_path)
    facts = {x.relpath: x for x in src.scan()}
    assert sorted(facts) == ["1001/a.wav", "b.wav"]
    st = f.stat()
    a = facts["1001/a.wav"]
    assert (a.source, a.dev, a.ino, a.size, a.mtime_ns, a.nlink) == (
        "pbx", st.st_dev, st.st_ino, 3, st.st_mtime_ns, 1,
    )  # fmt: skip
    assert src.report.files == 2


def test_scan_never_follows_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    touch(outside / "secret.wav")
    touch(root / "real.wav")
    (root / "link.wav").symlink_to(outside / "secret.wav")
    (root / "linkdir").symlink_to(outside)
    src = DirectorySource("pbx", root)
    assert [f.relpath for f in src.scan()] == ["real.wav"]
    assert src.report.skipped_special == 2


def test_fifo_named_like_a_recording_is_skipped_without_opening(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.wav")
    touch(tmp_path / "y.wav")
    src = DirectorySource("pbx", tmp_path)
    assert [f.relpath for f in src.scan()] == ["y.wav"]  # would hang if the FIFO were opened
    assert src.report.skipped_special == 1


def test_state_dir_and_erase_temp_names_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path / "state" / "audit.log")
    touch(tmp_path / f"{ERASE_PREFIX}0123abcd")
    touch(tmp_path / "a.wav")
    assert scan(tmp_path, exclude=(tmp_path / "state", tmp_path / "does-not-exist")) == {"a.wav": 1}


def test_files_that_vanish_mid_walk_are_passed_over(tmp_path: Path) -> None:
    names = [f"{i:03}.wav" for i in range(50)]
    for name in names:
        touch(tmp_path / name)
    touch(tmp_path / "sub" / "z.wav")
    it = DirectorySource("pbx", tmp_path).scan()
    first = next(it)
    for name in names:
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "sub" / "z.wav").unlink()
    (tmp_path / "sub").rmdir()
    rest = list(it)
    assert first.relpath in names
    assert rest == []


def test_directory_swapped_for_symlink_after_listing_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    touch(outside / "secret.wav")
    touch(root / "a.wav")
    touch(root / "sub" / "b.wav")
    it = DirectorySource("pbx", root).scan()
    seen = [next(it).relpath]
    # 'sub' was listed as a directory; swap it for a symlink before the walk descends.
    (root / "sub" / "b.wav").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside)
    seen += [f.relpath for f in it]
    assert seen == ["a.wav"]


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(DirectorySource("pbx", tmp_path / "nope").scan())


def test_depth_limit_reports_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "MAX_DEPTH", 2)
    touch(tmp_path / "a" / "b" / "c" / "deep.wav")
    touch(tmp_path / "a" / "b" / "ok.wav")
    src = DirectorySource("pbx", tmp_path)
    assert [f.relpath for f in src.scan()] == ["a/b/ok.wav"]
    assert src.report.unreadable_dirs == ["a/b/c"]


def test_progress_is_logged_on_long_scans(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(4096):
        touch(tmp_path / f"{i}.wav")
    caplog.set_level(logging.INFO, logger="recd.adapters.local.directory")
    src = DirectorySource("pbx", tmp_path, progress=1e-9)
    assert len(list(src.scan())) == 4096
    assert caplog.messages == ["scan pbx: 4096 files so far"]


def test_open_read_checks_identity_and_refuses_symlinks(tmp_path: Path) -> None:
    f = touch(tmp_path / "d" / "a.wav", b"RIFF")
    st = f.stat()
    src = DirectorySource("pbx", tmp_path)
    with src.open_read("d/a.wav", st.st_dev, st.st_ino) as fh:
        assert fh.read() == b"RIFF"
    with pytest.raises(FileNotFoundError):
        src.open_read("d/a.wav", st.st_dev, st.st_ino + 1)
    (tmp_path / "d" / "l.wav").symlink_to(f)
    with pytest.raises(OSError):
        src.open_read("d/l.wav", st.st_dev, st.st_ino)


def scan_as(uid: int, root: Path) -> str:
    """Scan ``root`` in a forked child running as ``uid``; returns what it saw, as JSON."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        status = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            src = DirectorySource("pbx", root)
            files = sorted(f.relpath for f in src.scan())
            data = {"files": files, "unreadable": src.report.unreadable_dirs}
            os.write(write_fd, json.dumps(data).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        out = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    return out


@pytest.mark.root
def test_unreadable_directory_is_reported_not_missing() -> None:
    # pytest's tmp_path lives below a 0700 directory, so another uid needs a tree of its own.
    root = Path(tempfile.mkdtemp(prefix="recd-test-"))
    try:
        touch(root / "open" / "a.wav")
        touch(root / "locked" / "b.wav")
        for p in (root, root / "open"):
            p.chmod(0o755)
        (root / "locked").chmod(0o700)
        assert scan_as(65534, root) == '{"files": ["open/a.wav"], "unreadable": ["locked"]}'
    finally:
        shutil.rmtree(root)


@pytest.mark.root
def test_mount_inside_root_is_not_entered(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        touch(mnt / "other-fs.wav")
        src = DirectorySource("pbx", tmp_path)
        assert [f.relpath for f in src.scan()] == ["a.wav"]
        assert src.report.skipped_mounts == ["mnt"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_facts_are_what_a_scan_yields(tmp_path: Path) -> None:
    touch(tmp_path / "1001" / "deep" / "a.wav", b"abc")
    touch(tmp_path / "b.wav", b"")
    os.link(tmp_path / "b.wav", tmp_path / "1001" / "b-link.wav")
    src = DirectorySource("pbx", tmp_path)
    scanned = list(src.scan())
    assert len(scanned) == 3
    assert [src.facts(f.relpath) for f in scanned] == scanned
    assert src.facts("1001/b-link.wav").nlink == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("relpath", ["", "/b.wav", "//b.wav", "./b.wav", "d/../b.wav", "d/", ".."])
def test_facts_refuse_unsafe_paths(tmp_path: Path, relpath: str) -> None:
    touch(tmp_path / "b.wav")
    touch(tmp_path / "d" / "x.wav")
    assert DirectorySource("pbx", tmp_path).facts(relpath) is None


def test_facts_are_none_where_a_scan_yields_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    touch(tmp_path / "outside" / "secret.wav")
    touch(root / "state" / "x.wav")
    touch(root / "a.wav")
    touch(root / "d" / "e" / "f.wav")
    touch(root / f"{ERASE_PREFIX}0123abcd")
    (root / "link.wav").symlink_to(root / "a.wav")
    (root / "linkdir").symlink_to(tmp_path / "outside")
    os.mkfifo(root / "fifo.wav")
    src = DirectorySource("pbx", root, exclude=(root / "state",))
    monkeypatch.setattr(directory, "MAX_DEPTH", 1)
    for relpath in [
        "gone.wav", "gone/a.wav", "a.wav/x.wav",  # not there
        "link.wav", "linkdir/secret.wav",  # symlinks, at the end or on the way
        "fifo.wav", "d",  # not regular files (the FIFO would hang if opened)
        "state/x.wav",  # excluded
        f"{ERASE_PREFIX}0123abcd",  # recd's own erase temp name
        "d/e/f.wav",  # deeper than a scan goes
    ]:  # fmt: skip
        assert src.facts(relpath) is None, relpath
    st = (root / "a.wav").stat()
    found = src.facts("a.wav")
    assert found is not None
    assert (found.relpath, found.ino, found.size) == ("a.wav", st.st_ino, st.st_size)
    assert {f.relpath for f in src.scan()} == {"a.wav"}


def test_facts_raise_when_the_root_or_a_directory_cannot_be_read(tmp_path: Path) -> None:
    src = DirectorySource("pbx", tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        src.facts("a.wav")
    # Not "gone": an error that says nothing about the file reaches the caller.
    with pytest.raises(OSError, match="File name too long"):
        DirectorySource("pbx", tmp_path).facts("x" * 300 + "/a.wav")


@pytest.mark.root
def test_facts_in_unreadable_directory_raise_not_vanish() -> None:
    root = Path(tempfile.mkdtemp(prefix="recd-test-"))
    try:
        touch(root / "locked" / "b.wav")
        root.chmod(0o755)
        (root / "locked").chmod(0o700)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            status = 1
            try:
                os.close(read_fd)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                try:
                    DirectorySource("pbx", root).facts("locked/b.wav")
                except PermissionError:
                    os.write(write_fd, b"PermissionError")
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as fh:
            out = fh.read()
        _, status = os.waitpid(pid, 0)
        assert (status, out) == (0, b"PermissionError")
    finally:
        shutil.rmtree(root)


@pytest.mark.root
def test_facts_are_none_across_a_mount(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    with Mounts(tmp_path / "mounts") as mounts:
        mounts.tmpfs(tmp_path / "mnt")
        touch(tmp_path / "mnt" / "other-fs.wav")
        other = mounts.tmpfs(tmp_path / "mounts" / "elsewhere").mountpoint
        touch(other / "bound.wav")
        mounts.bind(other / "bound.wav", tmp_path / "a.wav")  # one file of another fs
        src = DirectorySource("pbx", tmp_path)
        assert src.facts("mnt/other-fs.wav") is None
        assert src.facts("a.wav") is None


# -- scan(under): one subtree, entered as the walk would enter it -------------------------------


def subtree(tmp_path: Path) -> DirectorySource:
    touch(tmp_path / "1001" / "a.wav")
    touch(tmp_path / "1001" / "deep" / "b.wav", b"bb")
    touch(tmp_path / "1001x" / "c.wav")  # a sibling whose name starts the same
    touch(tmp_path / "top.wav")
    return DirectorySource("pbx", tmp_path)


def test_scan_under_a_subtree_yields_its_files_as_the_full_scan_does(tmp_path: Path) -> None:
    src = subtree(tmp_path)
    full = {f.relpath: f for f in src.scan()}
    assert sorted(f.relpath for f in src.scan("1001")) == ["1001/a.wav", "1001/deep/b.wav"]
    assert src.report.files == 2
    assert list(src.scan("1001/deep")) == [full["1001/deep/b.wav"]]
    assert src.report.files == 1  # each scan reports on itself


@pytest.mark.parametrize("under", ["../x", "..", "/abs", "1001/", "./1001", "1001/../1001", "a//b"])
def test_scan_under_an_unsafe_path_yields_nothing(tmp_path: Path, under: str) -> None:
    (tmp_path / "root").mkdir()
    touch(tmp_path / "x" / "outside.wav")
    src = subtree(tmp_path / "root")
    assert list(src.scan(under)) == []
    assert src.report.files == 0


@pytest.mark.parametrize("under", ["gone", "gone/deeper", "top.wav", "top.wav/x", "1001/a.wav"])
def test_scan_under_a_subtree_that_is_gone_or_no_directory_yields_nothing(
    tmp_path: Path, under: str
) -> None:
    src = subtree(tmp_path)
    assert list(src.scan(under)) == []
    assert src.report.unreadable_dirs == []  # gone is not unreadable: its rows may go missing


def test_scan_under_a_symlinked_subtree_does_not_follow_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(tmp_path / "outside" / "sub" / "secret.wav")
    src = subtree(root)
    (root / "link").symlink_to(tmp_path / "outside")
    (root / "1001" / "link").symlink_to(tmp_path / "outside" / "sub")
    for under in ["link", "link/sub", "1001/link"]:
        assert list(src.scan(under)) == [], under


def test_scan_under_an_excluded_subtree_yields_nothing(tmp_path: Path) -> None:
    touch(tmp_path / "state" / "deep" / "catalog.wav")
    src = DirectorySource("pbx", tmp_path, exclude=(tmp_path / "state",))
    assert list(src.scan("state")) == []
    assert list(src.scan("state/deep")) == []


def test_scan_under_raises_when_the_root_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(DirectorySource("pbx", tmp_path / "nope").scan("1001"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_scan_under_a_subtree_that_cannot_be_opened_raises_and_leaks_nothing(
    tmp_path: Path,
) -> None:
    src = subtree(tmp_path)
    before = open_fds()
    for _ in range(3):  # a name longer than NAME_MAX: as unopenable as a directory can be
        with pytest.raises(OSError, match="File name too long"):
            list(src.scan("1001/" + "x" * 300))
    assert open_fds() == before


def test_scan_under_a_subtree_deeper_than_a_scan_goes_yields_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "d" / "e" / "f.wav")
    src = DirectorySource("pbx", tmp_path)
    monkeypatch.setattr(directory, "MAX_DEPTH", 1)
    assert list(src.scan()) == []
    assert src.report.unreadable_dirs == ["d/e"]
    assert list(src.scan("d/e")) == []


@pytest.mark.root
def test_scan_under_a_mount_yields_nothing(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    with Mounts(tmp_path / "mounts") as mounts:
        mounts.tmpfs(tmp_path / "mnt")
        touch(tmp_path / "mnt" / "sub" / "other-fs.wav")
        src = DirectorySource("pbx", tmp_path)
        assert list(src.scan("mnt")) == []
        assert list(src.scan("mnt/sub")) == []


def test_files_carry_no_metadata(tmp_path: Path) -> None:
    touch(tmp_path / "a.wav")
    assert DirectorySource("pbx", tmp_path).metadata("a.wav") == {}


# -- mounts, locks and swaps that appear while a scan runs --------------------------------------


@pytest.mark.root
def test_fifos_bind_mounted_over_names_are_skipped_as_special_without_opening(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    touch(root / "a.wav")
    touch(root / "same-fs.wav")
    touch(root / "other-fs.wav")
    os.mkfifo(tmp_path / "fifo")  # on the root's filesystem: only mountinfo shows the mount
    with Mounts(tmp_path / "mounts") as mounts:
        other = mounts.tmpfs(tmp_path / "elsewhere").mountpoint
        os.mkfifo(other / "fifo")
        mounts.bind(tmp_path / "fifo", root / "same-fs.wav")
        mounts.bind(other / "fifo", root / "other-fs.wav")
        src = DirectorySource("pbx", root)
        assert [f.relpath for f in src.scan()] == ["a.wav"]  # would hang if a FIFO were opened
        assert (src.report.skipped_special, src.report.skipped_mounts) == (2, [])


@pytest.mark.root
@pytest.mark.parametrize(
    ("kind", "what"),
    [("tmpfs", "another filesystem"), ("bind", "a bind mount of this filesystem")],
)
def test_directory_mounted_after_it_was_listed_is_not_entered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, what: str
) -> None:
    root = tmp_path / "root"
    touch(root / "a.wav")
    touch(root / "sub" / "b.wav")
    touch(tmp_path / "elsewhere" / "victim.wav")
    with Mounts(tmp_path / "mounts") as mounts:
        src = DirectorySource("pbx", root)
        it = src.scan()  # reads mountinfo and lists the root, 'sub' still a plain directory
        seen = [next(it).relpath]
        if kind == "tmpfs":
            mounts.tmpfs(root / "sub")
            touch(root / "sub" / "other-fs.wav")
        else:
            mounts.bind(tmp_path / "elsewhere", root / "sub")
        with caplog.at_level(logging.WARNING, logger="recd.adapters.local.directory"):
            seen += [f.relpath for f in it]
        assert seen == ["a.wav"]
        assert src.report.skipped_mounts == ["sub"]
        assert caplog.messages == [f"scan pbx: not entering sub: {what} is mounted there"]


@contextlib.contextmanager
def effective_uid(uid: int) -> Iterator[None]:
    """Run the body with ``uid`` as effective user and group (root can take them back): the
    scan stays in this process, where a permission error on a directory can happen to it."""
    os.setegid(uid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A tree another uid can reach (pytest's tmp_path lives below a 0700 directory)."""
    root = Path(tempfile.mkdtemp(prefix="recd-test-"))
    root.chmod(0o755)
    yield root
    for path in (root, *root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(root)


@pytest.mark.root
def test_directory_locked_after_it_was_listed_is_reported_unreadable(
    shared_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    touch(shared_root / "a.wav")
    touch(shared_root / "sub" / "b.wav")
    os.chown(shared_root / "sub", 65534, 65534)
    (shared_root / "sub").chmod(0o755)
    with effective_uid(65534):
        src = DirectorySource("pbx", shared_root)
        it = src.scan()
        seen = [next(it).relpath]
        (shared_root / "sub").chmod(0o000)  # its owner locks it before the walk goes in
        with caplog.at_level(logging.WARNING, logger="recd.adapters.local.directory"):
            seen += [f.relpath for f in it]
    assert seen == ["a.wav"]
    assert src.report.unreadable_dirs == ["sub"]  # not gone: b.wav must not look deleted
    assert caplog.messages == ["scan pbx: cannot read sub: Permission denied"]


@pytest.mark.root
def test_directory_that_can_be_listed_but_not_searched_is_reported_unreadable(
    shared_root: Path,
) -> None:
    touch(shared_root / "a.wav")
    touch(shared_root / "listed" / "b.wav")
    touch(shared_root / "listed" / "deeper" / "c.wav")
    (shared_root / "listed").chmod(0o744)  # others may read the names, not stat them
    with effective_uid(65534):
        src = DirectorySource("pbx", shared_root)
        seen = [f.relpath for f in src.scan()]
    assert seen == ["a.wav"]
    assert src.report.unreadable_dirs == ["listed"]


@pytest.mark.root
@pytest.mark.parametrize("bound", ["d/a.wav", "d"])
def test_open_read_refuses_the_indexed_file_reached_through_a_bind_mount(
    tmp_path: Path, bound: str
) -> None:
    root = tmp_path / "root"
    st = touch(root / "d" / "a.wav", b"RIFF").stat()
    src = DirectorySource("pbx", root)
    with Mounts(tmp_path / "mounts") as mounts:
        # the very inode that was indexed, bind-mounted over itself: only the mount id differs
        mounts.bind(root / bound, root / bound)
        before = open_fds()
        with pytest.raises(safefs.CrossesMount, match="another mount of the same filesystem"):
            src.open_read("d/a.wav", st.st_dev, st.st_ino)
        assert open_fds() == before
    with src.open_read("d/a.wav", st.st_dev, st.st_ino) as fh:  # unmounted: readable again
        assert fh.read() == b"RIFF"
