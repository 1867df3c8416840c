"""LocalEraser on real loop-mounted filesystems (root only).

What an erase leaves in the raw blocks of ext4; how btrfs, XFS reflinks, ext data journalling
and tmpfs are recognised and recorded as not effective; mounts below a root; ENOSPC; other uids.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recd.adapters.local import probes
from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern, OnIneffective
from recd.ports.eraser import EraseError, Refused
from tests import tools
from tests.adapters.local.helpers import LATER, TEMP, erase_as_decided, ident, marker, touch
from tests.adapters.loopfs import Mounts, physical_extents

pytestmark = pytest.mark.root

NOBODY = 65534


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@contextmanager
def as_uid(uid: int) -> Iterator[None]:
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


# -- ext4: the data is gone from the raw device ---------------------------------------------


@pytest.mark.parametrize("pattern", list(ErasePattern))
def test_ext4_overwrite_leaves_no_trace_in_the_raw_image(
    mounts: Mounts, pattern: ErasePattern
) -> None:
    # nodiscard: freed blocks must not be punched out of the image, which would hide leftovers.
    fs = mounts.loop("ext4", size_mb=32, options=("nodiscard",))
    root = fs.mountpoint / "rec"
    secret, unlinked, control = marker("erased"), marker("unlinked"), marker("control")
    st = touch(root / "1001" / "a.wav", secret * (3 * 1024 * 1024 // len(secret)))
    st_unlinked = touch(root / "1001" / "b.wav", unlinked * 1000)
    touch(root / "1001" / "keep.wav", control * 1000)
    os.sync()
    extents = physical_extents(root / "1001" / "a.wav")
    assert extents

    with LocalEraser(root, chunk_size=1 << 20) as e:
        decision, result = erase_as_decided(e, "1001/a.wav", st, EraseSettings(), pattern)
        assert decision == Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
        assert result == EraseResult(EraseMethod.OVERWRITE, True, None, st.st_size)
        unlink_only = EraseSettings(method=EraseMethod.UNLINK)
        erase_as_decided(e, "1001/b.wav", st_unlinked, unlink_only)
    assert sorted(os.listdir(root / "1001")) == ["keep.wav"]
    fs.unmount()

    assert not fs.image_contains(secret)
    assert fs.image_contains(control)
    assert fs.image_contains(unlinked)  # what unlink alone leaves behind: why recd overwrites
    for offset, length in extents:
        stored = fs.read_image(offset, length)
        assert secret not in stored
        if pattern is ErasePattern.ZEROS:
            assert stored == bytes(length)


def test_ext4_facts_and_fragmented_extents(mounts: Mounts) -> None:
    fs = mounts.loop("ext4", size_mb=16)
    path = fs.mountpoint / "a.wav"
    with path.open("wb") as f:
        for i in range(3 * probes.FIEMAP_BATCH):  # more extents than one FIEMAP call returns
            f.seek(i * 8192)
            f.write(b"x" * 4096)
    os.sync()
    assert len(physical_extents(path)) > 2 * probes.FIEMAP_BATCH
    st = path.stat()
    with LocalEraser(fs.mountpoint) as e, e.prepare("a.wav", *ident(st)) as p:
        assert (p.facts.fs_type, p.facts.data_journal, p.facts.shared_extents) == (
            "ext4", False, False,
        )  # fmt: skip


def test_ext3_is_named_from_the_mount_table(mounts: Mounts) -> None:
    fs = mounts.loop("ext3", size_mb=16)
    st = touch(fs.mountpoint / "a.wav")
    with LocalEraser(fs.mountpoint) as e, e.prepare("a.wav", *ident(st)) as p:
        assert (p.facts.fs_type, p.facts.data_journal) == ("ext3", False)


# -- where an overwrite is not effective ----------------------------------------------------


def test_ext4_data_journal_is_not_effective(mounts: Mounts) -> None:
    fs = mounts.loop("ext4", size_mb=16, options=("data=journal",))
    st = touch(fs.mountpoint / "a.wav")
    with LocalEraser(fs.mountpoint) as e:
        decision, result = erase_as_decided(e, "a.wav", st, EraseSettings())
    assert decision == Decision(Action.ERASE, EraseMethod.UNLINK, False, "ext4 data=journal")
    assert result == EraseResult(EraseMethod.UNLINK, False, "ext4 data=journal", 0)
    assert os.listdir(fs.mountpoint) == ["lost+found"]


def test_ext4_file_with_the_journal_data_attribute_is_not_effective(mounts: Mounts) -> None:
    fs = mounts.loop("ext4", size_mb=16)
    st = touch(fs.mountpoint / "a.wav")
    chattr = subprocess.run(
        [tools.need("chattr"), "+j", str(fs.mountpoint / "a.wav")],
        capture_output=True,
        text=True,
        check=False,
    )
    if chattr.returncode != 0:  # pragma: no cover (depends on the machine)
        pytest.skip(f"chattr +j needs CAP_SYS_RESOURCE: {chattr.stderr.strip()}")
    with LocalEraser(fs.mountpoint) as e, e.prepare("a.wav", *ident(st)) as p:
        assert p.facts.data_journal is True
        decision = decide(p.facts, EraseSettings(), LATER)
    assert decision.reason == "ext4 data=journal"


def test_ext4_without_the_mount_table_is_not_claimed_effective(
    mounts: Mounts, tmp_path: Path
) -> None:
    fs = mounts.loop("ext4", size_mb=16)
    st = touch(fs.mountpoint / "a.wav")
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("")  # and no self/fd: reopened by name
    with LocalEraser(fs.mountpoint, proc=proc) as e:
        decision, result = erase_as_decided(e, "a.wav", st, EraseSettings())
    assert decision.reason == "ext4 data journalling unknown"
    assert result == EraseResult(EraseMethod.UNLINK, False, "ext4 data journalling unknown", 0)


def test_btrfs_is_copy_on_write(mounts: Mounts) -> None:
    fs = mounts.loop("btrfs")
    st = touch(fs.mountpoint / "a.wav", b"x" * 100_000)
    with LocalEraser(fs.mountpoint) as e:
        with e.prepare("a.wav", *ident(st)) as p:
            assert p.facts.fs_type == "btrfs"
        decision, result = erase_as_decided(e, "a.wav", st, EraseSettings())
    assert decision == Decision(Action.ERASE, EraseMethod.UNLINK, False, "btrfs copy-on-write")
    assert result == EraseResult(EraseMethod.UNLINK, False, "btrfs copy-on-write", 0)
    assert os.listdir(fs.mountpoint) == []


def test_btrfs_reflink_is_seen_as_shared(mounts: Mounts) -> None:
    fs = mounts.loop("btrfs")
    touch(fs.mountpoint / "a.wav", os.urandom(256 * 1024))
    subprocess.run(
        ["cp", "--reflink=always", str(fs.mountpoint / "a.wav"), str(fs.mountpoint / "b.wav")],
        check=True,
    )
    os.sync()
    st = (fs.mountpoint / "b.wav").stat()
    with LocalEraser(fs.mountpoint) as e, e.prepare("b.wav", *ident(st)) as p:
        assert p.facts.shared_extents is True


def test_xfs_reflinked_extents_are_not_effective(mounts: Mounts) -> None:
    fs = mounts.loop("xfs", mkfs_args=("-m", "reflink=1"))
    touch(fs.mountpoint / "a.wav", os.urandom(256 * 1024))
    touch(fs.mountpoint / "plain.wav", os.urandom(256 * 1024))
    subprocess.run(
        ["cp", "--reflink=always", str(fs.mountpoint / "a.wav"), str(fs.mountpoint / "b.wav")],
        check=True,
    )
    os.sync()
    refuse = EraseSettings(on_ineffective=OnIneffective.REFUSE)
    with LocalEraser(fs.mountpoint) as e:
        st_a, st_plain = (fs.mountpoint / "a.wav").stat(), (fs.mountpoint / "plain.wav").stat()
        with e.prepare("a.wav", *ident(st_a)) as p:
            assert (p.facts.fs_type, p.facts.shared_extents) == ("xfs", True)
            assert decide(p.facts, refuse, LATER) == Decision(
                Action.REFUSE, EraseMethod.OVERWRITE, False, "shared extents (reflink)"
            )
        decision, result = erase_as_decided(e, "a.wav", st_a, EraseSettings())
        assert result == EraseResult(EraseMethod.UNLINK, False, "shared extents (reflink)", 0)
        decision, result = erase_as_decided(e, "plain.wav", st_plain, EraseSettings())
        assert decision == Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    assert sorted(os.listdir(fs.mountpoint)) == ["b.wav"]
    assert (fs.mountpoint / "b.wav").stat().st_size == 256 * 1024  # the reflink copy is kept


def test_tmpfs_is_not_effective_and_has_no_extent_map(mounts: Mounts, tmp_path: Path) -> None:
    root = mounts.tmpfs(tmp_path / "tmpfs").mountpoint
    st = touch(root / "a.wav")
    with LocalEraser(root) as e:
        with e.prepare("a.wav", *ident(st)) as p:
            assert (p.facts.fs_type, p.facts.data_journal, p.facts.shared_extents) == (
                "tmpfs", False, None,
            )  # fmt: skip
        decision, _ = erase_as_decided(e, "a.wav", st, EraseSettings())
    assert decision.reason == "tmpfs (memory may be swapped)"


# -- mounts below the root ------------------------------------------------------------------


def test_mount_inside_the_root_is_not_entered(mounts: Mounts, tmp_path: Path) -> None:
    root = tmp_path / "root"
    mounts.tmpfs(root / "mnt")
    st = touch(root / "mnt" / "x.wav")
    with LocalEraser(root) as e:
        with pytest.raises(Refused, match=r"^mnt is on another filesystem \(a mount below"):
            e.prepare("mnt/x.wav", *ident(st))
        with pytest.raises(Refused, match=r"^mnt is on another filesystem"):
            e.locate("mnt/x.wav", TEMP, st.st_dev, st.st_ino)
    assert (root / "mnt" / "x.wav").read_bytes() == b"recording"


def test_file_bind_mounted_at_the_name_is_not_touched(mounts: Mounts, tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "x.wav", b"underneath")
    other = mounts.tmpfs(tmp_path / "elsewhere").mountpoint
    touch(other / "secret.wav", b"elsewhere")
    mounts.bind(other / "secret.wav", root / "x.wav")
    st = (root / "x.wav").lstat()
    with LocalEraser(root) as e:
        with pytest.raises(Refused, match=r"^is on another filesystem \(a mount below the root\)$"):
            e.prepare("x.wav", *ident(st))
    assert (other / "secret.wav").read_bytes() == b"elsewhere"


@pytest.mark.parametrize(
    ("kind", "device", "text"),
    [(stat.S_IFCHR, os.makedev(1, 3), "a character device"),
     (stat.S_IFBLK, os.makedev(7, 250), "a block device")],
)  # fmt: skip
def test_device_node_is_refused_without_being_opened(
    tmp_path: Path, kind: int, device: int, text: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mknod(root / "x.wav", kind | 0o600, device)
    st = (root / "x.wav").lstat()
    with LocalEraser(root) as e, pytest.raises(Refused, match=rf"^is not a regular file \({text}"):
        e.prepare("x.wav", *ident(st))


# -- failures -------------------------------------------------------------------------------


def test_a_sparse_file_on_a_full_filesystem_is_overwritten_where_it_holds_data(
    mounts: Mounts,
) -> None:
    fs = mounts.loop("ext4", size_mb=8)
    root = fs.mountpoint
    with (root / "a.wav").open("wb") as f:
        f.write(b"secret" * 1000)
        f.truncate(64 * 1024 * 1024)  # mostly holes: writing them would need new blocks
    with (root / "filler").open("wb") as f:
        try:
            while True:
                f.write(b"\xff" * 65536)
                f.flush()
        except OSError:
            pass
    os.sync()
    st = (root / "a.wav").stat()
    with LocalEraser(root) as e, e.prepare("a.wav", *ident(st)) as p:
        decision = decide(p.facts, EraseSettings(), LATER)
        assert decision.method is EraseMethod.OVERWRITE
        result = e.erase(p, decision, pattern=ErasePattern.ZEROS, verify=True, temp_name=TEMP)
        e.sync()
    assert result.effective
    assert 6000 <= result.bytes_overwritten <= 64 * 1024  # the data blocks, not the holes
    assert not (root / "a.wav").exists()
    assert not (root / TEMP).exists()
    fs.unmount()
    assert not fs.image_contains(b"secret" * 100)


def test_read_only_filesystem_cannot_be_erased(mounts: Mounts) -> None:
    fs = mounts.loop("ext4", size_mb=8)
    st = touch(fs.mountpoint / "a.wav", b"secret")
    fs.remount("ro")
    decision = Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    with LocalEraser(fs.mountpoint) as e, e.prepare("a.wav", *ident(st)) as p:
        with pytest.raises(EraseError, match=r"^cannot open for writing: Read-only file system"):
            e.erase(p, decision, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        unlink = Decision(Action.ERASE, EraseMethod.UNLINK, False, "method is unlink")
        with pytest.raises(EraseError, match=r"^unlink failed: Read-only file system$"):
            e.erase(p, unlink, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
    assert (fs.mountpoint / "a.wav").read_bytes() == b"secret"


# -- another uid ----------------------------------------------------------------------------


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A root other users can enter (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="recd-test-"))
    try:
        root.chmod(0o755)
        yield root
    finally:
        shutil.rmtree(root)


def test_without_lease_rights_open_for_write_is_unknown(shared_root: Path) -> None:
    st = touch(shared_root / "a.wav")
    (shared_root / "a.wav").chmod(0o644)
    with LocalEraser(shared_root) as e, as_uid(NOBODY), e.prepare("a.wav", *ident(st)) as p:
        # Neither owner nor CAP_LEASE: the kernel will not say, so settle alone guards.
        assert p.facts.open_for_write is None


def test_unreadable_directory_is_an_os_error_not_a_refusal(shared_root: Path) -> None:
    st = touch(shared_root / "locked" / "a.wav")
    (shared_root / "locked").chmod(0o700)
    with LocalEraser(shared_root) as e, as_uid(NOBODY), pytest.raises(PermissionError):
        e.prepare("locked/a.wav", *ident(st))


def test_failing_disk_is_reported_and_nothing_leaks(mounts: Mounts) -> None:
    """A filesystem shut down under recd (as after an I/O error) fails every later step."""
    xfs_io = tools.need("xfs_io")  # its shutdown command works on ext4 too
    fs = mounts.loop("ext4", size_mb=8)
    st_a, st_b = touch(fs.mountpoint / "a.wav"), touch(fs.mountpoint / "b.wav")
    overwrite = Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    unlink = Decision(Action.ERASE, EraseMethod.UNLINK, False, "method is unlink")
    fds = len(os.listdir("/proc/self/fd"))
    with LocalEraser(fs.mountpoint) as e:
        with e.prepare("a.wav", *ident(st_a)) as a, e.prepare("b.wav", *ident(st_b)) as b:
            e.erase(a, unlink, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
            subprocess.run([xfs_io, "-x", "-c", "shutdown", str(fs.mountpoint)], check=True)
            with pytest.raises(EraseError, match=r": Input/output error$"):
                e.erase(b, overwrite, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP)
        with pytest.raises(OSError) as info:
            e.sync()  # the unlink of a.wav cannot be made durable: erase.done must not be written
        assert info.value.errno == errno.EIO
        e.sync()  # the failed directory was released, not retried forever
    assert len(os.listdir("/proc/self/fd")) == fds
