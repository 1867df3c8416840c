"""Real filesystems for root-only tests: loop-mounted images, tmpfs and bind mounts.

Everything lives below the test's ``tmp_path``. ``Mounts`` undoes what it did in reverse order
on ``close`` (a context manager), even after a failed test: each mount is unmounted (lazily as a
last resort, so a busy mount never leaks) and each loop device detached. Use it from a fixture::

    @pytest.fixture
    def mounts(tmp_path: Path) -> Iterator[Mounts]:
        with Mounts(tmp_path) as m:
            yield m

    def test_x(mounts: Mounts) -> None:
        fs = mounts.loop("ext4", size_mb=32)
        (fs.mountpoint / "a.wav").write_bytes(b"...")
        fs.unmount()  # e.g. to read the raw image; close() will not unmount it twice
"""

from __future__ import annotations

import fcntl
import itertools
import os
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from recd.adapters._closing import Closing
from tests import tools

MKFS = {
    "ext2": ["mkfs.ext2", "-F", "-q", "-m", "0"],
    "ext4": ["mkfs.ext4", "-F", "-q", "-m", "0"],
    "ext3": ["mkfs.ext3", "-F", "-q", "-m", "0"],
    "btrfs": ["mkfs.btrfs", "-f", "-q"],
    "xfs": ["mkfs.xfs", "-f", "-q"],
}
#: Smallest images the tools accept (mkfs.xfs refuses below 300 MiB).
MIN_MB = {"ext2": 4, "ext4": 4, "ext3": 4, "btrfs": 128, "xfs": 300}


def run(*args: str) -> str:
    """Run a command; on failure the error names it and shows its stderr."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def physical_extents(path: Path) -> list[tuple[int, int]]:
    """``(physical byte offset on the device, length)`` of each extent of ``path`` (FIEMAP,
    after flushing the file), so a test can look at exactly those bytes of the raw image."""
    header = struct.Struct("=QQIIII")
    extent = struct.Struct("=QQQ16xI12x")
    found: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        start = 0
        while True:
            buf = bytearray(header.size + extent.size * 32)
            header.pack_into(buf, 0, start, 2**64 - 1 - start, 1, 0, 32, 0)  # FIEMAP_FLAG_SYNC
            fcntl.ioctl(fd, 0xC020660B, buf, True)
            mapped = header.unpack_from(buf, 0)[3]
            last = mapped == 0
            for i in range(mapped):
                logical, physical, length, flags = extent.unpack_from(
                    buf, header.size + i * extent.size
                )
                found.append((physical, length))
                start = logical + length
                last = last or bool(flags & 1)
            if last:
                return found
    finally:
        os.close(fd)


@dataclass(slots=True)
class Mount:
    """One mount made by ``Mounts``; ``unmount`` is idempotent."""

    mountpoint: Path
    mounted: bool = True

    def unmount(self) -> None:
        if not self.mounted:
            return
        for attempt in range(20):
            proc = subprocess.run(
                ["umount", str(self.mountpoint)], capture_output=True, check=False
            )
            if proc.returncode == 0:
                break
            time.sleep(0.05 * (attempt + 1))  # a just-exited process may still hold it
        else:
            run("umount", "--lazy", str(self.mountpoint))
        self.mounted = False

    def remount(self, *options: str) -> None:
        """Change mount options in place, e.g. ``remount("ro")``."""
        run("mount", "-o", ",".join(("remount", *options)), str(self.mountpoint))


@dataclass(slots=True)
class LoopFs(Mount):
    """A filesystem made in an image file and mounted through a loop device."""

    image: Path = field(default_factory=Path)
    device: str = ""
    fstype: str = ""
    attached: bool = True

    def detach(self) -> None:
        self.unmount()
        if self.attached:
            run("losetup", "--detach", self.device)
            self.attached = False

    def image_contains(self, needle: bytes, chunk: int = 1 << 20) -> bool:
        """Whether the raw image holds ``needle`` (read in chunks; unmount first)."""
        overlap = len(needle) - 1
        tail = b""
        with self.image.open("rb") as f:
            while block := f.read(chunk):
                if needle in tail + block:
                    return True
                tail = block[-overlap:] if overlap else b""
        return False

    def read_image(self, offset: int, length: int) -> bytes:
        with self.image.open("rb") as f:
            f.seek(offset)
            return f.read(length)


class Mounts(Closing):
    """Mounts made by one test below ``base``; ``close`` undoes them all, newest first."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._made: list[Mount] = []
        self._names = itertools.count()

    def _dir(self, kind: str) -> Path:
        path = self.base / f"{kind}-{next(self._names)}"
        path.mkdir(parents=True)
        return path

    def loop(
        self,
        fstype: str,
        *,
        size_mb: int | None = None,
        mkfs_args: tuple[str, ...] = (),
        options: tuple[str, ...] = (),
        mountpoint: Path | None = None,
    ) -> LoopFs:
        """Make an ``fstype`` filesystem in a sparse image and mount it (``-o options``); the
        test skips, naming the package, when ``mkfs.<fstype>`` or ``losetup`` is missing."""
        tools.need(MKFS[fstype][0], "losetup", "mount")
        work = self._dir(f"loop-{fstype}")
        image = work / "image"
        with image.open("wb") as f:
            f.truncate((size_mb or MIN_MB[fstype]) * 1024 * 1024)
        run(*MKFS[fstype], *mkfs_args, str(image))
        target = mountpoint or work / "mnt"
        target.mkdir(exist_ok=True)
        device = run("losetup", "--find", "--show", str(image)).strip()
        fs = LoopFs(target, mounted=False, image=image, device=device, fstype=fstype)
        self._made.append(fs)
        args = ["mount", "-t", fstype]
        if options:
            args += ["-o", ",".join(options)]
        run(*args, device, str(target))
        fs.mounted = True
        return fs

    def tmpfs(self, target: Path, *, size: str = "1m") -> Mount:
        """Mount a tmpfs on ``target`` (created if need be)."""
        target.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target))
        mount = Mount(target)
        self._made.append(mount)
        return mount

    def bind(self, source: Path, target: Path, *, recursive: bool = False) -> Mount:
        """Bind-mount ``source`` (a file or directory) on ``target``, which must exist;
        ``recursive`` takes the mounts below ``source`` along (``--rbind``)."""
        run("mount", "--rbind" if recursive else "--bind", str(source), str(target))
        mount = Mount(target)
        self._made.append(mount)
        return mount

    def close(self) -> None:
        errors: list[Exception] = []
        while self._made:
            made = self._made.pop()
            try:
                if isinstance(made, LoopFs):
                    made.detach()
                else:
                    made.unmount()
            except Exception as exc:  # keep undoing the rest; report at the end
                errors.append(exc)
        if errors:
            raise errors[0]
