"""Shared by the S3 adapter tests: a source configuration, writing and listing versions
with a plain boto3 client, preparing and erasing keys with an ``S3Eraser``, the
Content-MD5 a request should carry, and AWS's ListObjectVersions and DeleteObjects
replies and parameters as ``Stubber`` expects them (``_entry``, ``_listing``,
``_list_params``, ``_delete_params``; bucket "calls", versions dated from ``T0``).
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from recd.adapters.s3.eraser import PreparedObject, S3Eraser
from recd.config.types import SourceConfig
from recd.core.classify import ClassifyRule
from recd.core.erasure import OBJECT_STORE, Action, Decision
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import EraseJob, EraseTarget

ERASE = Decision(Action.ERASE, EraseMethod.S3_DELETE, False, OBJECT_STORE)
NOWHERE = "http://127.0.0.1:9"  # Stubber clients never connect
LOCK_MESSAGE = "Access Denied because object protected by object lock."
MISSING_MD5 = "Missing required header for this request: Content-Md5."
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def config(bucket: str, url: str | None = NOWHERE, **kwargs: Any) -> SourceConfig:
    return SourceConfig(
        name="archive", type="s3", rule=ClassifyRule(timezone=UTC), bucket=bucket,
        endpoint_url=url, region="us-east-1", **kwargs,
    )  # fmt: skip


def put(s3: Any, bucket: str, key: str, *bodies: bytes, **kwargs: Any) -> list[str]:
    """Write each body as a new version of ``key``; their version ids, oldest first."""
    ids = []
    for body in bodies:
        reply = s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
        ids.append(reply.get("VersionId", "null"))
        time.sleep(0.002)  # moto orders versions by their millisecond
    return ids


def listed(s3: Any, bucket: str) -> dict[str, set[str]]:
    """Every key of the bucket with the ids of its versions and delete markers."""
    out: dict[str, set[str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            out.setdefault(entry["Key"], set()).add(entry["VersionId"])
    return out


def prepared(eraser: S3Eraser, *keys: str, size: int | None = None) -> list[PreparedObject]:
    out = []
    for p in eraser.prepare_many([EraseTarget(k, 0, 7, size) for k in keys]):
        assert isinstance(p, PreparedObject), p
        out.append(p)
    return out


def erase_keys(eraser: S3Eraser, *keys: str) -> list[Any]:
    jobs = [EraseJob(p, ERASE, "unused") for p in prepared(eraser, *keys)]
    return eraser.erase_many(jobs, pattern=ErasePattern.ZEROS, verify=False)


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


# -- AWS's replies, where moto differs (botocore Stubber) -------------------------------------


def _entry(key: str, vid: str, n: int, size: int = 1) -> dict[str, Any]:
    return {
        "Key": key, "VersionId": vid, "Size": size, "ETag": f'"e{vid}"', "IsLatest": n == 0,
        "LastModified": T0 - timedelta(seconds=n), "StorageClass": "STANDARD",
    }  # fmt: skip


def _listing(prefix: str, *versions: dict[str, Any], **page: Any) -> dict[str, Any]:
    return {"IsTruncated": False, "Name": "calls", "Prefix": prefix, "MaxKeys": 1000,
            "Versions": list(versions), **page}  # fmt: skip


def _list_params(prefix: str, **markers: str) -> dict[str, Any]:
    return {"Bucket": "calls", "Prefix": prefix, "MaxKeys": 1000, **markers}


def _delete_params(*pairs: tuple[str, str], **extra: Any) -> dict[str, Any]:
    objects = [{"Key": k, "VersionId": v} for k, v in pairs]
    return {"Bucket": "calls", "Delete": {"Objects": objects, "Quiet": True}, **extra}
