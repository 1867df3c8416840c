"""The S3 source (recd.adapters.s3.source) against a real S3 endpoint (moto's server on
loopback, real HTTP): scans streamed page by page, delete and folder markers, the facts of
one key, metadata and tags (under a newer delete marker too, with ``Stubber`` playing
AWS's replies) and a missing bucket.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from recd.adapters.s3.client import S3Error
from recd.adapters.s3.eraser import S3Eraser
from recd.adapters.s3.source import S3Source
from recd.ports.eraser import EraseTarget, Gone, Refused
from recd.ports.source import ScanTotals
from tests.adapters.s3.helpers import T0, _entry, _listing, config, erase_keys, listed, put

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
