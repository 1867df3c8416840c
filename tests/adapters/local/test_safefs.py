"""The fd-relative primitives under the directory source and the local eraser: statx and mount
ids (and their fallbacks), the pinned source root, walking to a file's directory, mountinfo."""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from recd.adapters.local import safefs
from recd.adapters.local.safefs import CrossesMount, DirId, Root, RootChanged, RootPins
from tests.adapters.loopfs import Mounts


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def opened(path: Path) -> int:
    return os.open(path, safefs.DIR_FLAGS)


# -- statx and mount ids ------------------------------------------------------------------------


def test_statx_reports_the_inode_and_its_mount(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"abc")
    fd = opened(tmp_path)
    try:
        sx = safefs.statx(fd, "a.wav")
        mnt_id = safefs.mount_id(fd)
    finally:
        os.close(fd)
    st = (tmp_path / "a.wav").stat()
    assert sx is not None
    assert (sx.dev, sx.ino, sx.mode) == (st.st_dev, st.st_ino, st.st_mode)
    assert sx.mnt_id is not None and sx.mnt_id == mnt_id


@pytest.mark.parametrize(
    ("name", "exc", "err"),
    [
        ("gone.wav", FileNotFoundError, errno.ENOENT),
        ("x" * 300, OSError, errno.ENAMETOOLONG),
        ("a.wav/x", NotADirectoryError, errno.ENOTDIR),
    ],
)
def test_statx_of_a_name_that_cannot_be_seen_raises_naming_it(
    tmp_path: Path, name: str, exc: type[OSError], err: int
) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    fd = opened(tmp_path)
    try:
        with pytest.raises(exc) as raised:
            safefs.statx(fd, name)
    finally:
        os.close(fd)
    assert (raised.value.errno, raised.value.filename) == (err, name)


def test_mount_id_from_fdinfo_is_the_statx_one(tmp_path: Path) -> None:
    fd = opened(tmp_path)
    try:
        assert safefs._fdinfo_mnt_id(fd) == safefs.mount_id(fd) is not None
    finally:
        os.close(fd)


def test_mount_id_from_fdinfo_of_a_closed_descriptor_is_unknown(tmp_path: Path) -> None:
    fd = opened(tmp_path)
    os.close(fd)
    assert safefs._fdinfo_mnt_id(fd) is None


@pytest.mark.parametrize(
    "fdinfo",
    [
        "pos:\t0\nflags:\t02304000\n",  # a kernel before 3.15: no mnt_id line
        "pos:\t0\nmnt_id:\tunknown\n",  # a line recd cannot read
    ],
)
def test_mount_id_from_fdinfo_without_a_readable_mnt_id_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fdinfo: str
) -> None:
    # No real kernel here lacks the line: the file is what such a kernel would show.
    read: list[str] = []

    def fake_open(path: str, *args: Any, **kwargs: Any) -> io.StringIO:
        read.append(path)
        return io.StringIO(fdinfo)

    monkeypatch.setattr(safefs, "open", fake_open, raising=False)
    fd = opened(tmp_path)
    try:
        assert safefs._fdinfo_mnt_id(fd) is None
    finally:
        os.close(fd)
    assert read == [f"/proc/self/fdinfo/{fd}"]


def test_an_unknown_mount_id_is_not_taken_for_another_mount() -> None:
    known = DirId(dev=1, ino=2, mnt_id=30)
    assert known.same_mount(DirId(1, 9, None)) and DirId(1, 9, None).same_mount(known)
    assert known.same_mount(DirId(1, 9, 30))
    assert not known.same_mount(DirId(1, 9, 31))
    assert not known.same_mount(DirId(2, 2, 30))
    assert not known.same_mount(DirId(2, 2, None))


class _LibcWithoutStatx:
    """glibc before 2.28, as ``ctypes.CDLL`` shows it: everything but ``statx``."""

    def __init__(self, real: ctypes.CDLL) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        if name == "statx":
            raise AttributeError(name)
        return getattr(self._real, name)


@pytest.fixture
def without_statx(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A private copy of ``safefs`` loaded where glibc has no ``statx`` (the module the
    rest of recd uses is left alone)."""
    real_cdll = ctypes.CDLL
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **kw: _LibcWithoutStatx(real_cdll(*a, **kw)))
    name = "tests_safefs_without_statx"
    spec = importlib.util.spec_from_file_location(name, safefs.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(ctypes, "CDLL", real_cdll)
    return module


def test_without_glibc_statx_mount_ids_come_from_fdinfo(
    without_statx: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    fd = opened(tmp_path)
    sub = opened(tmp_path / "d")
    try:
        assert without_statx.statx(fd) is None
        ident = without_statx.dir_id(fd)
        assert (ident.dev, ident.ino, ident.mnt_id) == (
            (real := safefs.dir_id(fd)).dev, real.ino, real.mnt_id,
        )  # fmt: skip
        assert real.mnt_id is not None
        without_statx.check_mount(sub, ident, "d")  # the same mount: no error
    finally:
        os.close(sub)
        os.close(fd)


@pytest.mark.root
def test_without_glibc_statx_a_bind_mount_is_still_refused(
    without_statx: ModuleType, mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "bound").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    mounts.bind(tmp_path / "elsewhere", root / "bound")
    fd = opened(root)
    sub = opened(root / "bound")
    try:
        with pytest.raises(without_statx.CrossesMount, match="another mount of the same"):
            without_statx.check_mount(sub, without_statx.dir_id(fd), "bound")
    finally:
        os.close(sub)
        os.close(fd)


# -- the source root: resolved once, pinned, refused when it changed -----------------------------


def test_root_is_pinned_by_its_first_open_and_shared_through_the_pins(tmp_path: Path) -> None:
    pins = RootPins()
    here = Root(tmp_path, pins=pins)
    fd = opened(tmp_path)
    try:
        assert here.pinned == safefs.dir_id(fd)
    finally:
        os.close(fd)
    later = Root(tmp_path / "later", pins=pins)
    at_start = later.pinned
    assert at_start is None  # missing at start: nothing to pin yet
    (tmp_path / "later").mkdir()
    fd, ident = Root(tmp_path / "later", pins=pins).open()  # another user of the same root
    os.close(fd)
    assert later.pinned == ident
    assert ident.ino == (tmp_path / "later").stat().st_ino


def test_root_with_a_component_replaced_by_a_file_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    (parent / "root").mkdir(parents=True)
    root = Root(parent / "root")
    parent.rename(tmp_path / "moved")
    parent.write_bytes(b"")
    before = open_fds()
    with pytest.raises(RootChanged, match=f"] {parent} is no longer a directory;") as raised:
        root.open()
    assert (raised.value.errno, raised.value.filename) == (errno.ESTALE, str(parent / "root"))
    assert open_fds() == before


def test_root_whose_path_is_a_file_at_start_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").write_bytes(b"")
    with pytest.raises(RootChanged, match="is no longer a directory"):
        Root(tmp_path / "root").open()


def test_root_that_cannot_be_reached_raises_the_error_naming_the_walked_path(
    tmp_path: Path,
) -> None:
    root = Root(tmp_path / "gone" / "root")
    with pytest.raises(FileNotFoundError) as raised:
        root.open()
    assert raised.value.filename == str(tmp_path / "gone")


@pytest.mark.root
def test_root_mounted_over_by_another_filesystem_is_refused(mounts: Mounts, tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    root = Root(tmp_path / "root")
    mounts.tmpfs(tmp_path / "root")
    with pytest.raises(RootChanged, match=r"checked at start \(another filesystem: it was"):
        root.open()


@pytest.mark.root
@pytest.mark.parametrize("source", ["root", "elsewhere"])
def test_root_bind_mounted_over_is_refused(mounts: Mounts, tmp_path: Path, source: str) -> None:
    # the same filesystem: the device is the same, the mount (and perhaps the inode) is not
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    root = Root(tmp_path / "root")
    mounts.bind(tmp_path / source, tmp_path / "root")
    with pytest.raises(RootChanged, match=r"checked at start \(another mount: it was"):
        root.open()


# -- open_parent: the walk to a file's directory ------------------------------------------------


def test_open_parent_opens_the_directory_holding_the_file(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    fd, ident = Root(tmp_path).open()
    try:
        parent, name = safefs.open_parent(fd, ident, "d/e/a.wav")
        try:
            assert name == "a.wav"
            assert os.fstat(parent).st_ino == (tmp_path / "d" / "e").stat().st_ino
        finally:
            os.close(parent)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("relpath", "errnos"),
    [
        ("link/a.wav", (errno.ELOOP, errno.ENOTDIR)),  # a symlink on the way
        ("d/link/a.wav", (errno.ELOOP, errno.ENOTDIR)),
        ("d/gone/a.wav", (errno.ENOENT,)),
        ("d/file.wav/a.wav", (errno.ENOTDIR,)),
    ],
)
def test_open_parent_refuses_what_is_no_directory_and_leaks_nothing(
    tmp_path: Path, relpath: str, errnos: tuple[int, ...]
) -> None:
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    (root / "d").mkdir(parents=True)
    (root / "d" / "file.wav").write_bytes(b"")
    (root / "link").symlink_to(tmp_path / "outside")
    (root / "d" / "link").symlink_to(tmp_path / "outside")
    fd, ident = Root(root).open()
    try:
        before = open_fds()
        with pytest.raises(OSError) as raised:
            safefs.open_parent(fd, ident, relpath)
        assert raised.value.errno in errnos
        assert open_fds() == before
    finally:
        os.close(fd)


@pytest.mark.root
def test_open_parent_does_not_cross_a_mount_on_the_way_and_leaks_nothing(
    mounts: Mounts, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "d" / "bound").mkdir(parents=True)
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    mounts.bind(tmp_path / "elsewhere", root / "d" / "bound")
    fd, ident = Root(root).open()
    try:
        before = open_fds()
        with pytest.raises(CrossesMount) as raised:
            safefs.open_parent(fd, ident, "d/bound/sub/a.wav")
        assert raised.value.filename == "d/bound"
        assert open_fds() == before
    finally:
        os.close(fd)


# -- mountinfo ----------------------------------------------------------------------------------

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 8:1 /srv /srv/rec rw,relatime shared:1 - ext4 /dev/sda1 rw
31 30 0:40 / /srv/rec/L1 rw - tmpfs tmpfs rw
32 30 8:1 /x /srv/rec/with\\040space\\011tab\\134 rw - ext4 /dev/sda1 rw
33 31 0:41 / /srv/rec/L1/deeper rw - tmpfs tmpfs rw
34 22 0:42 / /srv/record rw - tmpfs tmpfs rw
35 22 0:43 / /srv/rec2/x rw - tmpfs tmpfs rw
garbage line
36 22 0:44
"""


def test_mounts_below_are_read_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    expected = frozenset({"L1", "L1/deeper", "with space\ttab\\"})
    assert safefs.mounts_below("/srv/rec", mountinfo) == expected
    assert safefs.mounts_below("/srv/rec/", mountinfo) == expected
    assert safefs.mounts_below("/srv/rec/L1", mountinfo) == frozenset({"deeper"})
    assert safefs.mounts_below("/srv/rec/L1/deeper", mountinfo) == frozenset()


def test_mounts_below_are_none_when_mountinfo_cannot_be_read(tmp_path: Path) -> None:
    assert safefs.mounts_below("/srv/rec", tmp_path / "missing") == frozenset()
    assert safefs.mounts_below("/srv/rec", tmp_path) == frozenset()  # a directory


@pytest.mark.root
def test_mounts_below_a_real_root_name_each_mount_point(mounts: Mounts, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "c d").mkdir()
    (tmp_path / "elsewhere").mkdir()
    mounts.tmpfs(root / "a" / "b")
    mounts.bind(tmp_path / "elsewhere", root / "c d")
    assert safefs.mounts_below(str(root)) == frozenset({"a/b", "c d"})
    assert safefs.mounts_below(str(root / "a")) == frozenset({"b"})
