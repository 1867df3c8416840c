"""Choose how (and whether) to erase a local file from facts about it (SPEC section 4).

Pure: the facts are gathered by ``recd.adapters.local.erase`` and the time is passed in. Invariants:
a file with more than one hard link is never erased (REFUSE); a file modified within
``erase.settle``, with a modification time in the future, or open for writing is left for a later
sweep (SKIP); an erasure is ``effective`` only when an in-place overwrite reaches the stored
blocks, which is claimed only for filesystems known to overwrite in place (ext2/3/4 without data
journalling, XFS without shared extents, FAT and exFAT). Anything unknown, or that could not be
determined, counts as ineffective: the audit log must never claim more than was done.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recd.core.model import EraseMethod, ErasePattern, OnIneffective
from recd.core.objects import ObjectFacts


@dataclass(frozen=True, slots=True)
class EraseSettings:
    """The `[erase]` table."""

    method: EraseMethod = EraseMethod.OVERWRITE
    pattern: ErasePattern = ErasePattern.ZEROS
    verify: bool = False
    settle: timedelta = timedelta(minutes=2)
    on_ineffective: OnIneffective = OnIneffective.UNLINK


class Action(enum.StrEnum):
    """What to do with a due file now."""

    ERASE = "erase"
    SKIP = "skip"  # transient: try again at a later sweep
    REFUSE = "refuse"  # will not erase as things stand; reported


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """What the eraser found out about one file, just before erasing it.

    ``fs_type`` is a name such as ``ext4``, ``btrfs``, ``xfs``, ``tmpfs``, ``nfs``, ``overlay``,
    ``zfs``, ``fuse`` or ``unknown-0x1234`` (the statfs magic). ``data_journal`` is True when
    file data goes through the ext3/ext4 journal (mount option ``data=journal`` or the inode's
    ``j`` attribute); ``shared_extents`` is True when FIEMAP reports an extent shared with
    another file (reflink, snapshot). ``mtime_ns`` is nanoseconds since the epoch. ``size`` is
    the file's size now (recovery tells a truncated erase-in-progress from a new file by it).
    None means
    the eraser could not tell.
    """

    fs_type: str
    data_journal: bool | None
    shared_extents: bool | None
    nlink: int
    mtime_ns: int
    open_for_write: bool | None
    size: int = 0  # bytes, as found now
    #: Open by another process at all (a backup, a player): the erase would stop as soon as
    #: it started (it holds a write lease, which the kernel refuses then), so it waits.
    open_by_other: bool | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``decide``.

    ``reason`` says why for SKIP and REFUSE, and for an ERASE that is not effective (e.g.
    ``btrfs copy-on-write``); it is None for an effective overwrite.
    """

    action: Action
    method: EraseMethod
    effective: bool
    reason: str | None = None


#: Filesystems whose in-place overwrite reaches the blocks the data was stored in.
IN_PLACE = frozenset({"ext2", "ext3", "ext4", "xfs", "vfat", "msdos", "exfat"})
EXT_FAMILY = frozenset({"ext2", "ext3", "ext4"})
#: Filesystems that may share extents between files, so the sharing must be checked.
REFLINK_CAPABLE = frozenset({"xfs"})
NETWORK = frozenset({"nfs", "nfs4", "cifs", "smb2", "smb3", "ceph", "9p", "afs", "coda"})
KNOWN_REASONS = {
    "btrfs": "btrfs copy-on-write",
    "zfs": "zfs copy-on-write",
    "bcachefs": "bcachefs copy-on-write",
    "f2fs": "f2fs log-structured",
    "nilfs2": "nilfs2 log-structured",
    "overlay": "overlay filesystem",
    "tmpfs": "tmpfs (memory may be swapped)",
    "ramfs": "ramfs (freed memory is not cleared)",
    "fuse": "FUSE filesystem (storage unknown)",
    "ecryptfs": "ecryptfs (stacked filesystem)",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ineffective_reason(
    fs_type: str, data_journal: bool | None, shared_extents: bool | None
) -> str | None:
    """Why an in-place overwrite would not reach the stored blocks; None when it would."""
    reason = _filesystem_reason(fs_type)
    if reason is not None:
        return reason
    if fs_type in EXT_FAMILY and data_journal is not False:
        # data=journal writes the new data to the journal first; the old copy stays there too.
        return f"{fs_type} data=journal" if data_journal else f"{fs_type} data journalling unknown"
    if shared_extents:
        return "shared extents (reflink)"
    if shared_extents is None and fs_type in REFLINK_CAPABLE:
        return f"{fs_type} extent sharing unknown"
    return None


def _filesystem_reason(fs_type: str) -> str | None:
    if fs_type in NETWORK:
        return f"network filesystem ({fs_type})"
    if fs_type not in IN_PLACE:
        return KNOWN_REASONS.get(fs_type, f"filesystem {fs_type} not known to overwrite in place")
    return None


#: Why an S3 erase is never recorded as effective: no bytes are overwritten anywhere.
OBJECT_STORE = "object store: every version deleted, the store's disks are not overwritten"


def decide(facts: TargetFacts | ObjectFacts, settings: EraseSettings, now: datetime) -> Decision:
    """How to erase the file (or S3 key) described by ``facts`` at ``now`` (timezone-aware),
    if at all."""
    if isinstance(facts, ObjectFacts):
        return decide_object(facts, settings, now)
    return _decide_file(facts, settings, now)


def _decide_file(facts: TargetFacts, settings: EraseSettings, now: datetime) -> Decision:
    method = settings.method
    if method not in (EraseMethod.OVERWRITE, EraseMethod.UNLINK):
        raise ValueError(f"erase method {method} does not apply to local files")
    if facts.nlink > 1:
        return Decision(Action.REFUSE, method, False, f"has {facts.nlink} hard links")
    wait = _wait_reason(facts, settings.settle, now)
    if wait is not None:
        return Decision(Action.SKIP, method, False, wait)
    if method is EraseMethod.UNLINK:
        return Decision(Action.ERASE, method, False, "method is unlink (no overwrite)")
    reason = ineffective_reason(facts.fs_type, facts.data_journal, facts.shared_extents)
    if reason is None:
        return Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
    if settings.on_ineffective is OnIneffective.REFUSE:
        return Decision(Action.REFUSE, EraseMethod.OVERWRITE, False, reason)
    # SPEC section 4: the audit entry records the erasure as unlink, with the reason.
    return Decision(Action.ERASE, EraseMethod.UNLINK, False, reason)


def decide_object(facts: ObjectFacts, settings: EraseSettings, now: datetime) -> Decision:
    """How to erase one S3 key: delete every version and delete marker listed in ``facts``.

    Left for a later sweep (SKIP) when a version or delete marker came or went since the key
    was indexed (the next poll re-classifies it; an erase deletes only versions it was shown)
    or when the newest one is younger than ``erase.settle``. ``erase.method`` and
    ``on_ineffective`` are about overwriting files and do not apply: the erase is recorded as
    ``s3-delete``, never as effective (no overwrite reaches the store's disks).
    """
    method = EraseMethod.S3_DELETE
    if facts.fingerprint != facts.indexed:
        why = "versions changed since it was indexed; it is looked at again after the next poll"
        return Decision(Action.SKIP, method, False, why)
    wait = _settling(facts.mtime_ns, settings.settle, now)
    if wait is not None:
        return Decision(Action.SKIP, method, False, wait)
    return Decision(Action.ERASE, method, False, OBJECT_STORE)


def _wait_reason(facts: TargetFacts, settle: timedelta, now: datetime) -> str | None:
    """Why the file may still be being written, so that a later sweep should try again."""
    wait = _settling(facts.mtime_ns, settle, now)
    if wait is None and facts.open_for_write:
        return "open for writing by another process"
    if wait is None and facts.open_by_other:
        return "open by another process (reading it)"
    return wait


def _settling(mtime_ns: int, settle: timedelta, now: datetime) -> str | None:
    """Why something last modified at ``mtime_ns`` is too young to erase at ``now``."""
    # Rounded up, so a file never looks older than it is.
    age = now - (_EPOCH + timedelta(microseconds=-(-mtime_ns // 1000)))
    if age < timedelta(0):
        return "modification time is in the future"
    if age < settle:
        return f"modified less than {span(settle)} ago"
    return None


def span(delta: timedelta) -> str:
    """A duration in the largest whole unit of the config syntax: ``2m``, ``1h``, ``90s``."""
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
