"""Erase S3 keys: delete every version and delete marker by its id, then confirm none is left.

``S3Eraser`` erases keys (SPEC section 4). Invariants:

- exact keys only: a listing by prefix is filtered to exactly the keys asked for, so erasing
  ``a.wav`` never touches ``a.wav.meta`` or ``a.wav2``;
- explicit version ids only: DeleteObjects names every version and delete marker the prepare
  listing showed, each by its version id; nothing is deleted by key alone (that would only
  add a delete marker) and no version the eraser was not shown is ever named;
- at most 1,000 versions per DeleteObjects request (``delete_batches``), with Content-MD5;
- per-key errors of a 200 reply are read: transient codes are retried for the failed pairs
  only, permanent ones (Object Lock refusals come back as AccessDenied) fail that key;
- every wait before a retry (of a delete, of a lagging confirmation listing) is capped
  exponential backoff with full jitter (``recd.core.backoff``), drawn from the eraser's own
  random source, so erasers throttled together (``SlowDown``) do not retry together;
- one confirmation listing after the deletes: an erase is reported done only when no version
  or delete marker of the key is left; anything left is a failure, never a success;
- ``digest`` reads each data version by its id with ``If-Match`` set to its listed ETag, so an
  object overwritten in a bucket without versioning (version id "null") is refused, not hashed
  (DeleteObjects itself cannot be made conditional there: an overwrite between ``digest`` and
  the delete is the one race left, as for any unversioned store);
- Object Lock is never weakened: ``x-amz-bypass-governance-retention`` is sent only when the
  source sets ``bypass_governance``, retention is never shortened (no PutObjectRetention) and a
  COMPLIANCE retention simply fails the erase with its reason.

The bucket's Object Lock state and legal holds are ``objectlock``; the client, errors and the
streamed listing ``client``. Errors of S3 calls are ``S3Error`` (an ``OSError``), one line
each.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from recd.adapters._closing import Closing
from recd.adapters._erasing import SingleErase
from recd.adapters.s3.client import GONE_CODES, Lister, S3Error, calls, iso_ns, valid_key
from recd.adapters.s3.objectlock import ObjectLock
from recd.config.types import SourceConfig
from recd.core.backoff import ceiling, full_jitter
from recd.core.erasure import OBJECT_STORE, Action
from recd.core.model import EraseMethod, ErasePattern, Stamps
from recd.core.objects import (
    ObjectFacts,
    ObjectVersion,
    common_prefix,
    delete_batches,
)
from recd.core.times import format_iso
from recd.errors import os_reason
from recd.ports.eraser import (
    EraseError,
    EraseJob,
    EraseOutcome,
    EraseTarget,
    Gone,
    PreparedErase,
    Refused,
)

__all__ = ["PreparedObject", "S3EraseResult", "S3Eraser", "TRANSIENT"]

#: Per-key DeleteObjects error codes worth another try (the store was busy, not unwilling).
TRANSIENT = frozenset(
    {
        "InternalError",
        "SlowDown",
        "ServiceUnavailable",
        "RequestTimeout",
        "OperationAborted",
        "Throttling",
        "500",
        "503",
    }
)
READ_CHUNK = 1024 * 1024

Pair = tuple[str, str]  # (key, version id)


@dataclass(slots=True)
class S3EraseResult:
    """What an S3 erase did (``ports.EraseOutcome``): never effective, no bytes overwritten.

    Not frozen: the port declares plain attributes, which a frozen dataclass does not satisfy.
    """

    details: Mapping[str, Any]
    method: EraseMethod = EraseMethod.S3_DELETE
    effective: bool = False
    ineffective_reason: str | None = OBJECT_STORE
    bytes_overwritten: int = 0


class PreparedObject(Closing):
    """The versions and delete markers of one key as listed just before erasing it."""

    __slots__ = ("_closed", "_details", "eraser", "facts")

    def __init__(self, eraser: S3Eraser, bucket: str, facts: ObjectFacts) -> None:
        self.eraser = eraser
        self.facts = facts
        self._closed = False
        self._details: dict[str, Any] = {
            "bucket": bucket,
            "key": facts.key,
            "versions": [
                {
                    "version_id": v.version_id,
                    "delete_marker": v.delete_marker,
                    "size": v.size,
                    "last_modified": iso_ns(v.last_modified_ns),
                }
                for v in facts.versions
            ],
        }

    @property
    def details(self) -> Mapping[str, Any]:
        return self._details

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pairs(self) -> list[Pair]:
        return [(self.facts.key, v.version_id) for v in self.facts.versions]

    def close(self) -> None:
        self._closed = True


@dataclass(slots=True)
class _Tally:
    """What the deletes of one ``erase_many`` met: the pairs that failed (code, message) and
    every error code seen per key (retried ones included)."""

    failed: dict[Pair, tuple[str, str]] = field(default_factory=dict)
    codes: dict[str, Counter[str]] = field(default_factory=dict)

    def seen(self, key: str, code: str) -> None:
        self.codes.setdefault(key, Counter())[code] += 1


class S3Eraser(SingleErase[EraseOutcome], ObjectLock, Closing):
    """Erases keys of one S3 source (``ports.Eraser``) and reads and sets its bucket's Object
    Lock state (``ports.ObjectStore``). ``errors`` counts every per-key error code the store
    returned, retried ones included.

    Transiently failed deletes are retried up to ``retries`` times, and a confirmation listing
    that still shows deleted versions is repeated up to ``confirm_attempts`` times in all.
    Before retry ``n`` the eraser sleeps a time drawn uniformly from
    ``[0, min(backoff_cap, backoff * 2 ** (n - 1)))`` seconds (full jitter), with draws from
    ``rng``: by default a ``random.SystemRandom`` (the OS's source: no seed two erasers or
    two forked processes could share). ``backoff_cap`` (10 s) bounds any one sleep, as a sweep
    sleeps on the daemon's main loop: signals, admin commands and the watchdog ping (every
    60 s under the shipped unit) wait for it. At the default ``backoff`` and ``retries``
    (0.2 s, 4: windows of 0.2 to 1.6 s) the cap is not reached; it holds when they are raised.
    Whole requests are retried, also jittered, by botocore's standard mode (``make_client``).
    """

    #: Keys per audited sweep batch: one listing walk and DeleteObjects requests of 1,000
    #: versions serve a thousand keys (the sweep's default suits files: two descriptors each).
    batch = 1000
    blocked: str | None = None  # a bucket is never judged unwritable up front

    def __init__(  # noqa: PLR0913 (the retry knobs are keyword-only tuning for tests)
        self,
        name: str,
        config: SourceConfig,
        client: Any,
        *,
        page_size: int = 1000,
        retries: int = 4,
        backoff: float = 0.2,
        backoff_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        confirm_attempts: int = 3,
    ) -> None:
        if not config.bucket:
            raise ValueError(f"source {name} has no bucket")
        self.name = name
        self.config = config
        self.bucket: str = config.bucket
        self._client = client
        self._lister = Lister(client, config.bucket, page_size)
        ceiling(1, backoff, backoff_cap)  # a bad backoff raises ValueError now, not mid-erase
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng if rng is not None else random.SystemRandom()
        self.confirm_attempts = max(1, confirm_attempts)
        self.errors: Counter[str] = Counter()

    def close(self) -> None:
        """Nothing to release: the client is shared with the source."""

    def sync(self) -> None:
        """Nothing to flush: a confirmed delete is already durable."""

    # -- prepare -----------------------------------------------------------------------------

    def prepare(
        self, relpath: str, dev: int, ino: int, size: int | None, stamps: Stamps | None = None
    ) -> PreparedObject:
        """List every version and delete marker of exactly ``relpath``. Raises ``Gone`` when
        no data version is left (with ``size`` None, as recovery prepares, delete markers
        alone are still prepared so they can be deleted), ``EraseError`` when the listing
        failed. Changes nothing."""
        result = self.prepare_many([EraseTarget(relpath, dev, ino, size)])[0]
        if isinstance(result, (EraseError, OSError)):
            raise result
        assert isinstance(result, PreparedObject)
        return result

    def prepare_many(
        self, targets: Sequence[EraseTarget]
    ) -> list[PreparedErase | EraseError | OSError]:
        """``prepare`` for a batch, listing all its keys in one walk."""
        keys = sorted({t.relpath for t in targets if valid_key(t.relpath)})
        found: dict[str, list[ObjectVersion]] = {}
        if keys:
            try:
                found = self._lister.exactly(keys)
            except S3Error as exc:
                return [exc for _ in targets]  # transient: tried again at the next sweep
        return [self._prepared(t, found.get(t.relpath, [])) for t in targets]

    def _prepared(
        self, target: EraseTarget, versions: list[ObjectVersion]
    ) -> PreparedErase | EraseError:
        if not valid_key(target.relpath):
            return Refused(f"{target.relpath!r} is not an object key")
        if not versions or (target.size is not None and all(v.delete_marker for v in versions)):
            return Gone("no version of the key is left")
        facts = ObjectFacts(target.relpath, tuple(versions), indexed=target.ino)
        return PreparedObject(self, self.bucket, facts)

    def digest(self, prepared: PreparedErase) -> str:
        """SHA-256 (hex) of the newest data version; every data version is read (streamed,
        checked against its listed ETag) and its SHA-256 added to ``details``. Raises ``Gone``
        when a version vanished, ``Refused`` when one changed, ``EraseError`` otherwise."""
        obj = self._own(prepared)
        newest: str | None = None
        for entry in obj.details["versions"]:
            if entry["delete_marker"]:
                continue
            version = next(v for v in obj.facts.versions if v.version_id == entry["version_id"])
            entry["sha256"] = self._read_digest(obj.facts.key, version)
            newest = newest or entry["sha256"]
        if newest is None:
            raise Gone("no data version of the key is left")
        return newest

    def _read_digest(self, key: str, version: ObjectVersion) -> str:
        check = {"IfMatch": version.etag} if version.etag else {}
        h = hashlib.sha256()
        try:
            with calls(self._lister.where(key)):
                reply = self._client.get_object(
                    Bucket=self.bucket, Key=key, VersionId=version.version_id, **check
                )
                with contextlib.closing(reply["Body"]) as body:
                    for chunk in body.iter_chunks(READ_CHUNK):
                        h.update(chunk)
        except S3Error as exc:
            _raise_read_error(exc, version.version_id)
        return h.hexdigest()

    # -- erase -------------------------------------------------------------------------------

    def _erase_job(self, job: EraseJob, *, pattern: ErasePattern, verify: bool) -> EraseOutcome:
        """Delete every listed version and delete marker and confirm none is left. Raises
        ``EraseError`` when it did not complete; ``ValueError`` for a caller's mistake."""
        result = self.erase_many([job], pattern=pattern, verify=verify)[0]
        if isinstance(result, EraseError):
            raise result
        return result

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: ErasePattern, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        """Delete the versions of every job in DeleteObjects requests of up to 1,000, then
        confirm with one listing; each job's outcome in order (never raises ``EraseError``)."""
        objects = [self._checked(job) for job in jobs]
        pairs = list(dict.fromkeys(p for obj in objects for p in obj.pairs))
        tally = _Tally()
        for batch in delete_batches(pairs) if pairs else []:
            self._delete_batch(batch, tally)
        deleted: dict[str, set[str]] = {}
        for key, version_id in pairs:
            deleted.setdefault(key, set()).add(version_id)
        clean = {k: ids for k, ids in deleted.items() if not _failed_of(k, ids, tally)}
        confirmed, problems = self._confirm(clean) if clean else ({}, {})
        return [self._outcome(obj, tally, confirmed, problems) for obj in objects]

    def _checked(self, job: EraseJob) -> PreparedObject:
        obj = self._own(job.prepared)
        d = job.decision
        if d.action is not Action.ERASE or d.method is not EraseMethod.S3_DELETE:
            raise ValueError(f"an S3 key is erased by an s3-delete decision, not {d}")
        return obj

    def _own(self, prepared: PreparedErase) -> PreparedObject:
        if not isinstance(prepared, PreparedObject) or prepared.eraser is not self:
            raise ValueError("needs a PreparedObject from this S3Eraser's prepare")
        if prepared.closed:
            raise ValueError("the PreparedObject is closed")
        return prepared

    def _delete_batch(self, batch: list[Pair], tally: _Tally) -> None:
        """Delete one request's pairs; retry the transiently failed ones after ``_pause``."""
        pending: dict[Pair, tuple[str, str]] = dict.fromkeys(batch, ("", ""))
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)
            pending = self._delete(list(pending), tally)
            if not pending:
                return
        tally.failed.update(pending)

    def _pause(self, attempt: int) -> None:
        """Sleep before retry ``attempt`` (from 1): capped exponential backoff, full jitter."""
        self._sleep(full_jitter(attempt, self.backoff, self.backoff_cap, self._rng.random()))

    def _delete(self, pairs: list[Pair], tally: _Tally) -> dict[Pair, tuple[str, str]]:
        """One DeleteObjects request; returns the pairs that failed transiently."""
        bypass = {"BypassGovernanceRetention": True} if self.config.bypass_governance else {}
        objects = [{"Key": k, "VersionId": v} for k, v in pairs]
        try:
            with calls(self._lister.where(common_prefix(sorted({k for k, _ in pairs})))):
                reply = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}, **bypass
                )
        except S3Error as exc:  # the whole request was refused: every pair fails with it
            for pair in pairs:
                tally.seen(pair[0], exc.code)
                self.errors[exc.code] += 1
            tally.failed.update(dict.fromkeys(pairs, (exc.code, exc.message)))
            return {}
        retry: dict[Pair, tuple[str, str]] = {}
        for pair, code, message in _errors(reply.get("Errors", ()), pairs):
            tally.seen(pair[0], code)
            self.errors[code] += 1
            (retry if code in TRANSIENT else tally.failed)[pair] = (code, message)
        return retry

    def _confirm(self, deleted: dict[str, set[str]]) -> tuple[dict[str, str], dict[str, str]]:
        """List the keys again until none is left: ``(listed_at per confirmed key, why not
        per key that is not)``. Versions we deleted that still show (a lagging listing) are
        listed again, after ``_pause``, up to ``confirm_attempts`` times in all; any other
        version fails at once."""
        confirmed: dict[str, str] = {}
        problems: dict[str, str] = {}
        waiting = deleted
        for attempt in range(self.confirm_attempts):
            if attempt:
                self._pause(attempt)
            at = format_iso(datetime.now(UTC))
            try:
                left = self._lister.exactly(sorted(waiting))
            except S3Error as exc:
                why = (
                    f"deleted, but the confirmation listing failed: {os_reason(exc)}; not confirmed"
                )
                return confirmed, problems | dict.fromkeys(waiting, why)
            lagging: dict[str, set[str]] = {}
            for key, ids in waiting.items():
                rest = left.get(key, [])
                new = [v.version_id for v in rest if v.version_id not in ids]
                if not rest:
                    confirmed[key] = at
                elif new:
                    problems[key] = _left(new, at, "appeared after the erase was prepared")
                else:
                    lagging[key] = ids
                    problems[key] = _left(
                        [v.version_id for v in rest], at, "still listed after the delete"
                    )
            waiting = lagging
            if not waiting:
                break
        return confirmed, {k: v for k, v in problems.items() if k not in confirmed}

    def _outcome(
        self,
        obj: PreparedObject,
        tally: _Tally,
        confirmed: Mapping[str, str],
        problems: Mapping[str, str],
    ) -> EraseOutcome | EraseError:
        key = obj.facts.key
        codes = dict(tally.codes.get(key, {}))
        failed = [tally.failed[p] for p in obj.pairs if p in tally.failed]
        if failed:
            return EraseError(_refusal(failed, len(obj.pairs)), codes)
        if key not in confirmed:
            return EraseError(problems[key], codes)
        markers = sum(v.delete_marker for v in obj.facts.versions)
        details: dict[str, Any] = {
            "deleted_versions": len(obj.facts.versions) - markers,
            "deleted_delete_markers": markers,
            "confirmed": {"listed_at": confirmed[key], "remaining": 0},
        }
        if codes:
            details["retried_errors"] = codes
        return S3EraseResult(details)

    def locate(
        self, relpath: str, temp_name: str, dev: int, ino: int
    ) -> Literal["original", "gone"]:
        """Where an interrupted erase left the key: "original" while any version or delete
        marker of exactly ``relpath`` is listed, else "gone" (S3 has no temporary names).
        Raises ``S3Error``: a key that could not be listed is never reported gone."""
        if not valid_key(relpath):
            return "gone"
        return "original" if self._lister.exactly([relpath]) else "gone"


def _raise_read_error(exc: S3Error, version_id: str) -> NoReturn:
    if exc.code in GONE_CODES:
        raise Gone(f"version {version_id} is gone ({exc.code})") from exc
    if exc.code in ("PreconditionFailed", "412"):
        raise Refused(f"version {version_id} changed since it was listed") from exc
    raise EraseError(f"cannot read version {version_id}: {os_reason(exc)}", {exc.code: 1}) from exc


def _errors(
    errors: Iterable[Mapping[str, Any]], pairs: Sequence[Pair]
) -> Iterator[tuple[Pair, str, str]]:
    """The pairs a DeleteObjects reply names in ``Errors``. An error without a VersionId (some
    stores, moto) is taken to be about the first pair of its key not named yet."""
    unnamed: dict[str, list[str]] = {}
    for key, version_id in pairs:
        unnamed.setdefault(key, []).append(version_id)
    for error in errors:
        key = str(error.get("Key", ""))
        left = unnamed.get(key, [])
        vid = str(error.get("VersionId") or (left[0] if left else ""))
        if vid not in left:
            continue  # not a pair of this request
        left.remove(vid)
        code = str(error.get("Code") or "Unknown")
        yield (key, vid), code, str(error.get("Message") or code)


def _failed_of(key: str, ids: set[str], tally: _Tally) -> bool:
    return any((key, i) in tally.failed for i in ids)


def _refusal(failed: Sequence[tuple[str, str]], total: int) -> str:
    """``AccessDenied: <message> (2 of 3 versions not deleted)``, one clause per code."""
    by_code = Counter(code for code, _ in failed)
    first = dict(reversed(failed))
    text = "; ".join(f"{code}: {first[code]}" for code, _ in by_code.most_common())
    return f"{text} ({len(failed)} of {total} version{'s' if total != 1 else ''} not deleted)"


def _left(ids: Sequence[str], at: str, what: str) -> str:
    n = len(ids)
    shown = ", ".join(ids[:5]) + (f" and {n - 5} more" if n > 5 else "")
    return (
        f"{n} version{'s' if n != 1 else ''} {what} (confirmation listing at {at}): "
        f"version{'s' if n != 1 else ''} {shown}; not erased"
    )
