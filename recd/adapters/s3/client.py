"""The S3 plumbing under ``source``, ``eraser`` and ``objectlock``: the client (with Content-MD5
for the stores that demand it), one-line ``S3Error``s, and ListObjectVersions streamed key by key.

Only this module imports boto3 and botocore; the runtime imports the package only when a
configuration has an S3 source.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from recd.config.types import SourceConfig
from recd.core.objects import NULL_VERSION, ObjectVersion, common_prefix
from recd.core.times import format_iso

#: Operations whose body must carry Content-MD5 on stores that predate flexible checksums.
MD5_OPERATIONS = ("DeleteObjects", "PutObjectLegalHold")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Error codes of a read that found the key or version gone.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})


def make_client(source: SourceConfig, *, max_attempts: int = 5) -> Any:
    """An S3 client for ``source``; credentials come from boto3's usual chain.

    ``max_attempts`` is botocore's: retries after the first attempt (5: six in all)."""
    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if source.endpoint_url else "auto"},
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=source.endpoint_url, region_name=source.region, config=config
    )
    for operation in MD5_OPERATIONS:
        client.meta.events.register(f"before-sign.s3.{operation}", add_content_md5)
    return client


def add_content_md5(request: Any, **_: Any) -> None:
    """Give the request a Content-MD5 of its final body (``before-sign``: nothing changes the
    body after this). boto3 >= 1.36 sends a CRC32 checksum instead, which older MinIO and Ceph
    RGW do not accept for DeleteObjects and PutObjectLegalHold (``MissingContentMD5``)."""
    body = request.body or b""
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    del request.headers["Content-MD5"]  # headers may hold a name twice; never send two
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


class S3Error(OSError):
    """A failed S3 call, in one line: ``filename`` is the ``s3://`` location, ``strerror``
    the store's error code and message, ``code`` the code alone."""

    def __init__(self, code: str, message: str, where: str) -> None:
        super().__init__(None, f"{code}: {message}", where)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def s3_error(exc: Exception, where: str) -> S3Error:
    """``S3Error`` for a botocore ``ClientError`` or ``BotoCoreError`` (``NoCredentialsError``
    gives code ``NoCredentials``, ``EndpointConnectionError`` gives ``EndpointConnection``)."""
    if isinstance(exc, ClientError):
        return S3Error(*code_message(exc), where)
    name = type(exc).__name__
    return S3Error(name.removesuffix("Error") or name, str(exc), where)


def code_message(exc: Any) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "Unknown")
    return code, str(error.get("Message") or f"HTTP {status}")


@contextlib.contextmanager
def calls(where: str) -> Iterator[None]:
    """Turn the botocore errors of the calls inside into ``S3Error``."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise s3_error(exc, where) from exc


def valid_key(key: str) -> bool:
    """Whether ``key`` can name a recording: not empty, not a folder marker."""
    return bool(key) and not key.endswith("/")


def to_ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def iso_ns(ns: int) -> str:
    return format_iso(EPOCH + timedelta(microseconds=ns // 1000))


def version_of(entry: Mapping[str, Any], marker: bool) -> ObjectVersion:
    return ObjectVersion(
        version_id=str(entry.get("VersionId") or NULL_VERSION),
        delete_marker=marker,
        size=0 if marker else int(entry.get("Size", 0)),
        last_modified_ns=to_ns(entry["LastModified"]),
        etag=None if marker else entry.get("ETag"),
    )


class Lister:
    """ListObjectVersions, streamed: ``(key, versions newest first)`` in key order."""

    def __init__(self, client: Any, bucket: str, page_size: int) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be 1 to 1000")
        self.client = client
        self.bucket = bucket
        self.page_size = page_size

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def keys(
        self, prefix: str, last: str | None = None
    ) -> Iterator[tuple[str, list[ObjectVersion]]]:
        """Every key below ``prefix`` with its versions (which may span pages); stops past
        ``last`` if given, fetching no further page. Raises ``S3Error``."""
        entries: Iterator[tuple[str, ObjectVersion]]
        entries = (item for page in self._pages(prefix) for item in merged(page))
        if last is not None:
            entries = itertools.takewhile(lambda item: item[0] <= last, entries)
        for key, group in itertools.groupby(entries, key=lambda item: item[0]):
            yield key, newest_first([version for _, version in group])

    def exactly(self, keys: Sequence[str]) -> dict[str, list[ObjectVersion]]:
        """The versions of each of the sorted ``keys`` that has any, in one walk."""
        wanted = set(keys)
        return {k: v for k, v in self.keys(common_prefix(keys), keys[-1]) if k in wanted}

    def _pages(self, prefix: str) -> Iterator[Mapping[str, Any]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        params["MaxKeys"] = self.page_size
        while True:
            with calls(self.where(prefix)):
                page = self.client.list_object_versions(**params)
            yield page
            if not page.get("IsTruncated"):
                return
            marker = (page.get("NextKeyMarker"), page.get("NextVersionIdMarker"))
            if not marker[0] or marker == (params.get("KeyMarker"), params.get("VersionIdMarker")):
                raise S3Error("InvalidListing", "a truncated listing did not advance", prefix)
            params["KeyMarker"] = marker[0]
            params.pop("VersionIdMarker", None)
            if marker[1]:
                params["VersionIdMarker"] = marker[1]


def merged(page: Mapping[str, Any]) -> Iterator[tuple[str, ObjectVersion]]:
    """A page's versions and delete markers (each list sorted by key) merged by key."""
    versions = ((e["Key"], version_of(e, False)) for e in page.get("Versions", ()))
    markers = ((e["Key"], version_of(e, True)) for e in page.get("DeleteMarkers", ()))
    return heapq.merge(versions, markers, key=lambda item: item[0])


def newest_first(versions: list[ObjectVersion]) -> list[ObjectVersion]:
    # sorted() is stable: versions of equal times keep the store's (newest first) order.
    return sorted(versions, key=lambda v: -v.last_modified_ns)
