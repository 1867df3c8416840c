"""S3 buckets as recording sources: list every version, read metadata.

``S3Source`` lists a bucket (and prefix) with ListObjectVersions, page by page: only the page
in hand and the versions of the key being assembled are held, never the bucket's listing. A
key with at least one data version is one recording (``recd.core.objects``); keys with only
delete markers, and folder markers (keys ending in ``/``), are not. Erasing keys is
``recd.adapters.s3.eraser``; the client, errors and the streamed listing ``client``.

boto3 and botocore are imported only by ``client``; the runtime imports this package only when
an S3 source is configured. Errors of S3 calls are ``S3Error`` (an ``OSError``), one line each.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from recd.adapters.s3.client import (
    GONE_CODES,
    Lister,
    S3Error,
    calls,
)
from recd.config.types import SourceConfig
from recd.core.model import FileFacts
from recd.core.objects import (
    KeySummary,
    summarise,
)
from recd.ports.source import ScanTotals

__all__ = ["S3ScanReport", "S3Source"]


@dataclass(frozen=True, slots=True)
class S3ScanReport:
    """A listing is all or nothing: no part of a bucket is unreadable on its own."""

    unreadable_dirs: tuple[str, ...] = ()


class S3Source:
    """One ``type = "s3"`` source (``ports.Source``); ``relpath`` is the full object key."""

    def __init__(
        self, name: str, config: SourceConfig, client: Any, *, page_size: int = 1000
    ) -> None:
        if not config.bucket:
            raise ValueError(f"source {name} has no bucket")
        self.name = name
        self.config = config
        self._lister = Lister(client, config.bucket, page_size)
        self._client = client
        self.last_scan: ScanTotals | None = None
        self._report = S3ScanReport()

    @property
    def report(self) -> S3ScanReport:
        return self._report

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        """Every recording below the prefix (or below the key "directory" ``under``), in key
        order. Raises ``S3Error`` when a page cannot be listed (nothing is then missing)."""
        prefix = under + "/" if under else self.config.prefix
        objects = versions = markers = size = 0
        for key, listed in self._lister.keys(prefix):
            if key.endswith("/"):
                continue  # a folder marker, not a recording
            summary = summarise(key, listed)
            markers += sum(v.delete_marker for v in listed)
            if summary is None:
                continue
            objects, versions, size = objects + 1, versions + summary.versions, size + summary.size
            yield self._facts(summary)
        if not under:
            self.last_scan = ScanTotals(objects, versions, markers, size)

    def _facts(self, summary: KeySummary) -> FileFacts:
        return FileFacts(
            source=self.name,
            relpath=summary.key,
            dev=0,
            ino=summary.fingerprint,
            size=summary.size,
            mtime_ns=summary.mtime_ns,
            born_ns=summary.born_ns,
        )

    def facts(self, relpath: str) -> FileFacts | None:
        """The recording at exactly the key ``relpath``, or None. Raises ``S3Error``."""
        if not relpath or relpath.endswith("/"):
            return None
        summary = summarise(relpath, self._lister.exactly([relpath]).get(relpath, []))
        return None if summary is None else self._facts(summary)

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        """Audio tags are not read from S3 objects (the config refuses ``tags = true``)."""
        raise OSError(errno.EOPNOTSUPP, "audio tags are not read from S3 objects", relpath)

    def metadata(self, relpath: str) -> Mapping[str, str]:
        """The user metadata (``x-amz-meta-*``) over the object tags, names lower-cased, of the
        newest data version (also under a delete marker). Raises ``S3Error``."""
        bucket = self._lister.bucket
        where = self._lister.where(relpath)
        version: dict[str, str] = {}
        try:
            with calls(where):
                head = self._client.head_object(Bucket=bucket, Key=relpath)
        except S3Error as exc:
            if exc.code not in GONE_CODES | {"405"}:
                raise
            version = {"VersionId": self._newest_data_version(relpath, exc)}
            with calls(where):
                head = self._client.head_object(Bucket=bucket, Key=relpath, **version)
        with calls(where):
            tags = self._client.get_object_tagging(Bucket=bucket, Key=relpath, **version)
        found = {t["Key"].lower(): t["Value"] for t in tags.get("TagSet", ())}
        found |= {k.lower(): v for k, v in head.get("Metadata", {}).items()}
        return found

    def _newest_data_version(self, key: str, error: S3Error) -> str:
        for version in self._lister.exactly([key]).get(key, []):
            if not version.delete_marker:
                return version.version_id
        raise error
