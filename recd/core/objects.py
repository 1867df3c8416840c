"""S3 objects as recordings: the versions of one key, summed up and checked (SPEC sections 2, 4).

Pure: the versions are listed by ``recd.adapters.s3.source`` and handed in. All versions and delete
markers of one key are one recording. A key is a recording while it has at least one data
version (a delete marker on top hides the object from plain listings, but the older versions
still hold the audio). Its ``size`` is the bytes of every data version, its ``mtime_ns`` the
newest change (version or delete marker), ``born_ns`` the oldest data version's LastModified
(the last resort for ``started``), and its ``fingerprint`` changes whenever a version or delete
marker is added or removed, so a rescan re-classifies exactly the keys that changed and an
erase never deletes versions it was not shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The version id S3 gives objects written while versioning was never enabled or suspended.
NULL_VERSION = "null"

#: Most keys (object versions) one DeleteObjects request may name (an S3 limit).
DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version or delete marker of one key, as ListObjectVersions reported it."""

    version_id: str  # "null" in unversioned buckets
    delete_marker: bool
    size: int  # 0 for a delete marker
    last_modified_ns: int  # nanoseconds since the epoch
    etag: str | None = None  # None for a delete marker


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What the eraser found of one key just before erasing it; ``indexed`` is the fingerprint
    the catalogue holds (the ``ino`` of the recording)."""

    key: str
    versions: tuple[ObjectVersion, ...]  # every version and delete marker of exactly ``key``
    indexed: int

    @property
    def size(self) -> int:
        return sum(v.size for v in self.versions if not v.delete_marker)

    @property
    def mtime_ns(self) -> int:
        return max((v.last_modified_ns for v in self.versions), default=0)

    @property
    def fingerprint(self) -> int:
        return fingerprint(self.versions)

    @property
    def data_versions(self) -> int:
        return sum(not v.delete_marker for v in self.versions)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket's versioning and Object Lock settings, as read at start."""

    versioning: str | None  # "Enabled", "Suspended", or None (never enabled)
    lock_enabled: bool
    default_mode: str | None  # "GOVERNANCE", "COMPLIANCE", or None (no default retention)
    default_days: int | None
    default_years: int | None

    @property
    def lock_period(self) -> str | None:
        if self.default_years:
            return f"{self.default_years} year{'s' if self.default_years != 1 else ''}"
        if self.default_days:
            return f"{self.default_days} day{'s' if self.default_days != 1 else ''}"
        return None


@dataclass(frozen=True, slots=True)
class KeySummary:
    """One key's versions reduced to what the catalogue keeps of a recording."""

    key: str
    size: int
    mtime_ns: int
    born_ns: int
    fingerprint: int
    versions: int  # data versions
    delete_markers: int


def fingerprint(versions: Iterable[ObjectVersion]) -> int:
    """A 63-bit number that changes when any version or delete marker comes or goes (or an
    unversioned object is overwritten): it stands in for a file's inode number."""
    h = hashlib.sha256()
    for v in sorted(versions, key=lambda v: (v.version_id, v.last_modified_ns)):
        mark = "D" if v.delete_marker else "V"
        h.update(f"{mark}\0{v.version_id}\0{v.size}\0{v.last_modified_ns}\0{v.etag}\n".encode())
    return int.from_bytes(h.digest()[:8], "big") >> 1


def summarise(key: str, versions: Sequence[ObjectVersion]) -> KeySummary | None:
    """The recording a key's versions make, or None when no data version is left."""
    data = [v for v in versions if not v.delete_marker]
    if not data:
        return None
    return KeySummary(
        key=key,
        size=sum(v.size for v in data),
        mtime_ns=max(v.last_modified_ns for v in versions),
        born_ns=min(v.last_modified_ns for v in data),
        fingerprint=fingerprint(versions),
        versions=len(data),
        delete_markers=len(versions) - len(data),
    )


def delete_batches(
    targets: Iterable[tuple[str, str]], size: int = DELETE_BATCH
) -> list[list[tuple[str, str]]]:
    """``(key, version_id)`` pairs split into DeleteObjects requests of at most ``size``."""
    if not 1 <= size <= DELETE_BATCH:
        raise ValueError(f"a DeleteObjects request names 1 to {DELETE_BATCH} objects")
    out: list[list[tuple[str, str]]] = []
    for target in targets:
        if not out or len(out[-1]) >= size:
            out.append([])
        out[-1].append(target)
    return out


def common_prefix(keys: Sequence[str]) -> str:
    """The ``Prefix`` of one ListObjectVersions walk that passes every one of the sorted
    ``keys``: their longest common prefix (other keys it lists are ignored).

    No ``KeyMarker`` is used to start at the first key: S3 compatible stores differ on
    whether a marker-only listing includes the marker's successor, and a version missed there
    would be missed by the confirmation listing too.
    """
    if not keys:
        raise ValueError("no keys")
    first, last = min(keys), max(keys)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def bucket_report(
    source: str,
    bucket: str,
    state: BucketState,
    *,
    mirror_legal_holds: bool,
    bypass_governance: bool = False,
) -> list[tuple[bool, str]]:
    """What to log about a bucket at start: ``(warning, line)`` pairs."""
    versioning = state.versioning
    lock_mode = (state.default_mode or "") if state.lock_enabled else None
    lock_period = state.lock_period
    where = f"source {source}: bucket {bucket}"
    kind = {"Enabled": "versioned", "Suspended": "versioning suspended"}.get(
        versioning or "", "not versioned"
    )
    if lock_mode is None:
        lock = "no Object Lock"
    elif not lock_mode:
        lock = "Object Lock without a default retention"
    else:
        lock = f"Object Lock, default retention {lock_mode} {lock_period or ''}".rstrip()
    lines = [(False, f"{where}: {kind}, {lock}")]
    if lock_mode == "COMPLIANCE":
        lines.append(
            (
                True,
                f"{where}: the COMPLIANCE default retention ({lock_period}) cannot be shortened or "
                "bypassed by anyone: no version can be erased before it ends, not even for a "
                "verified early-deletion request; such erasures will fail with AccessDenied",
            )
        )
    if lock_mode == "GOVERNANCE" and not bypass_governance:
        lines.append(
            (
                True,
                f"{where}: the GOVERNANCE default retention ({lock_period}) stops recd deleting a "
                "version before it ends (such erasures fail with AccessDenied) unless "
                "bypass_governance = true; keep it no longer than the shortest licence period",
            )
        )
    if mirror_legal_holds and lock_mode is None:
        lines.append(
            (
                True,
                f"{where}: mirror_legal_holds = true needs a bucket created with Object Lock; "
                "recd holds are not mirrored as S3 legal holds",
            )
        )
    return lines
