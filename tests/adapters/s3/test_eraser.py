"""The S3 eraser (recd.adapters.s3.eraser) on moto's server (real HTTP): exact keys only,
batches across keys and pages, null versions, digests of every version, delete markers,
legal holds and retention refusing a key while the batch goes on, and misuse. AWS's
replies where moto differs (partial errors, retries and their jittered backoff, lagging
listings) are in test_eraser_replies.py.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from recd.adapters.s3.eraser import S3Eraser, S3EraseResult
from recd.adapters.s3.source import S3Source
from recd.core.erasure import OBJECT_STORE, Action, Decision
from recd.core.model import EraseMethod, ErasePattern
from recd.ports.eraser import EraseError, EraseJob, Gone, Refused
from tests.adapters.s3.helpers import ERASE, LOCK_MESSAGE, config, erase_keys, listed, prepared, put

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
