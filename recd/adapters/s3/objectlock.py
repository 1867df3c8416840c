"""An S3 bucket's Object Lock: its default retention, and the legal hold of each version.

``ObjectLock`` is a part of ``S3Eraser`` (``ports.ObjectStore``): it reads versioning and the
default retention, reads every data version's legal hold and puts one ON or OFF. It never
weakens a lock: no retention is set or shortened here. A bucket created without Object Lock
gets a plain message saying so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from recd.adapters.s3.client import Lister, S3Error, calls, valid_key
from recd.core.objects import BucketState


class ObjectLock:
    """Object Lock calls on the bucket of an S3 eraser (its ``bucket``, client and lister)."""

    bucket: str
    _client: Any  # a boto3 S3 client
    _lister: Lister

    def bucket_state(self) -> BucketState:
        """Versioning and the Object Lock default retention. Raises ``S3Error``."""
        where = f"s3://{self.bucket}"
        with calls(where):
            versioning = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        try:
            with calls(where):
                reply = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except S3Error as exc:
            if exc.code != "ObjectLockConfigurationNotFoundError":
                raise
            return BucketState(versioning, False, None, None, None)
        lock = reply.get("ObjectLockConfiguration", {})
        default = lock.get("Rule", {}).get("DefaultRetention", {})
        return BucketState(  # "or None": some stores (moto) answer 0 for the unset one
            versioning,
            lock.get("ObjectLockEnabled") == "Enabled",
            default.get("Mode"),
            default.get("Days") or None,
            default.get("Years") or None,
        )

    def legal_holds(self, key: str) -> list[tuple[str, bool]]:
        """Every data version of exactly ``key`` and whether its S3 legal hold is ON (a
        version that never had one counts as OFF). Raises ``S3Error``."""
        holds = []
        listed = self._lister.exactly([key]).get(key, []) if valid_key(key) else []
        for version in listed:
            if version.delete_marker:
                continue
            try:
                with self._lock_calls(key):
                    reply = self._client.get_object_legal_hold(
                        Bucket=self.bucket, Key=key, VersionId=version.version_id
                    )
            except S3Error as exc:
                if exc.code != "NoSuchObjectLockConfiguration":
                    raise
                reply = {}
            holds.append((version.version_id, reply.get("LegalHold", {}).get("Status") == "ON"))
        return holds

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        """Put the S3 legal hold of one version ON or OFF. Raises ``S3Error``."""
        with self._lock_calls(key):
            self._client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=key,
                VersionId=version_id,
                LegalHold={"Status": "ON" if on else "OFF"},
            )

    @contextlib.contextmanager
    def _lock_calls(self, key: str) -> Iterator[None]:
        """``calls``, with a plain message for a bucket created without Object Lock."""
        try:
            with calls(self._lister.where(key)):
                yield
        except S3Error as exc:
            text = (exc.strerror or "").replace(" ", "").lower()
            if exc.code == "InvalidRequest" and "objectlock" in text:
                raise S3Error(
                    exc.code,
                    f"bucket {self.bucket} has no Object Lock; mirror_legal_holds needs a bucket "
                    "created with Object Lock",
                    exc.filename,
                ) from exc
            raise
