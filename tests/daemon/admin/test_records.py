"""The read answers of a started daemon (``recd.daemon.admin.records``): ``show`` of an ambiguous
id prefix, where each retention period comes from, ``policy`` and ``ls`` of every state."""

from __future__ import annotations

import pytest

from recd.config.load import RetentionSettings
from recd.core.model import UnclassifiedPolicy, recording_id
from recd.errors import UsageError
from tests.daemon.helpers import ask, make
from tests.estate import Estate
from tests.fakes import NotifyListener


def twins(prefix: str = "L1/call") -> tuple[str, str, str]:
    """Two relpaths whose recording ids share their first 6 digits, and those digits."""
    seen: dict[str, str] = {}
    for i in range(1_000_000):
        relpath = f"{prefix}{i}.wav"
        head = recording_id("pbx", relpath)[:6]
        if head in seen:
            return seen[head], relpath, head
        seen[head] = relpath
    raise AssertionError("no two ids alike")  # pragma: no cover (the birthday bound: ~5000)


def test_show_refuses_an_id_prefix_two_recordings_share(
    estate: Estate, listener: NotifyListener
) -> None:

    first, second, head = twins()
    estate.write(first, age_days=1)
    estate.write(second, age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        with pytest.raises(UsageError) as caught:
            ask(daemon, "show", id=head)
        assert str(caught.value) == f"recording id {head} is ambiguous: give more of it"
    finally:
        daemon.stop()


def test_retention_rules_name_where_each_period_comes_from(
    estate: Estate, listener: NotifyListener
) -> None:
    estate.configure(retention=RetentionSettings(unclassified=UnclassifiedPolicy.DEFAULT))
    estate.write("L1/a.wav", age_days=1)
    estate.write("L7/b.wav", age_days=1)  # a licence with no file in licences.d
    estate.write("unknown/c.wav", age_days=1)  # unclassified
    daemon = make(estate, listener)
    daemon.start()
    try:
        rows = {r["licence"]: r for r in ask(daemon, "ls")}
        shown = {k: ask(daemon, "show", id=r["id"])["retention"] for k, r in rows.items()}
        # started a day ago + 30 days, whichever rule gave the 30 days
        assert {k: v.pop("deadline") for k, v in shown.items()} == dict.fromkeys(
            shown, "2026-12-22T12:00:00Z"
        )
        assert shown == {
            "L1": {"period": "30d", "rule": f"retention in {estate.base}/l1.toml"},
            "L7": {
                "period": "30d",
                "rule": f"retention.default in {estate.config.path} (licence not in licences.d)",
            },
            None: {
                "period": "30d",
                "rule": f"retention.unclassified = default (retention.default in "
                f"{estate.config.path})",
            },
        }
    finally:
        daemon.stop()


def test_policy_leaves_out_the_unclassified_when_there_are_none_to_keep(
    estate: Estate, listener: NotifyListener
) -> None:
    estate.write("L1/a.wav", age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        assert [(r["licence"], r["recordings"]) for r in ask(daemon, "policy")] == [
            ("L1", 1), ("L2", 0),
        ]  # fmt: skip
    finally:
        daemon.stop()


def test_ls_of_every_state(estate: Estate, listener: NotifyListener) -> None:
    estate.write("L1/old.wav", age_days=31)
    estate.write("L1/new.wav", age_days=1)
    daemon = make(estate, listener)
    daemon.start()
    try:
        listed = ask(daemon, "ls", state="all")
        assert sorted((r["location"].rpartition("/")[2], r["state"]) for r in listed) == [
            ("new.wav", "present"), ("old.wav", "erased"),
        ]  # fmt: skip
    finally:
        daemon.stop()
