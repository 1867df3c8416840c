"""The safe opening and identity checks of a local erase (recd.adapters.local.checks), through
LocalEraser on real files: symlinks, swaps and special files at the name or on the way,
unsafe paths, hard links, files changed, replaced or removed since they were indexed or
checked, and reopening by name where there is no /proc. Every test here also checks that
no file descriptor leaked.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from recd.adapters.local import checks, safefs
from recd.adapters.local.erase import LocalEraser
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import (
    Gone,
    Refused,
)
from tests.adapters.local.helpers import LATER, OVERWRITE, TEMP, UNLINK, ident, touch

pytestmark = pytest.mark.usefixtures("no_fd_leaks")  # every test: no descriptor leaked


# -- symlinks, swaps, special files ---------------------------------------------------------


def test_symlink_to_a_file_outside_the_root_is_refused(tmp_path: Path, root: Path) -> None:
    secret = tmp_path / "outside" / "secret.wav"
    outside_st = touch(secret, b"not yours")
    (root / "x.wav").symlink_to(secret)
    link_st = (root / "x.wav").lstat()
    with LocalEraser(root) as e:
        for st in (outside_st, link_st):
            with pytest.raises(Refused, match=r"^is a symbolic link$"):
                e.prepare("x.wav", st.st_dev, st.st_ino, st.st_size)
    assert secret.read_bytes() == b"not yours"


def test_file_swapped_for_a_symlink_after_prepare_is_not_touched(
    tmp_path: Path, root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "x.wav", b"indexed")
    victim = tmp_path / "victim.wav"
    touch(victim, b"victim data")
    with eraser.prepare("x.wav", *ident(st)) as p:
        (root / "x.wav").rename(tmp_path / "moved.wav")
        (root / "x.wav").symlink_to(victim)
        for decision in (OVERWRITE, UNLINK):
            with pytest.raises(Refused, match=r"^replaced since it was checked$"):
                eraser.erase(p, decision, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert victim.read_bytes() == b"victim data"
    assert (tmp_path / "moved.wav").read_bytes() == b"indexed"
    assert (root / "x.wav").is_symlink()
    assert sorted(os.listdir(root)) == ["x.wav"]


def test_file_replaced_before_prepare_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "x.wav")
    (root / "x.wav").unlink()
    touch(root / "other.wav", b"other")  # keeps the old inode number from being reused
    touch(root / "x.wav", b"new recording")
    with pytest.raises(Refused, match=r"^replaced since it was indexed$"):
        eraser.prepare("x.wav", *ident(st))
    assert (root / "x.wav").read_bytes() == b"new recording"


def test_parent_directory_swapped_for_a_symlink_is_not_followed(
    tmp_path: Path, root: Path, eraser: LocalEraser
) -> None:
    st = touch(root / "sub" / "x.wav", b"indexed")
    outside = tmp_path / "outside"
    touch(outside / "x.wav", b"outside")
    (root / "sub").rename(tmp_path / "away")
    (root / "sub").symlink_to(outside)
    with pytest.raises(Refused, match=r"^sub is a symbolic link$"):
        eraser.prepare("sub/x.wav", *ident(st))
    with pytest.raises(Refused, match=r"^sub is a symbolic link$"):
        eraser.locate("sub/x.wav", TEMP, st.st_dev, st.st_ino)
    assert (outside / "x.wav").read_bytes() == b"outside"


def test_parent_directory_replaced_by_a_file_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a" / "sub" / "x.wav")
    shutil.rmtree(root / "a" / "sub")
    touch(root / "a" / "sub", b"a file")
    with pytest.raises(Refused, match=r"^a/sub is not a directory$"):
        eraser.prepare("a/sub/x.wav", *ident(st))


def test_unsafe_relative_paths_are_refused(eraser: LocalEraser) -> None:
    for relpath in ("../x.wav", "a//b.wav", "/etc/passwd", "a/./b"):
        with pytest.raises(Refused, match=r"^unsafe relative path"):
            eraser.prepare(relpath, 1, 2, 3)


@pytest.mark.usefixtures("timeout")
def test_fifo_named_like_a_recording_never_blocks_and_is_refused(
    root: Path, eraser: LocalEraser
) -> None:
    os.mkfifo(root / "x.wav")
    st = (root / "x.wav").lstat()
    with pytest.raises(Refused, match=r"^is not a regular file \(a FIFO\)$"):
        eraser.prepare("x.wav", *ident(st))
    assert stat.S_ISFIFO((root / "x.wav").lstat().st_mode)


def test_socket_and_directory_are_refused(
    root: Path, eraser: LocalEraser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)  # a short relative name: socket paths are limited to 108 bytes
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("s.wav")
        st = (root / "s.wav").lstat()
        with pytest.raises(Refused, match=r"^is not a regular file \(a socket\)$"):
            eraser.prepare("s.wav", *ident(st))
    (root / "d.wav").mkdir()
    st = (root / "d.wav").lstat()
    with pytest.raises(Refused, match=r"^is not a regular file \(a directory\)$"):
        eraser.prepare("d.wav", *ident(st))


# -- hard links, changes --------------------------------------------------------------------


def test_hard_linked_file_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    os.link(root / "a.wav", root / "b.wav")
    with eraser.prepare("a.wav", *ident(st)) as p:
        assert p.facts.nlink == 2
        decision = decide(p.facts, EraseSettings(), LATER)
    assert decision == Decision(Action.REFUSE, EraseMethod.OVERWRITE, False, "has 2 hard links")


def test_hard_link_made_after_prepare_stops_the_erase(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"kept")
    with eraser.prepare("a.wav", *ident(st)) as p:
        os.link(root / "a.wav", root / "b.wav")
        with pytest.raises(Refused, match=r"^has 2 hard links$"):
            eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (root / "a.wav").read_bytes() == (root / "b.wav").read_bytes() == b"kept"


def test_size_changed_since_indexing_is_refused(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"abc")
    (root / "a.wav").write_bytes(b"abcde")
    with pytest.raises(Refused, match=r"^changed since it was indexed \(size 5, indexed 3\)$"):
        eraser.prepare("a.wav", *ident(st))


def test_file_changed_after_prepare_is_not_touched(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav", b"abc")
    with eraser.prepare("a.wav", *ident(st)) as p:
        with (root / "a.wav").open("ab") as f:
            f.write(b"more")
        with pytest.raises(Refused, match=r"^changed since it was checked$"):
            eraser.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (root / "a.wav").read_bytes() == b"abcmore"


def test_file_removed_after_prepare_is_gone(root: Path, eraser: LocalEraser) -> None:
    st = touch(root / "a.wav")
    with eraser.prepare("a.wav", *ident(st)) as p:
        (root / "a.wav").unlink()
        with pytest.raises(Gone, match=r"^removed since it was checked$"):
            eraser.erase(p, UNLINK, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)


def test_gone_file_and_gone_directory(root: Path, eraser: LocalEraser) -> None:
    with pytest.raises(Gone, match=r"^no longer exists$"):
        eraser.prepare("a.wav", 1, 2, 3)
    (root / "a").mkdir()
    with pytest.raises(Gone, match=r"^a/b no longer exists$"):
        eraser.prepare("a/b/c.wav", 1, 2, 3)


# -- without /proc --------------------------------------------------------------------------


def test_without_proc_files_are_reopened_by_name_and_checked(tmp_path: Path, root: Path) -> None:
    st = touch(root / "a.wav", b"x" * 1000)
    with LocalEraser(root, proc=tmp_path / "no-proc") as e:
        with e.prepare("a.wav", *ident(st)) as p:
            if p.facts.fs_type in ("ext2", "ext3", "ext4"):
                assert p.facts.data_journal is None  # mount options unknown: not claimed
            result = e.erase(p, OVERWRITE, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
        e.sync()
        assert result.bytes_overwritten == 1000
        assert os.listdir(root) == []

        st = touch(root / "b.wav")
        with e.prepare("b.wav", *ident(st)) as p:
            (root / "b.wav").rename(root / "c.wav")
            touch(root / "b.wav", b"new")
            with pytest.raises(Refused, match=r"^replaced since it was checked$"):
                checks.reopen(p, os.O_RDONLY, e._fd_dir)


def test_a_shared_directory_is_walked_once_per_directory(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's files in one directory share one checked walk of the path; each gets its
    own descriptor of that same directory; a new directory is walked afresh."""
    for relpath in ("a/1.wav", "a/2.wav", "b/1.wav", "a/3.wav"):
        touch(root / relpath)
    walked: list[str] = []
    real = checks.open_dir

    def spy(root_dir: safefs.Root, relpath: str) -> tuple[int, str, safefs.DirId]:
        walked.append(relpath)
        return real(root_dir, relpath)

    monkeypatch.setattr(checks, "open_dir", spy)
    got = []
    with checks.SharedDir(safefs.Root(root)) as shared:
        for relpath in ("a/1.wav", "a/2.wav", "b/1.wav", "a/3.wav"):
            fd, name, ident_ = shared.open(relpath)
            try:
                st = os.fstat(fd)
                got.append((name, (st.st_dev, st.st_ino), ident_.dev))
                assert os.path.exists(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
    assert walked == ["a/1.wav", "b/1.wav", "a/3.wav"]
    a, b = (root / "a").stat(), (root / "b").stat()
    assert [(n, i) for n, i, _ in got] == [
        ("1.wav", (a.st_dev, a.st_ino)),
        ("2.wav", (a.st_dev, a.st_ino)),
        ("1.wav", (b.st_dev, b.st_ino)),
        ("3.wav", (a.st_dev, a.st_ino)),
    ]


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_a_shared_directory_refuses_an_unsafe_name_in_it(root: Path, name: str) -> None:
    touch(root / "a" / "1.wav")
    with checks.SharedDir(safefs.Root(root)) as shared:
        fd, _, _ = shared.open("a/1.wav")
        os.close(fd)
        with pytest.raises(Refused, match="unsafe relative path"):
            shared.open(f"a/{name}")


def test_a_directory_swapped_for_a_symlink_within_a_batch_is_never_followed(
    root: Path, tmp_path: Path
) -> None:
    """The batch's shared directory is the real one it checked; a directory replaced by a
    symlink before the batch reaches it is refused, as a walk per file refused it."""
    touch(root / "a" / "1.wav")
    touch(root / "b" / "1.wav")
    outside = tmp_path / "outside"
    touch(outside / "1.wav")
    with checks.SharedDir(safefs.Root(root)) as shared:
        fd, _, _ = shared.open("a/1.wav")
        os.close(fd)
        (root / "a").rename(tmp_path / "a-moved")
        (root / "a").symlink_to(tmp_path / "a-moved")
        fd, _, _ = shared.open("a/1.wav")  # the directory it checked, where it now is
        try:
            assert os.stat(fd).st_ino == (tmp_path / "a-moved").stat().st_ino
        finally:
            os.close(fd)
        shutil.rmtree(root / "b")
        (root / "b").symlink_to(outside)
        with pytest.raises(Refused, match="b is a symbolic link"):
            shared.open("b/1.wav")
