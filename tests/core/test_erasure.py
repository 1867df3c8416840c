"""decide() and ineffective_reason(): every branch, table-driven, with an explicit `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from recd.core.erasure import (
    Action,
    Decision,
    EraseSettings,
    TargetFacts,
    decide,
    ineffective_reason,
    span,
)
from recd.core.model import EraseMethod, OnIneffective

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_NS = int((NOW - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**9


def facts(**changes: object) -> TargetFacts:
    base = TargetFacts(
        fs_type="ext4",
        data_journal=False,
        shared_extents=False,
        nlink=1,
        mtime_ns=NOW_NS - 3600 * 10**9,
        open_for_write=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fs_type", "data_journal", "shared", "expected"),
    [
        ("ext4", False, False, None),
        ("ext3", False, None, None),  # ext has no reflink: FIEMAP failing does not matter
        ("ext2", False, False, None),
        ("xfs", False, False, None),
        ("xfs", True, False, None),  # data_journal only means something on ext
        ("vfat", False, None, None),
        ("msdos", False, None, None),
        ("exfat", False, None, None),
        ("ext4", True, False, "ext4 data=journal"),
        ("ext3", True, False, "ext3 data=journal"),
        ("ext4", None, False, "ext4 data journalling unknown"),
        ("xfs", False, True, "shared extents (reflink)"),
        ("ext4", False, True, "shared extents (reflink)"),
        ("xfs", False, None, "xfs extent sharing unknown"),
        ("btrfs", False, False, "btrfs copy-on-write"),
        ("btrfs", False, True, "btrfs copy-on-write"),
        ("zfs", False, None, "zfs copy-on-write"),
        ("bcachefs", False, None, "bcachefs copy-on-write"),
        ("f2fs", False, None, "f2fs log-structured"),
        ("nilfs2", False, None, "nilfs2 log-structured"),
        ("overlay", False, None, "overlay filesystem"),
        ("tmpfs", False, None, "tmpfs (memory may be swapped)"),
        ("ramfs", False, None, "ramfs (freed memory is not cleared)"),
        ("fuse", False, None, "FUSE filesystem (storage unknown)"),
        ("ecryptfs", False, None, "ecryptfs (stacked filesystem)"),
        ("nfs", False, None, "network filesystem (nfs)"),
        ("cifs", False, None, "network filesystem (cifs)"),
        ("smb2", False, None, "network filesystem (smb2)"),
        ("ceph", False, None, "network filesystem (ceph)"),
        ("9p", False, None, "network filesystem (9p)"),
        ("reiserfs", False, False, "filesystem reiserfs not known to overwrite in place"),
        (
            "unknown-0x1234",
            False,
            None,
            "filesystem unknown-0x1234 not known to overwrite in place",
        ),
    ],
)
def test_ineffective_reason(
    fs_type: str, data_journal: bool | None, shared: bool | None, expected: str | None
) -> None:
    assert ineffective_reason(fs_type, data_journal, shared) == expected


OVERWRITE = EraseSettings()
UNLINK = EraseSettings(method=EraseMethod.UNLINK)
REFUSE = EraseSettings(on_ineffective=OnIneffective.REFUSE)
SLOW = EraseSettings(settle=timedelta(hours=2))


@pytest.mark.parametrize(
    ("name", "target", "settings", "expected"),
    [
        (
            "effective overwrite",
            facts(),
            OVERWRITE,
            Decision(Action.ERASE, EraseMethod.OVERWRITE, True, None),
        ),
        (
            "hard links refused before anything else",
            facts(nlink=2, mtime_ns=NOW_NS, open_for_write=True, fs_type="btrfs"),
            OVERWRITE,
            Decision(Action.REFUSE, EraseMethod.OVERWRITE, False, "has 2 hard links"),
        ),
        (
            "hard links refused for unlink too",
            facts(nlink=3),
            UNLINK,
            Decision(Action.REFUSE, EraseMethod.UNLINK, False, "has 3 hard links"),
        ),
        (
            "modified just now",
            facts(mtime_ns=NOW_NS, open_for_write=True),
            OVERWRITE,
            Decision(Action.SKIP, EraseMethod.OVERWRITE, False, "modified less than 2m ago"),
        ),
        (
            "modified one nanosecond short of settle",
            facts(mtime_ns=NOW_NS - 120 * 10**9 + 1),
            OVERWRITE,
            Decision(Action.SKIP, EraseMethod.OVERWRITE, False, "modified less than 2m ago"),
        ),
        (
            "modified exactly settle ago",
            facts(mtime_ns=NOW_NS - 120 * 10**9),
            OVERWRITE,
            Decision(Action.ERASE, EraseMethod.OVERWRITE, True, None),
        ),
        (
            "settle in the message is the configured one",
            facts(),
            SLOW,
            Decision(Action.SKIP, EraseMethod.OVERWRITE, False, "modified less than 2h ago"),
        ),
        (
            "mtime in the future (clock skew) is never erased",
            facts(mtime_ns=NOW_NS + 1),
            EraseSettings(settle=timedelta(0)),
            Decision(
                Action.SKIP, EraseMethod.OVERWRITE, False, "modification time is in the future"
            ),
        ),
        (
            "open for writing",
            facts(open_for_write=True),
            OVERWRITE,
            Decision(
                Action.SKIP, EraseMethod.OVERWRITE, False, "open for writing by another process"
            ),
        ),
        (
            "open by a reader (a backup, a player): the erase would stop at once",
            facts(open_by_other=True),
            OVERWRITE,
            Decision(
                Action.SKIP, EraseMethod.OVERWRITE, False, "open by another process (reading it)"
            ),
        ),
        (
            "open for writing unknown: settle alone guards",
            facts(open_for_write=None),
            OVERWRITE,
            Decision(Action.ERASE, EraseMethod.OVERWRITE, True, None),
        ),
        (
            "method unlink",
            facts(),
            UNLINK,
            Decision(Action.ERASE, EraseMethod.UNLINK, False, "method is unlink (no overwrite)"),
        ),
        (
            "method unlink on btrfs says unlink, not copy-on-write",
            facts(fs_type="btrfs"),
            UNLINK,
            Decision(Action.ERASE, EraseMethod.UNLINK, False, "method is unlink (no overwrite)"),
        ),
        (
            "ineffective overwrite becomes unlink with the reason",
            facts(fs_type="btrfs"),
            OVERWRITE,
            Decision(Action.ERASE, EraseMethod.UNLINK, False, "btrfs copy-on-write"),
        ),
        (
            "ineffective overwrite refused when asked to",
            facts(fs_type="xfs", shared_extents=True),
            REFUSE,
            Decision(Action.REFUSE, EraseMethod.OVERWRITE, False, "shared extents (reflink)"),
        ),
        (
            "refuse setting does not matter when effective",
            facts(fs_type="xfs"),
            REFUSE,
            Decision(Action.ERASE, EraseMethod.OVERWRITE, True, None),
        ),
        (
            "ext4 data=journal",
            facts(data_journal=True),
            OVERWRITE,
            Decision(Action.ERASE, EraseMethod.UNLINK, False, "ext4 data=journal"),
        ),
    ],
)
def test_decide(
    name: str, target: TargetFacts, settings: EraseSettings, expected: Decision
) -> None:
    assert decide(target, settings, NOW) == expected, name


def test_decide_rejects_a_method_that_is_not_for_local_files() -> None:
    with pytest.raises(ValueError, match="erase method s3-delete does not apply to local files"):
        decide(facts(), EraseSettings(method=EraseMethod.S3_DELETE), NOW)


def test_decide_needs_an_aware_now() -> None:
    with pytest.raises(TypeError):
        decide(facts(), OVERWRITE, NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=2), "2m"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=2), "2d"),
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(0), "0s"),
    ],
)
def test_span(delta: timedelta, text: str) -> None:
    assert span(delta) == text


def test_settings_defaults_match_the_spec() -> None:
    s = EraseSettings()
    assert (s.method, str(s.pattern), s.verify, s.settle, str(s.on_ineffective)) == (
        EraseMethod.OVERWRITE, "zeros", False, timedelta(minutes=2), "unlink",
    )  # fmt: skip
