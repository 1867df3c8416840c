"""The S3 eraser (recd.adapters.s3.eraser) against AWS's real replies where moto does not
behave as AWS does, played by botocore's ``Stubber``: DeleteObjects partial errors and the
retries of transient ones, capped backoff with full jitter, requests of at most 1,000
versions, the governance bypass, confirmation listings that lag or fail, whole requests
refused and digest read errors.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from recd.adapters.s3.eraser import S3Eraser, S3EraseResult
from recd.ports.eraser import EraseError
from tests.adapters.s3.helpers import (
    LOCK_MESSAGE,
    MISSING_MD5,
    _delete_params,
    _entry,
    _list_params,
    _listing,
    config,
    erase_keys,
    prepared,
)

SLOW_DOWN = "Please reduce your request rate."
INTERNAL = "We encountered an internal error. Please try again."


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


def test_digest_read_errors(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", _entry("a.wav", "a1", 0)))
    stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    (p,) = prepared(eraser, "a.wav")
    with pytest.raises(EraseError) as caught:
        eraser.digest(p)
    assert caught.value.reason == "cannot read version a1: AccessDenied: Access Denied"
    assert caught.value.codes == {"AccessDenied": 1}
