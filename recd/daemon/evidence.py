"""What the wall clock at start is checked against: the evidence the state already holds.

Read before recd writes anything (``start_evidence``): the last audit entry, or the time it
vouched for when the clock was in doubt as it was written (``UNCONFIRMED``), and the newest
time the indexed recordings vouch for (``newest_recording``). ``recd.core.safety`` decides
from these whether the clock is too far ahead; nothing here writes. Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from recd.core.times import parse_time

if TYPE_CHECKING:
    from recd.daemon.runtime import Runtime


#: config.loaded details written while the clock at start is in doubt: the time recd still
#: trusts, so that a restart compares with it rather than with the doubtful entry's own time.
UNCONFIRMED = "clock_unconfirmed"


def start_evidence(runtime: Runtime, now: datetime) -> dict[str, datetime | None]:
    """What the clock at start is compared with, read before recd writes anything: the last
    audit entry (or the time it vouched for, if the clock was in doubt when it was written)
    and the newest recording (directories indexed by the last run)."""
    last = runtime.audit.last()
    audit_time = None
    if last is not None:
        doubt = last.details.get(UNCONFIRMED)
        trusted = doubt.get("trusted") if isinstance(doubt, dict) else last.time
        audit_time = parse_time(str(trusted))
    return {
        "the last audit entry": audit_time,
        "the newest recording": newest_recording(runtime, now),
    }


def newest_recording(runtime: Runtime, now: datetime) -> datetime | None:
    """The newest time the recordings vouch for, up to ``now`` (later times are ignored).

    Directory sources: the change time (ctime, which users cannot set back) of each directory
    holding indexed recordings, and of the root: creating, renaming or erasing a recording sets
    its directory's, so this is the newest such event, from a few thousand ``lstat`` calls
    rather than one per file. S3 sources: the newest LastModified indexed (the server sets it).
    File modification times do not count: they are copied and set back freely.
    """
    limit = round(now.timestamp() * 1e9)
    stamps: list[int] = []
    s3: set[str] = set()
    for source in runtime.config.sources:
        if source.type == "s3":
            s3.add(source.name)
            continue
        assert source.path is not None
        for relpath in ["", *runtime.catalogue.dirs(source.name)]:
            try:
                stamps.append((source.path / relpath).lstat().st_ctime_ns)
            except OSError:
                continue  # gone since the scan: the scan's business, not the clock's
    for name in sorted(s3):
        newest = runtime.catalogue.newest_mtime_ns(name, limit)
        if newest is not None:
            stamps.append(newest)
    trusted = [stamp for stamp in stamps if stamp <= limit]
    return datetime.fromtimestamp(max(trusted) / 1e9, UTC) if trusted else None
