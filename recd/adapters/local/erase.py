"""Erase files of one local source root so that their data cannot be recovered (SPEC section 4).

``LocalEraser.prepare`` opens the indexed file with ``O_PATH|O_NOFOLLOW`` below a root walked
one directory at a time (``safefs``), so a symlink or a mount anywhere on the way, or at the
name, is refused (every directory and the file itself must have the root's device and mount id:
a bind mount of the root's own filesystem is refused too, before a byte is written) and a FIFO,
socket or device is never opened for I/O. The root itself is opened without following symlinks
and must still be the directory checked at start (``safefs.Root``). It checks the file is the
regular file that was indexed (device, inode, size) and gathers the ``TargetFacts`` that
``recd.core.erasure.decide`` needs: the filesystem type (``fstatfs``), ext data journalling
(the options in force from ``/proc/fs/ext4/<device>/options``, which include a filesystem
default set by ``tune2fs -o journal_data`` that ``/proc/self/mountinfo`` does not show, and the
inode's ``j`` attribute; unknown when either cannot be read), shared extents
(FIEMAP) and whether any process has the file open for writing (a read-lease probe). It changes
nothing.

``LocalEraser.erase`` is the irreversible step. An overwrite re-checks the identity, takes a
write lease on the file (refused while another process has it open), writes every byte in
fixed-size chunks (memory stays flat whatever the file size), flushes, optionally drops the
cache and reads back, truncates, renames the file to the intent's temporary name in the same
directory (never replacing an existing entry), checks the entry renamed is still the inode, and
unlinks it; once another process opens the file meanwhile (the lease is broken) it stops and
leaves the file at its name, partly overwritten. ``sync`` then flushes every directory touched,
once per batch. An unlink re-checks that the name still holds the inode before removing it. Any
failure raises ``EraseError`` with a one-line reason and never reports the erase as done.

Crash recovery: ``locate`` tells whether the indexed inode is at its name, at the temporary name
recorded in the intent, or gone. An erase found at the temporary name is finished by preparing
that name (``prepare(<dir>/<temp_name>, dev, ino, None)``: ``None`` skips the size check, as
the file may already be truncated) and calling ``erase`` with the same ``temp_name``; the rename
is then skipped.

Invariants: no path below the root is resolved by the kernel in one go (only fd-relative steps);
only the inode held open since ``prepare`` is ever written; nothing outside the root, no symlink
target and nothing on another filesystem is touched; every descriptor is closed on every path.

This module orchestrates; the safe opening and identity checks are ``checks``, the
effectiveness probes ``probes`` and the overwrite, rename and unlink ``overwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recd.adapters._closing import Closing
from recd.adapters._erasing import SingleErase
from recd.adapters.local import checks, safefs
from recd.adapters.local.overwrite import WriteLease, overwrite_held, step
from recd.adapters.local.probes import (
    EXT_NAMES,
    ExtFilesystems,
    filesystem_name,
    fstatfs_magic,
    inode_journals_data,
    lease_capable,
    openers,
    shared_extents,
    unwritable,
)
from recd.core.erasure import Action, TargetFacts
from recd.core.model import EraseMethod, ErasePattern, Stamps
from recd.errors import os_reason
from recd.ports.eraser import (
    EraseError,
    EraseJob,
    EraseOutcome,
    EraseTarget,
    Gone,
    PreparedErase,
    Whereabouts,
)

__all__ = ["NOT_PROBED", "EraseResult", "LocalEraser", "Prepared"]

#: ``TargetFacts.fs_type`` when the effectiveness probes are off (``erase.method = "unlink"``):
#: not a filesystem ``decide`` knows, so an overwrite decided on such facts is never claimed
#: effective.
NOT_PROBED = "not probed"

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class EraseResult:
    """What an erase did (``ports.EraseOutcome``).

    Not frozen: the port declares plain attributes, which a frozen dataclass does not satisfy.
    """

    method: EraseMethod
    effective: bool
    ineffective_reason: str | None
    bytes_overwritten: int
    details: Mapping[str, Any] = field(default_factory=dict)  # nothing more for files


class Prepared(Closing):
    """A file opened (``O_PATH``) and checked for erasure; ``close`` releases its descriptors."""

    __slots__ = ("_closed", "dir_fd", "facts", "name", "path_fd", "relpath", "st")

    def __init__(self, relpath: str, handle: checks.Handle, facts: TargetFacts) -> None:
        self.relpath = relpath
        self.name = handle.name  # the final component, in dir_fd
        self.dir_fd = handle.dir_fd
        self.path_fd = handle.path_fd
        self.st = handle.st  # as checked by prepare; erase insists nothing changed since
        self.facts = facts
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def details(self) -> Mapping[str, Any]:
        return {}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.path_fd)
            os.close(self.dir_fd)


class LocalEraser(SingleErase[EraseResult], Closing):
    """Erases files below one directory source root (``ports.Eraser``).

    ``proc`` is the procfs mount: ``<proc>/self/fd`` reopens the ``O_PATH`` descriptor for I/O,
    ``<proc>/self/mountinfo`` gives the ext type and mount source and ``<proc>/fs/ext4`` the
    options in force. ``sysfs`` names the block device (``<sysfs>/dev/block/MAJ:MIN/uevent``).
    Without procfs, files are reopened with ``openat(O_NOFOLLOW|O_NONBLOCK)`` and the inode
    compared, and ext data journalling counts as unknown (so an ext overwrite is not claimed
    effective). Without ``CAP_LEASE`` (``<proc>/self/status``) the writer check is off for
    files recd does not own: said once per root and run (``pins``) when the eraser is made,
    unless recd's own user owns the root (its recorder then writes as recd, and a lease on
    one's own file needs no capability). ``blocked``: why nothing can be erased below the root
    (a read-only mount, no write permission: ``statvfs`` and ``faccessat``), found when the
    eraser is made; the sweep then leaves the root's recordings alone. ``effectiveness``
    False (``erase.method = "unlink"``) skips the probes that only tell whether an overwrite
    would reach the stored blocks (statfs, the ext options, the inode's flags, FIEMAP): they
    cannot change an unlink. The writer check (leases) stays.
    """

    #: Files per audited sweep batch: each prepared file holds two descriptors until erased.
    batch = 256

    def __init__(
        self,
        root: Path,
        *,
        chunk_size: int = 4 * 1024 * 1024,
        proc: Path = Path("/proc"),
        pins: safefs.RootPins | None = None,
        sysfs: Path = Path("/sys"),
        statvfs: Callable[[int], os.statvfs_result] = os.fstatvfs,
        effectiveness: bool = True,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.root = root
        pins = safefs.RootPins() if pins is None else pins
        self._root = safefs.Root(root, pins=pins)
        if (
            self._root.resolved not in pins.leaseless
            and not _owned_by_us(root)
            and lease_capable(proc) is False
        ):
            pins.leaseless.add(self._root.resolved)
            logger.warning(
                "writer check off below %s: recd lacks CAP_LEASE, so the kernel refuses the "
                "leases that find a process writing or reading a file recd does not own "
                "(erase.settle alone guards against erasing a call still being recorded); "
                "add AmbientCapabilities=CAP_LEASE to the unit (systemctl edit recd), then "
                "restart recd",
                root,
            )
        self.blocked = self._unwritable(statvfs)
        self.chunk_size = chunk_size
        fd_dir = proc / "self" / "fd"
        self._fd_dir = fd_dir if fd_dir.is_dir() else None  # None: reopen by name
        self._ext = ExtFilesystems(proc, sysfs)
        self._effectiveness = effectiveness
        self._lease_warned: set[str] = set()  # why no write lease could be had, said once
        self._dirty: dict[tuple[int, int], int] = {}  # directory (dev, ino) -> fd to fsync

    def _unwritable(self, statvfs: Callable[[int], os.statvfs_result]) -> str | None:
        """Why nothing can be erased below the root (``probes.unwritable``), looked at once
        when the eraser is made (at start and each reload); None too for a root that cannot be
        opened now (the scan reports that)."""
        try:
            fd, _ = self._root.open()
        except OSError:
            return None
        try:
            return unwritable(fd, statvfs)
        finally:
            os.close(fd)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release directories not yet synced, without flushing them (nothing was claimed)."""
        dirty, self._dirty = self._dirty, {}
        for fd in dirty.values():
            os.close(fd)

    # -- prepare -----------------------------------------------------------------------------

    def prepare(
        self, relpath: str, dev: int, ino: int, size: int | None, stamps: Stamps | None = None
    ) -> Prepared:
        """Open the indexed file safely and gather the facts ``decide`` needs.

        Raises ``Gone`` when it is no longer there, ``Refused`` when it must not be touched
        (symlink or mount on the path or at the name, not a regular file, another inode, another
        size), ``OSError`` for anything else (e.g. the root cannot be opened). ``size`` None
        skips the size check (recovery of an erase that had already truncated the file).
        Changes nothing.
        """
        return self._prepare(relpath, dev, ino, size, stamps, None)

    def _prepare(
        self,
        relpath: str,
        dev: int,
        ino: int,
        size: int | None,
        stamps: Stamps | None,
        shared: checks.SharedDir | None,
    ) -> Prepared:
        if shared is None:
            dir_fd, name, root = checks.open_dir(self._root, relpath)
        else:
            dir_fd, name, root = shared.open(relpath)
        try:
            path_fd = checks.open_path(dir_fd, name)
        except BaseException:
            os.close(dir_fd)
            raise
        try:
            st = os.fstat(path_fd)
            checks.check_mount(path_fd, root)
            born = checks.birth_time(path_fd, stamps)
            checks.check_identity(st, root.dev, dev, ino, size, stamps, born)
            handle = checks.Handle(dir_fd, name, path_fd, st)
            return Prepared(relpath, handle, self._facts(handle))
        except BaseException:
            os.close(path_fd)
            os.close(dir_fd)
            raise

    def prepare_many(
        self, targets: Sequence[EraseTarget]
    ) -> list[PreparedErase | EraseError | OSError]:
        """``prepare`` each target in turn (a directory opened once for the files in it:
        ``checks.SharedDir``); a failure takes the target's place in the list."""
        out: list[PreparedErase | EraseError | OSError] = []
        with checks.SharedDir(self._root) as shared:
            for t in targets:
                try:
                    out.append(self._prepare(t.relpath, t.dev, t.ino, t.size, t.stamps, shared))
                except (EraseError, OSError) as exc:
                    out.append(exc)
                except Exception as exc:  # one file must never stop the batch
                    out.append(_unexpected("prepare", t.relpath, exc))
        return out

    def _facts(self, p: checks.Handle) -> TargetFacts:
        fs_type: str = NOT_PROBED
        data_journal: bool | None = None
        if self._effectiveness:
            fs_type, data_journal = filesystem_name(fstatfs_magic(p.path_fd)), False
        if fs_type in EXT_NAMES:
            fs_type, data_journal = self._ext.facts(p.st.st_dev)
        try:
            fd = checks.reopen(p, os.O_RDONLY, self._fd_dir)
        except BlockingIOError:
            raise BlockingIOError(errno.EAGAIN, "another process holds a lease on it") from None
        try:
            if data_journal is False and fs_type in EXT_NAMES:
                data_journal = inode_journals_data(fd)
            writer, reader = openers(fd)
            return TargetFacts(
                fs_type=fs_type,
                data_journal=data_journal,
                shared_extents=shared_extents(fd) if self._effectiveness else None,
                nlink=p.st.st_nlink,
                mtime_ns=p.st.st_mtime_ns,
                open_for_write=writer,
                size=p.st.st_size,
                open_by_other=reader,
            )
        finally:
            os.close(fd)

    # -- erase -------------------------------------------------------------------------------

    def _erase_job(self, job: EraseJob, *, pattern: ErasePattern, verify: bool) -> EraseResult:
        """The irreversible step, as ``job.decision`` says; never closes ``job.prepared``.

        Raises ``EraseError`` if it did not complete: ``Gone`` or ``Refused`` when the checks
        before writing found the file removed, linked, changed or replaced (nothing written),
        or when the rename moved another file (moved back); a plain ``EraseError`` when a step
        failed part-way (the file may be partly overwritten; it is never reported erased).
        ``ValueError`` for a caller's mistake (not an ERASE decision, a foreign ``prepared``,
        an unsafe ``temp_name``).
        """
        prepared, decision = job.prepared, job.decision
        if not isinstance(prepared, Prepared) or prepared.closed:
            raise ValueError("erase needs an open Prepared from LocalEraser.prepare")
        if decision.action is not Action.ERASE:
            raise ValueError(f"decision is {decision.action}, not erase")
        checks.check_name(job.temp_name)
        if decision.method is EraseMethod.UNLINK:
            self._recheck(prepared)
            with step("unlink"):
                os.unlink(prepared.name, dir_fd=prepared.dir_fd)
            self._touched(prepared.dir_fd)
            return EraseResult(EraseMethod.UNLINK, False, decision.reason, 0)
        if decision.method is not EraseMethod.OVERWRITE:
            raise ValueError(f"erase method {decision.method} does not apply to local files")
        written = self._overwrite(prepared, pattern, verify, job.temp_name)
        self._touched(prepared.dir_fd)
        reason = None if decision.effective else decision.reason
        return EraseResult(EraseMethod.OVERWRITE, decision.effective, reason, written)

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: ErasePattern, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        """``erase`` each job in turn (files gain nothing from batching but the directory
        flush, which ``sync`` does once); a failure takes the job's place in the list."""
        out: list[EraseOutcome | EraseError] = []
        for job in jobs:
            try:
                out.append(self._erase_job(job, pattern=pattern, verify=verify))
            except EraseError as exc:
                out.append(exc)
            except OSError as exc:
                out.append(EraseError(os_reason(exc)))
            except Exception as exc:  # one file must never stop the batch
                relpath = getattr(job.prepared, "relpath", "?")
                out.append(_unexpected("erase", relpath, exc))
        return out

    def digest(self, prepared: PreparedErase) -> str:
        """SHA-256 (hex) of the content of exactly the checked inode, read before erasing it
        (for a deletion certificate). ``erase`` then insists the file did not change since."""
        if not isinstance(prepared, Prepared) or prepared.closed:
            raise ValueError("digest needs an open Prepared from LocalEraser.prepare")
        p = prepared
        self._recheck(p)
        try:
            fd = checks.reopen(p, os.O_RDONLY, self._fd_dir)
        except OSError as exc:
            raise EraseError(f"cannot open for reading: {os_reason(exc)}") from exc
        with os.fdopen(fd, "rb") as f, step("read"):
            return hashlib.file_digest(f, "sha256").hexdigest()

    def _recheck(self, p: Prepared) -> None:
        """Nothing about the file changed since ``prepare``; its name still leads to it."""
        checks.recheck(p)

    def _overwrite(self, p: Prepared, pattern: ErasePattern, verify: bool, temp_name: str) -> int:
        """Overwrite, truncate, rename and unlink ``p``, all under a write lease.

        The lease (``WriteLease``) is taken on the descriptor written through before the first
        byte: the kernel refuses it while any other process has the file open, and breaks it
        when one opens it (making that open wait until the lease is released). It is checked
        between chunks and before the rename and the unlink: once broken, the erase stops, the
        lease is released at once and ``EraseError`` says what was already done to the file,
        which stays in place for a later sweep.
        """
        self._recheck(p)
        try:
            fd = checks.reopen(p, os.O_RDWR, self._fd_dir)
        except OSError as exc:
            raise EraseError(f"cannot open for writing: {os_reason(exc)}") from exc
        try:
            with WriteLease(fd) as lease:
                if lease.unavailable is not None:
                    self._no_lease(lease.unavailable)
                return overwrite_held(p, fd, lease, pattern, verify, temp_name, self.chunk_size)
        except BaseException:
            # The file stays. Its modification time is recd's writing, not the recording's:
            # put it back, or the next scan would take the file as changed and, where `started`
            # comes from the mtime, give it a deadline a whole retention period later.
            with contextlib.suppress(OSError):
                os.utime(fd, ns=(p.st.st_atime_ns, p.st.st_mtime_ns))
            raise
        finally:
            os.close(fd)

    def _no_lease(self, why: str) -> None:
        """Say once per reason that the check for openers during an erase is not possible."""
        if why not in self._lease_warned:
            self._lease_warned.add(why)
            logger.warning(
                "erasing below %s without a lease (%s): a process that opens a file while it "
                "is being erased is not noticed; erase.settle and the writer check before "
                "each erase still apply",
                self.root,
                why,
            )

    def _touched(self, dir_fd: int) -> None:
        st = os.fstat(dir_fd)
        key = (st.st_dev, st.st_ino)
        if key not in self._dirty:
            self._dirty[key] = os.dup(dir_fd)

    # -- sync, locate ------------------------------------------------------------------------

    def sync(self) -> None:
        """fsync every directory changed since the last call; raises the first ``OSError``
        after trying them all (every descriptor is released either way)."""
        dirty, self._dirty = self._dirty, {}
        failure: OSError | None = None
        for fd in dirty.values():
            try:
                os.fsync(fd)
            except OSError as exc:
                failure = failure or exc
            finally:
                os.close(fd)
        if failure is not None:
            raise failure

    def locate(self, relpath: str, temp_name: str, dev: int, ino: int) -> Whereabouts:
        """Where an interrupted erase left the inode ``(dev, ino)``: still at ``relpath``, at
        ``temp_name`` in the same directory, or neither (the erase completed).

        Raises ``Refused`` when the directory can no longer be reached safely (a symlink or
        mount now on the path) and ``OSError`` when the root cannot be opened: in both cases
        the inode may still exist and must not be reported gone.
        """
        checks.check_name(temp_name)
        try:
            dir_fd, name, _ = checks.open_dir(self._root, relpath)
        except Gone:
            return "gone"
        try:
            if checks.is_inode(dir_fd, name, dev, ino):
                return "original"
            if checks.is_inode(dir_fd, temp_name, dev, ino):
                return "temp"
            return "gone"
        finally:
            os.close(dir_fd)


def _unexpected(step: str, relpath: str, exc: Exception) -> EraseError:
    """A failure no check foresaw (a bug, not the file): logged with its traceback, and the
    file's erase fails alone with a one-line reason."""
    logger.error("%s of %s failed unexpectedly", step, relpath, exc_info=exc)
    return EraseError(f"{step} failed unexpectedly: {type(exc).__name__}: {exc}")


def _owned_by_us(root: Path) -> bool:
    """Whether this process's effective user owns ``root`` (False when it cannot be read)."""
    try:
        return os.stat(root).st_uid == os.geteuid()
    except OSError:
        return False
