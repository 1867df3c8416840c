"""recd.core.objects and the S3 half of recd.core.erasure: pure, given versions and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recd.core.erasure import OBJECT_STORE, Action, EraseSettings, decide
from recd.core.model import EraseMethod, OnIneffective
from recd.core.objects import (
    DELETE_BATCH,
    BucketState,
    ObjectFacts,
    ObjectVersion,
    bucket_report,
    common_prefix,
    delete_batches,
    fingerprint,
    summarise,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NS = 1_000_000_000


def ns(when: datetime) -> int:
    return int(when.timestamp()) * NS


def version(vid: str, age: timedelta, size: int = 100, *, marker: bool = False) -> ObjectVersion:
    return ObjectVersion(vid, marker, 0 if marker else size, ns(NOW - age), None if marker else vid)


V1 = version("v1", timedelta(days=40), 100)
V2 = version("v2", timedelta(days=35), 50)
DM = version("dm", timedelta(days=31), marker=True)


def test_summary_of_versions_and_a_delete_marker_on_top() -> None:
    s = summarise("a.wav", [DM, V2, V1])
    assert s is not None
    assert (s.size, s.versions, s.delete_markers) == (150, 2, 1)
    assert s.mtime_ns == DM.last_modified_ns  # the newest change, the marker included
    assert s.born_ns == V1.last_modified_ns  # the oldest data version: `started` fallback
    assert s.fingerprint == fingerprint([V1, V2, DM])


def test_a_key_with_only_delete_markers_is_not_a_recording() -> None:
    assert summarise("a.wav", [DM]) is None
    assert summarise("a.wav", []) is None


def test_fingerprint_changes_when_a_version_comes_or_goes_but_not_with_order() -> None:
    base = fingerprint([V1, V2])
    assert fingerprint([V2, V1]) == base
    assert fingerprint([V1]) != base
    assert fingerprint([V1, V2, DM]) != base
    overwritten = ObjectVersion("null", False, 100, V1.last_modified_ns + NS, "other")
    assert fingerprint([overwritten]) != fingerprint(
        [ObjectVersion("null", False, 100, V1.last_modified_ns, "x")]
    )
    assert 0 <= base < 2**63  # fits SQLite's INTEGER, as an inode number does


@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=1000))
def test_delete_batches_never_exceed_the_limit_and_keep_everything(n: int, size: int) -> None:
    pairs = [(f"k{i // 3}", f"v{i}") for i in range(n)]
    batches = delete_batches(pairs, size)
    assert [p for b in batches for p in b] == pairs
    assert all(1 <= len(b) <= size for b in batches)


def test_2500_versions_make_three_requests() -> None:
    batches = delete_batches(("a.wav", f"v{i}") for i in range(2500))
    assert [len(b) for b in batches] == [DELETE_BATCH, DELETE_BATCH, 500]


@pytest.mark.parametrize("size", [0, 1001])
def test_delete_batches_refuse_sizes_s3_does_not_allow(size: int) -> None:
    with pytest.raises(ValueError, match="1 to 1000"):
        delete_batches([("a", "b")], size)


@pytest.mark.parametrize(
    ("keys", "prefix"),
    [
        (["t/acme/100.wav"], "t/acme/100.wav"),
        (["t/acme/100.wav", "t/acme/100.wav.meta"], "t/acme/100.wav"),
        (["t/acme/100.wav", "t/acme/199.wav"], "t/acme/1"),
        (["t/acme/1.wav", "t/beta/2.wav"], "t/"),
        (["a", "b"], ""),
    ],
)
def test_common_prefix_passes_every_key(keys: list[str], prefix: str) -> None:
    assert common_prefix(keys) == prefix
    assert all(k.startswith(prefix) for k in keys)


def test_common_prefix_needs_keys() -> None:
    with pytest.raises(ValueError, match="no keys"):
        common_prefix([])


def facts(*versions: ObjectVersion, indexed: int | None = None) -> ObjectFacts:
    return ObjectFacts("a.wav", versions, fingerprint(versions) if indexed is None else indexed)


SETTINGS = EraseSettings()


def test_an_unchanged_settled_key_is_deleted_and_never_claimed_effective() -> None:
    d = decide(facts(V1, V2, DM), SETTINGS, NOW)
    assert (d.action, d.method, d.effective, d.reason) == (
        Action.ERASE, EraseMethod.S3_DELETE, False, OBJECT_STORE,
    )  # fmt: skip


def test_file_settings_do_not_apply_to_objects() -> None:
    refuse = EraseSettings(method=EraseMethod.UNLINK, on_ineffective=OnIneffective.REFUSE)
    assert decide(facts(V1), refuse, NOW).action is Action.ERASE


def test_a_key_that_gained_a_version_since_indexing_waits_for_the_poll() -> None:
    d = decide(facts(V1, V2, indexed=fingerprint([V1])), SETTINGS, NOW)
    assert d.action is Action.SKIP
    assert "changed since it was indexed" in (d.reason or "")


def test_a_key_written_within_settle_waits() -> None:
    fresh = version("v3", timedelta(seconds=30))
    d = decide(facts(V1, fresh), SETTINGS, NOW)
    assert (d.action, d.reason) == (Action.SKIP, "modified less than 2m ago")


def test_a_delete_marker_written_within_settle_also_waits() -> None:
    marker = version("dm2", timedelta(seconds=5), marker=True)
    assert decide(facts(V1, marker), SETTINGS, NOW).action is Action.SKIP


def test_a_version_from_the_future_waits() -> None:
    future = version("v9", -timedelta(hours=1))
    d = decide(facts(future), SETTINGS, NOW)
    assert (d.action, d.reason) == (Action.SKIP, "modification time is in the future")


def test_object_facts_add_up_data_versions_only() -> None:
    f = facts(V1, V2, DM)
    assert (f.size, f.data_versions, f.mtime_ns) == (150, 2, DM.last_modified_ns)


def state(**kw: object) -> BucketState:
    base: dict[str, object] = {
        "versioning": "Enabled", "lock_enabled": False, "default_mode": None,
        "default_days": None, "default_years": None,
    }  # fmt: skip
    return BucketState(**(base | kw))  # type: ignore[arg-type]


def test_bucket_report_of_a_plain_versioned_bucket() -> None:
    assert bucket_report("arch", "rec", state(), mirror_legal_holds=False) == [
        (False, "source arch: bucket rec: versioned, no Object Lock")
    ]


def test_bucket_report_warns_that_compliance_forbids_early_deletion() -> None:
    lines = bucket_report(
        "arch", "rec", state(lock_enabled=True, default_mode="COMPLIANCE", default_days=30),
        mirror_legal_holds=False,
    )  # fmt: skip
    assert lines[0] == (
        False,
        "source arch: bucket rec: versioned, Object Lock, default retention COMPLIANCE 30 days",
    )
    warning, text = lines[1]
    assert warning
    assert "COMPLIANCE default retention (30 days)" in text
    assert "not even for a verified early-deletion request" in text


def test_bucket_report_of_governance_years_and_suspended_versioning() -> None:
    lines = bucket_report(
        "arch", "rec",
        state(versioning="Suspended", lock_enabled=True, default_mode="GOVERNANCE",
              default_years=1),
        mirror_legal_holds=True,
    )  # fmt: skip
    assert lines[0] == (
        False, "source arch: bucket rec: versioning suspended, Object Lock, default retention "
               "GOVERNANCE 1 year",
    )  # fmt: skip
    assert lines[1][0]
    assert "GOVERNANCE default retention (1 year) stops recd deleting" in lines[1][1]
    assert "unless bypass_governance = true" in lines[1][1]
    bypassing = bucket_report(
        "arch", "rec", state(lock_enabled=True, default_mode="GOVERNANCE", default_years=1),
        mirror_legal_holds=False, bypass_governance=True,
    )  # fmt: skip
    assert [warning for warning, _ in bypassing] == [False]


def test_bucket_report_warns_when_holds_cannot_be_mirrored() -> None:
    lines = bucket_report("arch", "rec", state(versioning=None), mirror_legal_holds=True)
    assert lines[0] == (False, "source arch: bucket rec: not versioned, no Object Lock")
    assert lines[1][0]
    assert "mirror_legal_holds = true needs a bucket created with Object Lock" in lines[1][1]


def test_bucket_report_of_a_lock_without_default() -> None:
    lines = bucket_report("a", "b", state(lock_enabled=True), mirror_legal_holds=True)
    assert lines == [
        (False, "source a: bucket b: versioned, Object Lock without a default retention")
    ]


@pytest.mark.parametrize(
    ("days", "years", "text"),
    [(1, None, "1 day"), (30, None, "30 days"), (None, 2, "2 years"), (None, None, None)],
)
def test_lock_period(days: int | None, years: int | None, text: str | None) -> None:
    assert state(default_days=days, default_years=years).lock_period == text
