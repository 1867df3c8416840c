"""recd.service.plan: the one erase planner opens and checks each recording before anything is
touched: a file gone, rewritten, hard-linked, written to while hashed, below a swapped root or of
another source is not erased, and says why."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.config.types import CatalogueSettings
from recd.core.model import State
from recd.core.pgurl import parse_postgres_url
from recd.core.requeststate import ItemOutcome, RequestState
from recd.daemon.runtime import Runtime, reindex, scan_all
from recd.service.requests import Requests
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.service.helpers import (
    ALICE,
    BOB,
    appended,
    approved,
    document,
    erase_entries,
    keyed_estate,
    meanwhile,
    requests,
    rid,
)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]) -> Estate:
    return keyed_estate(tmp_path, fake_clock, keys)


def test_a_recording_named_by_id_and_indexed_later_as_another_licence_is_not_erased(
    estate: Estate, rt: Runtime
) -> None:
    """Unknown at registration, so not refused then; once indexed it turns out to be L2's:
    a request for L1 never reaches it, and its certificate says why."""
    other = estate.write("L2/x_c1.wav", age_days=1)
    desk = requests(estate, rt)
    desk.register(document(recordings=[rid("L2/x_c1.wav")]), ALICE)
    desk.approve("REQ-1", BOB)
    scan_all(rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and other.exists()
    assert (item.outcome, item.licence, item.location) == (
        ItemOutcome.FAILED, "L2", str(other),
    )  # fmt: skip
    assert item.note == "not erased: it belongs to L2, not to L1"
    assert erase_entries(estate) == []
    (skipped,) = json.loads(desk.certificate("REQ-1").text)["skipped"]
    assert (skipped["id"], skipped["reason"]) == (rid("L2/x_c1.wav"), item.note)


def test_a_file_deleted_since_the_scan_is_certified_gone_and_marked_missing(
    estate: Estate, rt: Runtime
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    path.unlink()  # the catalogue still says present: no scan since
    desk = approved(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert (item.outcome, item.note) == (ItemOutcome.GONE, "vanished before erasure")
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.state is State.MISSING
    assert erase_entries(estate) == []
    assert json.loads(desk.certificate("REQ-1").text)["already_gone"][0]["note"] == (
        "vanished before erasure"
    )


def test_a_file_found_missing_between_batches_is_not_erased(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch reads the catalogue again: what a scan between two batches found gone is
    certified gone, not opened."""
    monkeypatch.setattr("recd.service.requestruns.BATCH", 1)
    first = estate.write("L1/a_c1.wav", age_days=1)
    second = estate.write("L1/b_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)

    def scan_meanwhile() -> bool:
        second.unlink()
        scan_all(rt)
        return False

    stored, items = desk.execute("REQ-1", ALICE, should_stop=scan_meanwhile)
    assert stored.state is RequestState.COMPLETED and not first.exists()
    assert [(i.recording_id, i.outcome, i.note) for i in items] == [
        (rid("L1/a_c1.wav"), ItemOutcome.ERASED, None),
        (rid("L1/b_c1.wav"), ItemOutcome.GONE, "vanished before erasure"),
    ]
    assert {e["subject"] for e in erase_entries(estate)} == {rid("L1/a_c1.wav")}


def test_recordings_of_a_source_no_longer_configured_fail_and_stay(
    estate: Estate, rt: Runtime
) -> None:
    """The source was taken out of the configuration; its recordings are still catalogued.
    recd cannot erase them there, and says so instead of reporting them gone."""
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    approved(estate, rt)
    estate.configure(sources=())
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, {})
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert (item.outcome, item.note) == (ItemOutcome.FAILED, "source pbx is not configured")
    assert item.location == "pbx:L1/a_c1.wav"
    assert erase_entries(estate) == []
    assert json.loads(desk.certificate("REQ-1").text)["summary"]["failed"] == 1


def test_recordings_of_a_source_other_hosts_serve_fail_saying_where_to_run_it(
    estate: Estate, rt: Runtime
) -> None:
    """With ``nodes``, a request run on a host the source is not on erases nothing of it and
    says to run the request again through a host that serves it (a partial request may be)."""
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    approved(estate, rt)
    (pbx,) = estate.config.sources
    estate.configure(
        sources=(replace(pbx, nodes=("pbx-b",)),),
        daemon=replace(estate.config.daemon, node="pbx-a"),
    )
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, {})
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert (item.outcome, item.note) == (
        ItemOutcome.FAILED,
        "source pbx is not served by this host (pbx-a): run the request again through a host "
        "that serves it",
    )
    assert erase_entries(estate) == []
    # On a shared catalogue a source this recd.toml does not have at all is another host's.
    other = CatalogueSettings(parse_postgres_url("postgresql://recd@db1/recd", passfile="-"))
    estate.configure(sources=(replace(pbx, name="mine"),), catalogue=other)
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, {})
    _, (item,) = desk.execute("REQ-1", ALICE)
    assert (item.outcome, item.note) == (
        ItemOutcome.FAILED,
        "source pbx is not served by this host (pbx-a): run the request again through a host "
        "that serves it",
    )
    assert path.exists() and erase_entries(estate) == []


def test_a_file_rewritten_since_indexing_is_reindexed_then_erased_by_the_next_run(
    estate: Estate, rt: Runtime
) -> None:
    """Same name, same inode, other content: not the recording indexed, so not erased as it.
    The run audits why and re-indexes the file (without the hook, the catalogue keeps the old
    facts until a scan); the next run erases it and certifies the SHA-256 of what is there."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"old audio")
    scan_all(rt)
    ino = path.stat().st_ino
    path.write_bytes(b"new audio")
    yesterday = (estate.clock.now() - timedelta(days=1, hours=1)).timestamp()
    os.utime(path, (yesterday, yesterday))
    assert path.stat().st_ino == ino
    approved(estate, rt)
    plain = requests(estate, rt)
    stored, (item,) = plain.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"new audio"
    assert item.outcome is ItemOutcome.FAILED and item.note is not None
    assert item.note.startswith("not erased: changed since it was indexed (mtime ")
    (skipped,) = erase_entries(estate)
    assert (skipped["action"], skipped["subject"]) == ("erase.skipped", rid("L1/a_c1.wav"))
    assert skipped["details"]["reason"] == "request:REQ-1"
    assert f"not erased: {skipped['details']['skipped']}" == item.note
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.mtime_ns != path.stat().st_mtime_ns  # not re-indexed
    desk = Requests(
        estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers,
        reindex=functools.partial(reindex, rt),
    )  # fmt: skip
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.exists()
    assert item.outcome is ItemOutcome.FAILED
    row = rt.catalogue.get(rid("L1/a_c1.wav"))
    assert row is not None and row.mtime_ns == path.stat().st_mtime_ns  # re-indexed
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED and not path.exists()
    assert item.sha256 == hashlib.sha256(b"new audio").hexdigest()


def test_a_hardlinked_recording_is_refused_and_left_in_place(
    estate: Estate, rt: Runtime, tmp_path: Path
) -> None:
    """A second name outside the root would keep the data whatever recd overwrites at one."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    (tmp_path / "kept.wav").hardlink_to(path)
    scan_all(rt)  # indexed with its two links
    desk = approved(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio"
    assert (item.outcome, item.note) == (ItemOutcome.FAILED, "not erased: has 2 hard links")
    assert [(e["action"], e["details"]["skipped"]) for e in erase_entries(estate)] == [
        ("erase.skipped", "has 2 hard links")
    ]


def test_a_file_written_to_while_it_is_hashed_is_not_erased(
    estate: Estate, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks of ``prepare`` passed, then a writer appended: the SHA-256 would not be of
    the file checked, so nothing is hashed, intended or erased."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)

    meanwhile(monkeypatch, rt, "digest", lambda: appended(path))
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and path.read_bytes() == b"audio+more"
    assert item.note == "not erased: changed since it was checked"
    assert [(e["action"], e["details"]["skipped"]) for e in erase_entries(estate)] == [
        ("erase.skipped", "changed since it was checked")
    ]


def test_a_swapped_recordings_root_is_not_erased_below(estate: Estate, rt: Runtime) -> None:
    """The root recd checked at start was moved away and another directory put at its path
    (with a file at the same name): neither file is touched, each item fails and is audited."""
    path = estate.write("L1/a_c1.wav", age_days=1, data=b"audio")
    scan_all(rt)
    desk = approved(estate, rt)
    moved = estate.base / "recordings.moved"
    estate.root.rename(moved)
    (estate.root / "L1").mkdir(parents=True)
    path.write_bytes(b"decoy")
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL
    assert (moved / "L1" / "a_c1.wav").read_bytes() == b"audio"
    assert path.read_bytes() == b"decoy"
    assert item.outcome is ItemOutcome.FAILED
    (skipped,) = erase_entries(estate)
    assert skipped["action"] == "erase.skipped"
    assert item.note == f"not erased: {skipped['details']['skipped']}"
    assert skipped["details"]["skipped"].startswith(
        f"{estate.root} is no longer the directory recd checked at start"
    ), skipped
