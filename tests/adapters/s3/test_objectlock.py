"""An S3 bucket's Object Lock (recd.adapters.s3.objectlock, part of ``S3Eraser``): its
versioning and default retention, and each version's legal hold read and set, on moto's
server and, for AWS's own replies (NoSuchObjectLockConfiguration, a bucket without Object
Lock, AccessDenied), with ``Stubber``.
"""

from __future__ import annotations

import pytest

from recd.adapters.s3.client import S3Error
from recd.adapters.s3.eraser import S3Eraser
from recd.core.objects import BucketState
from tests.adapters.s3.helpers import _entry, _listing, _md5, config, put


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
