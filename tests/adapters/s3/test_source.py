"""The S3 source and eraser against a real S3 endpoint (moto's server on loopback, real HTTP).

Where moto does not behave as AWS does (DeleteObjects partial errors, listings that lag, the
NoSuchObjectLockConfiguration reply) botocore's ``Stubber`` plays AWS's real replies. A
"demanding endpoint" (moto behind a WSGI filter answering ``MissingContentMD5`` as older MinIO
and Ceph RGW do) shows that the Content-MD5 recd adds is there and right.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from recd.adapters.s3.client import S3Error, make_client, s3_error
from recd.adapters.s3.eraser import TRANSIENT, PreparedObject, S3Eraser, S3EraseResult
from recd.adapters.s3.source import S3Source
from recd.config.types import SourceConfig
from recd.core.classify import ClassifyRule
from recd.core.erasure import OBJECT_STORE, Action, Decision
from recd.core.model import EraseMethod, ErasePattern
from recd.core.objects import BucketState
from recd.ports.eraser import EraseError, EraseJob, EraseTarget, Gone, Refused
from recd.ports.source import ScanTotals
from tests.s3server import BucketKind, bucket_name, dummy_credentials, s3_client
from tests.tools import free_port

ERASE = Decision(Action.ERASE, EraseMethod.S3_DELETE, False, OBJECT_STORE)
NOWHERE = "http://127.0.0.1:9"  # Stubber clients never connect
LOCK_MESSAGE = "Access Denied because object protected by object lock."
MISSING_MD5 = "Missing required header for this request: Content-Md5."
BAD_DIGEST = "The Content-MD5 you specified did not match what we received."
SLOW_DOWN = "Please reduce your request rate."
INTERNAL = "We encountered an internal error. Please try again."
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def config(bucket: str, url: str | None = NOWHERE, **kwargs: Any) -> SourceConfig:
    return SourceConfig(
        name="archive", type="s3", rule=ClassifyRule(timezone=UTC), bucket=bucket,
        endpoint_url=url, region="us-east-1", **kwargs,
    )  # fmt: skip


@pytest.fixture
def s3(s3_endpoint: str, aws_credentials: None) -> Any:
    """A plain boto3 client to set up and inspect buckets."""
    return s3_client(s3_endpoint)


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Iterator[Any]:
    """recd's own client (``make_client``), as the runtime builds it; one for the module (a
    client takes a tenth of a second to build), so handlers are registered through ``record``."""
    with pytest.MonkeyPatch.context() as mp:
        dummy_credentials(mp)
        yield make_client(config("unused", s3_endpoint))


@pytest.fixture(scope="module")
def stub_client() -> Iterator[Any]:
    """A client that never connects, for ``Stubber``."""
    with pytest.MonkeyPatch.context() as mp:
        dummy_credentials(mp)
        yield make_client(config("calls"))


@pytest.fixture
def bucket(make_bucket: Callable[[BucketKind], str]) -> str:
    return make_bucket("versioned")


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


@pytest.fixture
def record() -> Iterator[Callable[[Any, str], list[Any]]]:
    """``record(client, event)``: what ``client`` hands to handlers of ``event`` (API params,
    or the request sent) during the test."""
    registered: list[tuple[Any, str, Callable[..., None]]] = []

    def start(client: Any, event: str) -> list[Any]:
        seen: list[Any] = []

        def handler(**kwargs: Any) -> None:
            params = kwargs.get("params")
            seen.append(kwargs["request"] if params is None else dict(params))  # as given

        client.meta.events.register(event, handler)
        registered.append((client, event, handler))
        return seen

    yield start
    for client, event, handler in registered:
        client.meta.events.unregister(event, handler)


# -- the source ---------------------------------------------------------------------------


def test_scan_streams_pages_and_joins_versions_that_span_pages(s3, client, bucket, record) -> None:
    put(s3, bucket, "t/a.wav", b"1", b"22", b"333")  # 3 versions: spans pages of 2
    put(s3, bucket, "t/b.wav", b"4444")
    put(s3, bucket, "t/c.wav", b"55555", b"666666")
    put(s3, bucket, "other/x.wav", b"7")  # outside the prefix
    calls = record(client, "provide-client-params.s3.ListObjectVersions")
    source = S3Source("archive", config(bucket, prefix="t/"), client, page_size=2)
    scan = source.scan()
    first = next(scan)
    pages_at_first = len(calls)
    facts = [first, *scan]
    assert [(f.relpath, f.size, f.dev, f.source) for f in facts] == [
        ("t/a.wav", 6, 0, "archive"), ("t/b.wav", 4, 0, "archive"), ("t/c.wav", 11, 0, "archive"),
    ]  # fmt: skip
    assert pages_at_first == 2 < len(calls) == 3  # streamed: yielded before the last page
    assert calls[0] == {"Bucket": bucket, "Prefix": "t/", "MaxKeys": 2}
    assert calls[1]["KeyMarker"] == "t/a.wav" and calls[1]["VersionIdMarker"]
    a = facts[0]
    assert a.born_ns is not None and a.born_ns <= a.mtime_ns
    assert source.last_scan == ScanTotals(objects=3, versions=6, delete_markers=0, bytes=21)
    assert source.report.unreadable_dirs == ()


def test_scan_under_lists_one_key_directory_and_keeps_the_totals(s3, client, bucket) -> None:
    put(s3, bucket, "calls/1.wav", b"1")
    put(s3, bucket, "calls2/2.wav", b"2")
    source = S3Source("archive", config(bucket), client)
    assert [f.relpath for f in source.scan("calls")] == ["calls/1.wav"]
    assert source.last_scan is None  # a partial scan says nothing of the bucket
    assert [f.relpath for f in source.scan()] == ["calls/1.wav", "calls2/2.wav"]
    assert source.last_scan == ScanTotals(2, 2, 0, 2)


def test_delete_markers_and_folder_markers(s3, client, bucket) -> None:
    put(s3, bucket, "calls/", b"")  # a folder marker
    put(s3, bucket, "calls/hidden.wav", b"abc", b"de")
    s3.delete_object(Bucket=bucket, Key="calls/hidden.wav")  # marker on top of 2 versions
    put(s3, bucket, "calls/gone.wav", b"x")
    s3.delete_object(Bucket=bucket, Key="calls/gone.wav")
    (vid,) = listed(s3, bucket)["calls/gone.wav"] - {_marker(s3, bucket, "calls/gone.wav")}
    s3.delete_object(Bucket=bucket, Key="calls/gone.wav", VersionId=vid)  # only a marker left
    source = S3Source("archive", config(bucket), client, page_size=3)
    facts = list(source.scan())
    assert [(f.relpath, f.size) for f in facts] == [("calls/hidden.wav", 5)]
    assert facts[0].mtime_ns >= facts[0].born_ns  # type: ignore[operator]
    assert source.last_scan == ScanTotals(objects=1, versions=2, delete_markers=2, bytes=5)
    assert source.facts("calls/") is None
    assert source.facts("calls/gone.wav") is None
    assert source.facts("calls/hidden.wav") == facts[0]
    eraser = S3Eraser("archive", config(bucket), client)
    assert isinstance(eraser.prepare_many([EraseTarget("calls/", 0, 0, 0)])[0], Refused)
    with pytest.raises(Gone) as gone:
        eraser.prepare("calls/gone.wav", 0, 0, 1)
    assert gone.value.reason == "no version of the key is left"
    (done,) = erase_keys(eraser, "calls/hidden.wav")
    assert done.details["deleted_versions"] == 2
    assert done.details["deleted_delete_markers"] == 1
    assert set(listed(s3, bucket)) == {"calls/", "calls/gone.wav"}


def _marker(s3: Any, bucket: str, key: str) -> str:
    page = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return str(next(m["VersionId"] for m in page["DeleteMarkers"] if m["Key"] == key))


def test_facts_of_one_exact_key_and_its_fingerprint(s3, client, bucket) -> None:
    put(s3, bucket, "a.wav", b"one")
    put(s3, bucket, "a.wav.meta", b"meta")
    source = S3Source("archive", config(bucket), client, page_size=1)
    before = source.facts("a.wav")
    assert before is not None and before.size == 3
    put(s3, bucket, "a.wav", b"two!")
    after = source.facts("a.wav")
    assert after is not None and after.size == 7
    assert after.ino != before.ino  # a new version: re-classified, and erase must see it
    assert source.facts("b.wav") is None
    assert source.facts("") is None


def test_open_read_is_not_supported(client, bucket) -> None:
    with pytest.raises(OSError, match="audio tags are not read from S3") as caught:
        S3Source("archive", config(bucket), client).open_read("a.wav", 0, 0)
    assert caught.value.errno == errno.EOPNOTSUPP


def test_metadata_and_tags_lower_cased_metadata_winning(s3, client, bucket) -> None:
    put(
        s3, bucket, "m.wav", b"x", Metadata={"Licence": "L-META", "Call_ID": "17"},
        Tagging="licence=L-TAG&Extension=1001",
    )  # fmt: skip
    source = S3Source("archive", config(bucket), client)
    expected = {"licence": "L-META", "call_id": "17", "extension": "1001"}
    assert source.metadata("m.wav") == expected
    s3.delete_object(Bucket=bucket, Key="m.wav")  # read under the delete marker too
    assert source.metadata("m.wav") == expected
    with pytest.raises(S3Error) as caught:
        source.metadata("never.wav")
    assert caught.value.code == "404"
    assert str(caught.value) == f"s3://{bucket}/never.wav: 404: Not Found"


def test_scan_of_a_missing_bucket_is_one_line(client) -> None:
    source = S3Source("archive", config("recd-no-such-bucket", prefix="t/"), client)
    with pytest.raises(S3Error) as caught:
        list(source.scan())
    exc = caught.value
    assert (exc.filename, exc.strerror, exc.code) == (
        "s3://recd-no-such-bucket/t/", "NoSuchBucket: The specified bucket does not exist",
        "NoSuchBucket",
    )  # fmt: skip
    assert source.last_scan is None


def test_unreachable_endpoint_is_one_line(aws_credentials) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # closed again: nothing listens there
    client = make_client(config("calls", url), max_attempts=0)  # no retries: no backoff
    with pytest.raises(S3Error) as caught:
        list(S3Source("archive", config("calls", url), client).scan())
    assert caught.value.filename == "s3://calls/"
    assert caught.value.code == "EndpointConnection"
    assert caught.value.strerror.startswith(  # type: ignore[union-attr]
        f'EndpointConnection: Could not connect to the endpoint URL: "{url}/calls?'
    )
    eraser = S3Eraser("archive", config("calls", url), client)
    (failed,) = eraser.prepare_many([EraseTarget("a.wav", 0, 0, 1)])
    assert isinstance(failed, S3Error)  # an OSError: the sweep tries again, it refuses nothing
    assert (failed.filename, failed.code) == ("s3://calls/a.wav", "EndpointConnection")
    with pytest.raises(S3Error):
        eraser.locate("a.wav", "tmp", 0, 0)
    with pytest.raises(S3Error) as caught_prepare:
        eraser.prepare("a.wav", 0, 0, 1)
    assert caught_prepare.value.strerror == failed.strerror


def test_missing_credentials(monkeypatch, aws_credentials) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = make_client(config("calls", NOWHERE))
    with pytest.raises(S3Error) as caught:
        S3Eraser("archive", config("calls", NOWHERE), client).bucket_state()
    assert caught.value.strerror == "NoCredentials: Unable to locate credentials"
    assert caught.value.filename == "s3://calls"


# -- the eraser on moto ---------------------------------------------------------------------


def test_erasing_a_key_leaves_keys_it_prefixes_alone(s3, client, bucket) -> None:
    a = put(s3, bucket, "a.wav", b"a1", b"a2")
    put(s3, bucket, "a.wav.meta", b"m1", b"m2")
    put(s3, bucket, "a.wav2", b"x1", b"x2")
    put(s3, bucket, "a.wa", b"y")
    before = listed(s3, bucket)
    eraser = S3Eraser("archive", config(bucket), client, page_size=2)
    (p,) = prepared(eraser, "a.wav", size=4)
    assert p.facts.key == "a.wav" and p.facts.indexed == 7
    assert [v["version_id"] for v in p.details["versions"]] == a[::-1]  # newest first
    assert p.details["bucket"] == bucket and p.details["key"] == "a.wav"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", p.details["versions"][0]["last_modified"]
    )
    assert eraser.locate("a.wav", "tmp", 0, 0) == "original"
    done = eraser.erase(p, ERASE, pattern=ErasePattern.ZEROS, verify=False, temp_name="t")
    assert isinstance(done, S3EraseResult)
    assert (done.method, done.effective, done.ineffective_reason, done.bytes_overwritten) == (
        EraseMethod.S3_DELETE, False, OBJECT_STORE, 0,
    )  # fmt: skip
    assert done.details["deleted_versions"] == 2
    assert done.details["confirmed"]["remaining"] == 0
    assert re.fullmatch(r"\d{4}-.*Z", done.details["confirmed"]["listed_at"])
    after = listed(s3, bucket)
    assert "a.wav" not in after
    assert after == {k: v for k, v in before.items() if k != "a.wav"}
    assert eraser.locate("a.wav", "tmp", 0, 0) == "gone"
    assert eraser.locate("", "tmp", 0, 0) == "gone"
    eraser.sync()
    with eraser:
        pass
    with pytest.raises(Gone):
        eraser.prepare("a.wav", 0, 0, 4)


def test_a_batch_across_many_keys_and_pages(s3, client, bucket, record) -> None:
    keys = [f"calls/{n:02}.wav" for n in range(6)]
    for key in keys:
        put(s3, bucket, key, b"1", b"2")
    put(s3, bucket, "calls/99.wav", b"kept")
    eraser = S3Eraser("archive", config(bucket), client, page_size=3)
    requests = record(client, "provide-client-params.s3.DeleteObjects")
    results = erase_keys(eraser, *keys[::-1])
    assert all(isinstance(r, S3EraseResult) for r in results)
    assert len(requests) == 1 and len(requests[0]["Delete"]["Objects"]) == 12
    assert all(o["VersionId"] for o in requests[0]["Delete"]["Objects"])
    assert "BypassGovernanceRetention" not in requests[0]
    assert listed(s3, bucket).keys() == {"calls/99.wav"}


def test_unversioned_bucket_null_version(s3, client, make_bucket) -> None:
    bucket = make_bucket("unversioned")
    put(s3, bucket, "u.wav", b"old", b"new")
    eraser = S3Eraser("archive", config(bucket), client)
    (p,) = prepared(eraser, "u.wav")
    assert [(v.version_id, v.size) for v in p.facts.versions] == [("null", 3)]
    assert eraser.digest(p) == hashlib.sha256(b"new").hexdigest()
    (done,) = eraser.erase_many([EraseJob(p, ERASE, "t")], pattern=ErasePattern.ZEROS, verify=False)
    assert isinstance(done, S3EraseResult)
    assert listed(s3, bucket) == {}


def test_suspended_versioning_null_version(s3, client, make_bucket) -> None:
    bucket = make_bucket("suspended")
    put(s3, bucket, "s.wav", b"null-1", b"null-2")  # the second replaces the first
    eraser = S3Eraser("archive", config(bucket), client)
    (p,) = prepared(eraser, "s.wav")
    assert [(v.version_id, v.size) for v in p.facts.versions] == [("null", 6)]
    (done,) = eraser.erase_many([EraseJob(p, ERASE, "t")], pattern=ErasePattern.ZEROS, verify=False)
    assert isinstance(done, S3EraseResult)
    assert listed(s3, bucket) == {}


def test_an_overwritten_null_version_is_not_taken_for_the_listed_one(s3, client, make_bucket):
    bucket = make_bucket("unversioned")
    put(s3, bucket, "u.wav", b"listed")
    eraser = S3Eraser("archive", config(bucket), client)
    (p,) = prepared(eraser, "u.wav")
    put(s3, bucket, "u.wav", b"written since")
    with pytest.raises(Refused) as caught:
        eraser.digest(p)
    assert caught.value.reason == "version null changed since it was listed"


def test_digest_of_every_version(s3, client, bucket) -> None:
    bodies = [b"first", b"second" * 50_000, b"third"]
    ids = put(s3, bucket, "d.wav", *bodies)
    s3.delete_object(Bucket=bucket, Key="d.wav")
    eraser = S3Eraser("archive", config(bucket), client)
    (p,) = prepared(eraser, "d.wav")
    assert eraser.digest(p) == hashlib.sha256(b"third").hexdigest()
    sums = {v["version_id"]: v.get("sha256") for v in p.details["versions"]}
    assert {i: sums[i] for i in ids} == {
        i: hashlib.sha256(b).hexdigest() for i, b in zip(ids, bodies, strict=True)
    }
    assert [s for i, s in sums.items() if i not in ids] == [None]  # the delete marker
    s3.delete_object(Bucket=bucket, Key="d.wav", VersionId=ids[0])
    with pytest.raises(Gone, match=f"^version {ids[0]} is gone"):
        eraser.digest(p)


def test_delete_markers_alone_are_prepared_for_recovery(s3, client, bucket) -> None:
    (vid,) = put(s3, bucket, "r.wav", b"x")
    s3.delete_object(Bucket=bucket, Key="r.wav")
    s3.delete_object(Bucket=bucket, Key="r.wav", VersionId=vid)
    eraser = S3Eraser("archive", config(bucket), client)
    p = eraser.prepare("r.wav", 0, 0, None)
    with pytest.raises(Gone) as gone:
        eraser.digest(p)
    assert gone.value.reason == "no data version of the key is left"
    done = eraser.erase(p, ERASE, pattern=ErasePattern.ZEROS, verify=False, temp_name="t")
    assert (done.details["deleted_versions"], done.details["deleted_delete_markers"]) == (0, 1)
    assert listed(s3, bucket) == {}


def test_legal_hold_fails_that_key_and_the_batch_goes_on(s3, client, make_bucket) -> None:
    bucket = make_bucket("locked")
    held, _ = put(s3, bucket, "a.wav", b"held", b"free")
    put(s3, bucket, "b.wav", b"b")
    eraser = S3Eraser("archive", config(bucket), client)
    eraser.set_legal_hold("a.wav", held, True)
    a, b = erase_keys(eraser, "a.wav", "b.wav")
    assert isinstance(a, EraseError)
    assert a.reason == f"AccessDenied: {LOCK_MESSAGE} (1 of 2 versions not deleted)"
    assert a.codes == {"AccessDenied": 1}
    assert isinstance(b, S3EraseResult)
    assert listed(s3, bucket) == {"a.wav": {held}}  # the other version of a.wav went
    assert eraser.errors == Counter({"AccessDenied": 1})
    assert eraser.legal_holds("a.wav") == [(held, True)]


def test_legal_holds_round_trip(s3, client, make_bucket, record) -> None:
    bucket = make_bucket("locked")
    v1, v2 = put(s3, bucket, "h.wav", b"1", b"2")
    s3.delete_object(Bucket=bucket, Key="h.wav")  # markers have no legal hold
    put(s3, bucket, "h.wav.meta", b"m")
    eraser = S3Eraser("archive", config(bucket), client)
    sent = record(client, "before-send.s3.PutObjectLegalHold")
    assert eraser.legal_holds("h.wav") == [(v2, False), (v1, False)]
    eraser.set_legal_hold("h.wav", v1, True)
    assert eraser.legal_holds("h.wav") == [(v2, False), (v1, True)]
    eraser.set_legal_hold("h.wav", v1, False)
    assert eraser.legal_holds("h.wav") == [(v2, False), (v1, False)]
    assert eraser.legal_holds("none.wav") == []
    assert eraser.legal_holds("dir/") == []
    assert len(sent) == 2
    for request in sent:
        assert request.headers["Content-MD5"].decode() == _md5(request.body)


def test_set_legal_hold_without_object_lock(s3, client, bucket) -> None:
    (vid,) = put(s3, bucket, "h.wav", b"1")
    with pytest.raises(S3Error) as caught:
        S3Eraser("archive", config(bucket), client).set_legal_hold("h.wav", vid, True)
    assert str(caught.value) == (
        f"s3://{bucket}/h.wav: InvalidRequest: bucket {bucket} has no Object Lock; "
        "mirror_legal_holds needs a bucket created with Object Lock"
    )


@pytest.mark.parametrize(
    ("mode", "bypass", "erased"),
    [("GOVERNANCE", False, False), ("GOVERNANCE", True, True), ("COMPLIANCE", True, False)],
)
def test_retention_is_bypassed_only_for_governance_when_configured(
    s3, client, make_bucket, record, mode, bypass, erased
) -> None:
    bucket = make_bucket("locked")
    until = datetime.now(UTC) + timedelta(days=1)
    (vid,) = put(s3, bucket, "r.wav", b"kept", ObjectLockMode=mode, ObjectLockRetainUntilDate=until)
    eraser = S3Eraser("archive", config(bucket, bypass_governance=bypass), client)
    sent = record(client, "before-send.s3.DeleteObjects")
    retention = record(client, "provide-client-params.s3.PutObjectRetention")
    (result,) = erase_keys(eraser, "r.wav")
    assert ("x-amz-bypass-governance-retention" in sent[0].headers) is bypass
    assert retention == []
    if erased:
        assert isinstance(result, S3EraseResult)
        assert listed(s3, bucket) == {}
    else:
        assert isinstance(result, EraseError)
        assert result.reason == f"AccessDenied: {LOCK_MESSAGE} (1 of 1 version not deleted)"
        assert listed(s3, bucket) == {"r.wav": {vid}}


@pytest.mark.parametrize(
    ("kind", "lock", "expected"),
    [
        ("unversioned", None, BucketState(None, False, None, None, None)),
        ("versioned", None, BucketState("Enabled", False, None, None, None)),
        ("suspended", None, BucketState("Suspended", False, None, None, None)),
        ("locked", None, BucketState("Enabled", True, None, None, None)),
        ("locked", {"Mode": "GOVERNANCE", "Days": 30},
         BucketState("Enabled", True, "GOVERNANCE", 30, None)),
        ("locked", {"Mode": "COMPLIANCE", "Years": 7},
         BucketState("Enabled", True, "COMPLIANCE", None, 7)),
    ],
)  # fmt: skip
def test_bucket_state(s3, client, make_bucket, kind, lock, expected) -> None:
    bucket = make_bucket(kind)
    if lock:
        rule = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": lock}}
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=rule)
    assert S3Eraser("archive", config(bucket), client).bucket_state() == expected


def test_bucket_state_of_a_missing_bucket(client) -> None:
    with pytest.raises(S3Error) as caught:
        S3Eraser("archive", config("recd-no-such-bucket"), client).bucket_state()
    assert caught.value.strerror == "NoSuchBucket: The specified bucket does not exist"


def test_content_md5_on_the_wire(s3, client, bucket, record) -> None:
    put(s3, bucket, "a.wav", b"1", b"2")
    sent = record(client, "before-send.s3.DeleteObjects")
    (done,) = erase_keys(S3Eraser("archive", config(bucket), client), "a.wav")
    assert isinstance(done, S3EraseResult)
    (request,) = sent
    assert request.body.startswith(b"<Delete")
    assert request.headers["Content-MD5"].decode() == _md5(request.body)
    assert [name for name in request.headers if name.lower() == "content-md5"] == ["Content-MD5"]
    assert b"content-md5" in request.headers["Authorization"]  # signed with the rest


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def test_misuse_is_a_value_error(s3, client, bucket) -> None:
    put(s3, bucket, "a.wav", b"1")
    eraser = S3Eraser("archive", config(bucket), client)
    other = S3Eraser("archive", config(bucket), client)
    (p,) = prepared(eraser, "a.wav")
    skip = Decision(Action.SKIP, EraseMethod.S3_DELETE, False, "too young")
    unlink = Decision(Action.ERASE, EraseMethod.UNLINK, False, "x")
    for decision in (skip, unlink):
        with pytest.raises(ValueError, match="s3-delete decision"):
            eraser.erase(p, decision, pattern=ErasePattern.ZEROS, verify=False, temp_name="t")
    with pytest.raises(ValueError, match="from this S3Eraser"):
        other.digest(p)
    p.close()
    assert p.closed
    with pytest.raises(ValueError, match="is closed"):
        eraser.digest(p)
    with pytest.raises(ValueError, match="no bucket"):
        S3Eraser("archive", config(""), client)
    with pytest.raises(ValueError, match="no bucket"):
        S3Source("archive", config(""), client)
    with pytest.raises(ValueError, match="page_size"):
        S3Source("archive", config(bucket), client, page_size=1001)
    assert eraser.erase_many([], pattern=ErasePattern.ZEROS, verify=False) == []
    assert eraser.prepare_many([]) == []
    assert listed(s3, bucket).keys() == {"a.wav"}


# -- a demanding endpoint: moto behind a filter that insists on Content-MD5 --------------------


def _demand_md5(app: Any) -> Callable[..., Any]:
    """Answer ``POST ?delete`` without a right Content-MD5 as older MinIO and Ceph RGW do."""

    def filtered(environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        if environ["REQUEST_METHOD"] == "POST" and "delete" in query.split("&"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            given = environ.get("HTTP_CONTENT_MD5")
            if given is None:
                return _xml_error(start_response, "MissingContentMD5", MISSING_MD5)
            if given != _md5(body):
                return _xml_error(start_response, "BadDigest", BAD_DIGEST)
        return app(environ, start_response)

    return filtered


def _xml_error(start_response: Any, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>demanding</HostId></Error>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "application/xml"),
                                       ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]


@pytest.fixture(scope="module")
def demanding_endpoint() -> Iterator[str]:
    app = _demand_md5(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_store_that_demands_content_md5(demanding_endpoint, aws_credentials) -> None:
    plain = s3_client(demanding_endpoint)
    bucket = bucket_name("demanding")
    plain.create_bucket(Bucket=bucket)
    plain.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put(plain, bucket, "a.wav", b"1", b"2")
    put(plain, bucket, "b.wav", b"3")
    objects = [{"Key": "b.wav", "VersionId": v} for v in listed(plain, bucket)["b.wav"]]
    with pytest.raises(ClientError, match="MissingContentMD5"):  # boto3 alone is refused
        plain.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    # recd's eraser on a client without the handler: every pair fails with the request's code
    bare = S3Eraser("archive", config(bucket), s3_client(demanding_endpoint))
    (refused,) = erase_keys(bare, "a.wav")
    assert isinstance(refused, EraseError)
    assert refused.reason == (f"MissingContentMD5: {MISSING_MD5} (2 of 2 versions not deleted)")
    assert refused.codes == {"MissingContentMD5": 2}
    client = make_client(config(bucket, demanding_endpoint))
    a, b = erase_keys(S3Eraser("archive", config(bucket), client), "a.wav", "b.wav")
    assert isinstance(a, S3EraseResult) and isinstance(b, S3EraseResult)
    assert listed(plain, bucket) == {}


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


def assert_jittered(sleeps: list[float], *windows: float) -> None:
    """Each sleep was drawn from its full-jitter window ``[0, w)``: never the window itself."""
    assert len(sleeps) == len(windows), sleeps
    assert all(0.0 <= s < w for s, w in zip(sleeps, windows, strict=True)), (sleeps, windows)


class Draws(random.Random):
    """A random source that draws the given numbers in turn, where the sleep's value is the
    point of a test."""

    def __init__(self, *draws: float) -> None:
        super().__init__()
        self.draws = iter(draws)

    def random(self) -> float:
        return next(self.draws)


@pytest.fixture
def stubbed(stub_client) -> Iterator[tuple[S3Eraser, Any, list[float]]]:
    """An eraser on a stubbed client, its Stubber and the backoff sleeps it asked for (its
    random source is the default one)."""
    sleeps: list[float] = []
    eraser = S3Eraser("archive", config("calls"), stub_client, sleep=sleeps.append, retries=2)
    with Stubber(stub_client) as stubber:
        yield eraser, stubber, sleeps
        stubber.assert_no_pending_responses()


def test_partial_errors_retry_only_the_transient_pairs(stubbed) -> None:
    eraser, stub, sleeps = stubbed
    stub.add_response("list_object_versions", _listing(
        "calls/", _entry("calls/a.wav", "a2", 0), _entry("calls/a.wav", "a1", 1),
        _entry("calls/b.wav", "b1", 2), _entry("calls/c.wav", "c1", 3),
    ), _list_params("calls/"))  # fmt: skip
    pairs = [("calls/a.wav", "a2"), ("calls/a.wav", "a1"), ("calls/b.wav", "b1"),
             ("calls/c.wav", "c1")]  # fmt: skip
    stub.add_response("delete_objects", {"Errors": [
        {"Key": "calls/a.wav", "VersionId": "a1", "Code": "AccessDenied", "Message": LOCK_MESSAGE},
        {"Key": "calls/b.wav", "VersionId": "b1", "Code": "SlowDown", "Message": SLOW_DOWN},
    ]}, _delete_params(*pairs))  # fmt: skip
    stub.add_response("delete_objects", {}, _delete_params(("calls/b.wav", "b1")))
    stub.add_response("list_object_versions", _listing("calls/"), _list_params("calls/"))
    a, b, c = erase_keys(eraser, "calls/a.wav", "calls/b.wav", "calls/c.wav")
    assert isinstance(a, EraseError)
    assert a.reason == f"AccessDenied: {LOCK_MESSAGE} (1 of 2 versions not deleted)"
    assert a.codes == {"AccessDenied": 1}
    assert isinstance(b, S3EraseResult) and b.details["retried_errors"] == {"SlowDown": 1}
    assert isinstance(c, S3EraseResult) and "retried_errors" not in c.details
    assert_jittered(sleeps, 0.2)
    assert eraser.errors == Counter({"AccessDenied": 1, "SlowDown": 1})


def test_suspended_versioning_keeps_older_versions_and_all_are_deleted(stubbed) -> None:
    # moto drops the older versions when a null version is written to a suspended bucket;
    # S3 keeps them, and they hold audio too.
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing(
        "s.wav", _entry("s.wav", "null", 0), _entry("s.wav", "v2", 1), _entry("s.wav", "v1", 2),
    ))  # fmt: skip
    pairs = [("s.wav", "null"), ("s.wav", "v2"), ("s.wav", "v1")]
    stub.add_response("delete_objects", {}, _delete_params(*pairs))
    stub.add_response("list_object_versions", _listing("s.wav"))
    (done,) = erase_keys(eraser, "s.wav")
    assert isinstance(done, S3EraseResult) and done.details["deleted_versions"] == 3


def test_transient_errors_give_up_after_the_retries(stubbed) -> None:
    eraser, stub, sleeps = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    for _ in range(3):  # the first try and two retries
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "a.wav", "Code": "InternalError", "Message": INTERNAL},  # no VersionId
        ]}, _delete_params(("a.wav", "a1")))  # fmt: skip
    (a,) = erase_keys(eraser, "a.wav")
    assert isinstance(a, EraseError)
    assert a.reason == (f"InternalError: {INTERNAL} (1 of 1 version not deleted)")
    assert a.codes == {"InternalError": 3}
    assert_jittered(sleeps, 0.2, 0.4)


def _slow_down_every_time(stub: Any, tries: int) -> None:
    """Every DeleteObjects of a.wav answers SlowDown for its one version (a busy prefix)."""
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    for _ in range(tries):
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "a.wav", "VersionId": "a1", "Code": "SlowDown", "Message": SLOW_DOWN},
        ]}, _delete_params(("a.wav", "a1")))  # fmt: skip


def _listing_lags_every_time(stub: Any, tries: int) -> None:
    """a.wav is deleted, but every confirmation listing still shows its version."""
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("delete_objects", {}, _delete_params(("a.wav", "a1")))
    for _ in range(tries):
        stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))


RETRY_LOOPS = pytest.mark.parametrize(
    "fail", [_slow_down_every_time, _listing_lags_every_time], ids=["delete", "confirm"]
)


def _erase_failing(
    stub_client: Any, fail: Callable[[Any, int], None], **tuning: Any
) -> list[float]:
    """Erase a.wav with an eraser whose every try (six) fails as ``fail`` makes it; the sleeps
    the eraser asked for between them."""
    sleeps: list[float] = []
    eraser = S3Eraser(
        "archive", config("calls"), stub_client, sleep=sleeps.append, retries=5,
        confirm_attempts=6, **tuning,
    )  # fmt: skip
    with Stubber(stub_client) as stub:
        fail(stub, 6)
        (failed,) = erase_keys(eraser, "a.wav")
        stub.assert_no_pending_responses()
    assert isinstance(failed, EraseError)
    return sleeps


@RETRY_LOOPS
def test_erasers_failing_together_do_not_retry_in_lockstep(stub_client, fail) -> None:
    # Two erasers (two recd hosts on one bucket, say), each with its default random source,
    # meet the same failure at the same moment: each retry comes at its own point of the
    # capped window, never at the same time as the other's. Deterministic backoff fails this.
    first, second = (_erase_failing(stub_client, fail, backoff_cap=1.0) for _ in range(2))
    for sleeps in (first, second):
        assert_jittered(sleeps, 0.2, 0.4, 0.8, 1.0, 1.0)  # 1.6 and 3.2 capped
    assert [a != b for a, b in zip(first, second, strict=True)] == [True] * 5


@RETRY_LOOPS
def test_a_sleep_is_the_draw_times_the_capped_window(stub_client, fail) -> None:
    rng = Draws(0.5, 0.0, 0.999, 0.5, 0.25)
    sleeps = _erase_failing(stub_client, fail, backoff=0.2, backoff_cap=0.5, rng=rng)
    assert sleeps == pytest.approx([0.1, 0.0, 0.4995, 0.25, 0.125])  # windows .2 .4 .5 .5 .5


@pytest.mark.parametrize(("backoff", "cap"), [(-0.2, 10.0), (0.2, float("inf"))])
def test_a_bad_backoff_is_refused_at_once(stub_client, backoff: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff base and cap must be finite and >= 0"):
        S3Eraser("archive", config("calls"), stub_client, backoff=backoff, backoff_cap=cap)


def test_errors_naming_other_pairs_are_ignored(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("delete_objects", {"Errors": [
        {"Key": "a.wav", "VersionId": "zz", "Code": "AccessDenied"},
        {"Key": "other.wav", "Code": "AccessDenied"},
    ]})  # fmt: skip
    stub.add_response("list_object_versions", _listing("a.wav"))
    (a,) = erase_keys(eraser, "a.wav")
    assert isinstance(a, S3EraseResult)


def test_2500_versions_go_in_requests_of_1000(stubbed) -> None:
    eraser, stub, _ = stubbed
    ids = [f"v{n:04}" for n in range(2500)]
    entries = [_entry("big.wav", vid, n) for n, vid in enumerate(ids)]
    for start in range(0, 2500, 1000):
        page = entries[start : start + 1000]
        more = start + 1000 < 2500
        markers = {"NextKeyMarker": "big.wav", "NextVersionIdMarker": page[-1]["VersionId"]}
        given = {"KeyMarker": "big.wav", "VersionIdMarker": ids[start - 1]} if start else {}
        reply = _listing("big.wav", *page, IsTruncated=more, **(markers if more else {}))
        stub.add_response("list_object_versions", reply, _list_params("big.wav", **given))
    for start in range(0, 2500, 1000):
        pairs = [("big.wav", vid) for vid in ids[start : start + 1000]]
        stub.add_response("delete_objects", {}, _delete_params(*pairs))
    stub.add_response("list_object_versions", _listing("big.wav"), _list_params("big.wav"))
    (done,) = erase_keys(eraser, "big.wav")
    assert isinstance(done, S3EraseResult) and done.details["deleted_versions"] == 2500


def test_governance_bypass_is_sent_only_when_configured(stub_client) -> None:
    eraser = S3Eraser("archive", config("calls", bypass_governance=True), stub_client)
    with Stubber(stub_client) as stub:
        stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
        stub.add_response(
            "delete_objects", {}, _delete_params(("a.wav", "a1"), BypassGovernanceRetention=True)
        )
        stub.add_response("list_object_versions", _listing("a.wav"))
        (done,) = erase_keys(eraser, "a.wav")
        stub.assert_no_pending_responses()
    assert isinstance(done, S3EraseResult)


def test_a_lagging_listing_is_asked_again(stubbed) -> None:
    eraser, stub, sleeps = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("delete_objects", {})
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("list_object_versions", _listing("a.wav"))
    (done,) = erase_keys(eraser, "a.wav")
    assert isinstance(done, S3EraseResult)
    assert_jittered(sleeps, 0.2)


def test_a_listing_that_keeps_showing_the_version_is_never_done(stubbed) -> None:
    eraser, stub, sleeps = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("delete_objects", {})
    for _ in range(3):
        stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    (failed,) = erase_keys(eraser, "a.wav")
    assert isinstance(failed, EraseError)
    assert re.fullmatch(
        r"1 version still listed after the delete \(confirmation listing at "
        r"\d{4}-\d\d-\d\dT[\d:.]+Z\): version a1; not erased",
        failed.reason,
    )
    assert failed.codes == {}
    assert_jittered(sleeps, 0.2, 0.4)


def test_a_version_written_meanwhile_fails_at_once(stubbed) -> None:
    eraser, stub, sleeps = stubbed
    stub.add_response("list_object_versions", _listing(
        "a.wav", _entry("a.wav", "a1", 0), _entry("a.wav.meta", "m1", 1),
    ))  # fmt: skip
    stub.add_response("delete_objects", {}, _delete_params(("a.wav", "a1")))
    new = [_entry("a.wav", f"n{n}", n) for n in range(7)]
    stub.add_response("list_object_versions", _listing("a.wav", *new, _entry("a.wav", "a1", 9)))
    (failed,) = erase_keys(eraser, "a.wav")
    assert isinstance(failed, EraseError)
    assert re.fullmatch(
        r"7 versions appeared after the erase was prepared \(confirmation listing at \S+Z\): "
        r"versions n0, n1, n2, n3, n4 and 2 more; not erased",
        failed.reason,
    )
    assert sleeps == []


def test_whole_request_refused(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing(
        "a.wav", _entry("a.wav", "a2", 0), _entry("a.wav", "a1", 1),
    ))  # fmt: skip
    stub.add_client_error("delete_objects", "MissingContentMD5", MISSING_MD5)
    (failed,) = erase_keys(eraser, "a.wav")  # and no confirmation listing
    assert isinstance(failed, EraseError)
    assert failed.reason == (f"MissingContentMD5: {MISSING_MD5} (2 of 2 versions not deleted)")
    assert failed.codes == {"MissingContentMD5": 2}
    assert eraser.errors == Counter({"MissingContentMD5": 2})


def test_a_failed_confirmation_listing_is_not_done(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_response("delete_objects", {})
    stub.add_client_error("list_object_versions", "InternalError", "Try again.", 500)
    (failed,) = erase_keys(eraser, "a.wav")
    assert isinstance(failed, EraseError)
    assert failed.reason == (
        "deleted, but the confirmation listing failed: InternalError: Try again.; not confirmed"
    )


def test_a_truncated_listing_that_does_not_advance(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", IsTruncated=True))
    (failed,) = eraser.prepare_many([EraseTarget("a.wav", 0, 0, 1)])
    assert isinstance(failed, S3Error)
    assert failed.strerror == "InvalidListing: a truncated listing did not advance"


def test_a_page_ending_at_a_key_boundary_is_continued_by_key_alone(stubbed) -> None:
    eraser, stub, _ = stubbed
    page = _listing("a", _entry("a1.wav", "x", 0), IsTruncated=True, NextKeyMarker="a1.wav")
    stub.add_response("list_object_versions", page, _list_params("a"))
    stub.add_response(
        "list_object_versions", _listing("a", _entry("a2.wav", "y", 0)),
        _list_params("a", KeyMarker="a1.wav"),
    )  # fmt: skip
    first, second = prepared(eraser, "a1.wav", "a2.wav")
    assert (first.facts.versions[0].version_id, second.facts.versions[0].version_id) == ("x", "y")
    stub.add_response("delete_objects", {}, _delete_params(("a1.wav", "x")))
    stub.add_client_error("list_object_versions", "AccessDenied", "Access Denied", 403)
    with pytest.raises(EraseError) as caught:
        eraser.erase(first, ERASE, pattern=ErasePattern.ZEROS, verify=False, temp_name="t")
    assert caught.value.reason == (
        "deleted, but the confirmation listing failed: AccessDenied: Access Denied; not confirmed"
    )


def test_metadata_under_a_newer_delete_marker(stub_client) -> None:
    source = S3Source("archive", config("calls"), stub_client)
    with Stubber(stub_client) as stub:
        stub.add_client_error("head_object", "404", "Not Found", 404)
        listing = _listing("m.wav", _entry("m.wav", "v1", 1), DeleteMarkers=[
            {"Key": "m.wav", "VersionId": "d1", "IsLatest": True, "LastModified": T0},
        ])  # fmt: skip
        stub.add_response("list_object_versions", listing)
        stub.add_response(
            "head_object", {"Metadata": {"Licence": "L1"}},
            {"Bucket": "calls", "Key": "m.wav", "VersionId": "v1"},
        )  # fmt: skip
        stub.add_response(
            "get_object_tagging", {"TagSet": [{"Key": "Call_ID", "Value": "9"}]},
            {"Bucket": "calls", "Key": "m.wav", "VersionId": "v1"},
        )  # fmt: skip
        assert source.metadata("m.wav") == {"licence": "L1", "call_id": "9"}
        stub.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(S3Error) as caught:
            source.metadata("m.wav")
        assert str(caught.value) == "s3://calls/m.wav: 403: Forbidden"
        stub.assert_no_pending_responses()


def test_digest_read_errors(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    (p,) = prepared(eraser, "a.wav")
    with pytest.raises(EraseError) as caught:
        eraser.digest(p)
    assert caught.value.reason == "cannot read version a1: AccessDenied: Access Denied"
    assert caught.value.codes == {"AccessDenied": 1}


def test_legal_hold_replies_of_aws(stubbed) -> None:
    eraser, stub, _ = stubbed
    versions = _listing("h.wav", _entry("h.wav", "v2", 0), _entry("h.wav", "v1", 1))
    stub.add_response("list_object_versions", versions)
    stub.add_client_error(  # AWS's answer for a version that never had a legal hold
        "get_object_legal_hold", "NoSuchObjectLockConfiguration",
        "The specified object does not have a ObjectLock configuration", 404,
    )  # fmt: skip
    stub.add_response("get_object_legal_hold", {"LegalHold": {"Status": "ON"}})
    assert eraser.legal_holds("h.wav") == [("v2", False), ("v1", True)]
    stub.add_response("list_object_versions", versions)
    stub.add_client_error(  # AWS's answer in a bucket without Object Lock
        "get_object_legal_hold", "InvalidRequest", "Bucket is missing Object Lock Configuration"
    )
    with pytest.raises(S3Error, match="bucket calls has no Object Lock; mirror_legal_holds"):
        eraser.legal_holds("h.wav")
    stub.add_response("list_object_versions", versions)
    stub.add_client_error("get_object_legal_hold", "AccessDenied", "Access Denied", 403)
    with pytest.raises(S3Error) as caught:
        eraser.legal_holds("h.wav")
    assert str(caught.value) == "s3://calls/h.wav: AccessDenied: Access Denied"


def test_bucket_state_errors(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("get_bucket_versioning", {})
    stub.add_client_error("get_object_lock_configuration", "AccessDenied", "Access Denied", 403)
    with pytest.raises(S3Error) as caught:
        eraser.bucket_state()
    assert str(caught.value) == "s3://calls: AccessDenied: Access Denied"


def test_make_client(aws_credentials) -> None:
    aws = make_client(config("calls", None))
    assert aws.meta.config.s3 == {"addressing_style": "auto"}
    assert aws.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert aws.meta.region_name == "us-east-1"
    local = make_client(config("calls", "http://127.0.0.1:9000"))
    assert local.meta.config.s3 == {"addressing_style": "path"}
    assert local.meta.endpoint_url == "http://127.0.0.1:9000"
    assert (local.meta.config.connect_timeout, local.meta.config.read_timeout) == (10, 60)


def test_s3_error_of_an_error_without_code_or_message() -> None:
    exc = ClientError({"ResponseMetadata": {"HTTPStatusCode": 503}}, "ListObjectVersions")
    err = s3_error(exc, "s3://calls/")
    assert (err.code, err.strerror, str(err)) == (
        "503", "503: HTTP 503", "s3://calls/: 503: HTTP 503",
    )  # fmt: skip
    assert {"SlowDown", "InternalError", "503"} <= TRANSIENT
