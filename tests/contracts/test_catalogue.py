"""The Catalogue contract, run against every implementation (SQLite always)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SCHEMA_VERSION, SqliteCatalogue, from_us, to_us
from recd.adapters.sqlite.schema import MIGRATIONS
from recd.core.audit import GENESIS
from recd.core.holds import Hold, HoldState
from recd.core.model import Stamps, State, recording_id
from recd.core.scope import Scope
from recd.core.segcheck import Ends, Print, Prints, Stat
from recd.errors import CatalogueCorrupt, StateError
from recd.ports import (
    AuditCheckpoint,
    AuditMark,
    Breaker,
    Catalogue,
    Intent,
    ItemOutcome,
    RequestItem,
    RequestState,
    StoredRequest,
)
from tests.contracts.helpers import T0, rec


@pytest.fixture(params=["sqlite"])
def catalogue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalogue]:
    cat = SqliteCatalogue(tmp_path / "catalog.db")
    yield cat
    cat.close()


def test_time_conversion_is_exact() -> None:
    when = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_upsert_then_get_round_trips(catalogue: Catalogue) -> None:
    r = rec("a.wav")
    assert catalogue.begin_scan("pbx", T0, "rule1") is False
    catalogue.upsert([r], T0)
    got = catalogue.get(r.id)
    assert got == r
    assert catalogue.get("nope") is None
    assert list(catalogue.all()) == [r]  # type: ignore[attr-defined]


def test_begin_scan_notices_rule_changes(catalogue: Catalogue) -> None:
    assert catalogue.begin_scan("pbx", T0, "a") is False
    assert catalogue.begin_scan("pbx", T0, "a") is False
    assert catalogue.begin_scan("pbx", T0, "b") is True
    assert catalogue.begin_scan("other", T0, "b") is False
    catalogue.finish_scan("pbx", T0)


def test_in_dir_returns_known_facts_of_one_directory(catalogue: Catalogue) -> None:
    rows = [rec("a.wav", ino=9), rec("d/b.wav", ino=10), rec("d/e/c.wav", ino=11)]
    catalogue.upsert(rows, T0)
    root = catalogue.in_dir("pbx", "")
    assert list(root) == [rows[0].id]
    assert (root[rows[0].id].ino, root[rows[0].id].state) == (9, State.PRESENT)
    assert list(catalogue.in_dir("pbx", "d")) == [rows[1].id]
    assert catalogue.in_dir("other", "d") == {}
    assert sorted(catalogue.dirs("pbx")) == ["", "d", "d/e"]


def test_mark_missing_by_id_and_by_directory(catalogue: Catalogue) -> None:
    rows = [rec(p) for p in ("a.wav", "d/b.wav", "d/c.wav", "x/d.wav")]
    catalogue.upsert(rows, T0)
    catalogue.mark_missing([rows[0].id])
    assert catalogue.mark_dirs_missing("pbx", ["d"]) == 2
    assert catalogue.mark_dirs_missing("pbx", ["d"]) == 0  # already missing
    states = {r.relpath: catalogue.get(r.id).state for r in rows}  # type: ignore[union-attr]
    assert states == {
        "a.wav": State.MISSING,
        "d/b.wav": State.MISSING,
        "d/c.wav": State.MISSING,
        "x/d.wav": State.PRESENT,
    }
    assert catalogue.dirs("pbx") == ["x"]


def test_reappearing_file_is_present_again(catalogue: Catalogue) -> None:
    r = rec("a.wav")
    catalogue.upsert([r], T0)
    catalogue.mark_missing([r.id])
    assert catalogue.get(r.id).state is State.MISSING  # type: ignore[union-attr]
    catalogue.upsert([r], T0 + timedelta(days=1))
    got = catalogue.get(r.id)
    assert got is not None
    assert got.state is State.PRESENT
    assert got.first_seen == T0  # first seen is kept


def test_due_is_found_by_directory_and_paged_by_location(catalogue: Catalogue) -> None:
    rows = [rec(f"d1/{i}.wav", deadline=T0 + timedelta(hours=i)) for i in range(5)]
    rows += [rec("d0/x.wav", deadline=T0), rec("d2/later.wav", deadline=T0 + timedelta(days=9))]
    rows.append(rec("never.wav", deadline=None))
    catalogue.upsert(rows, T0)
    now = T0 + timedelta(hours=3)
    assert catalogue.due_dirs(now) == [("pbx", "d0"), ("pbx", "d1")]
    first = catalogue.due_in("pbx", "d1", now, 2)
    assert [r.relpath for r in first] == ["d1/0.wav", "d1/1.wav"]
    rest = catalogue.due_in("pbx", "d1", now, 10, first[-1].relpath)
    assert [r.relpath for r in rest] == ["d1/2.wav", "d1/3.wav"]
    assert catalogue.due_in("pbx", "d2", now, 10) == []
    assert catalogue.due_in("other", "d1", now, 10) == []
    assert catalogue.next_deadline() == T0
    assert catalogue.counts(now) == {"L1": (8, 5)}


def test_counts_group_unclassified_under_none(catalogue: Catalogue) -> None:
    catalogue.upsert([rec("u.wav", licence=None, deadline=None), rec("a.wav")], T0)
    assert catalogue.counts(T0) == {None: (1, 0), "L1": (1, 0)}
    assert sorted(catalogue.licences(), key=str) == ["L1", None]


def test_next_deadline_is_none_when_nothing_has_one(catalogue: Catalogue) -> None:
    assert catalogue.next_deadline() is None


def test_set_deadlines_recomputes_one_licence_and_records_policy(catalogue: Catalogue) -> None:
    catalogue.upsert([rec("a.wav"), rec("b.wav", licence="L2"), rec("u.wav", licence=None)], T0)
    n = catalogue.set_deadlines("L1", "1d", lambda s: s + timedelta(days=1))
    assert n == 1
    assert catalogue.get(recording_id("pbx", "a.wav")).deadline == T0 + timedelta(days=1)  # type: ignore[union-attr]
    assert catalogue.get(recording_id("pbx", "b.wav")).deadline == T0 + timedelta(days=30)  # type: ignore[union-attr]
    catalogue.set_deadlines(None, "keep", lambda s: None)
    assert catalogue.get(recording_id("pbx", "u.wav")).deadline is None  # type: ignore[union-attr]
    catalogue.record_policy("L2", "30d")
    catalogue.record_policy("L1", "ignored: already stored")
    assert catalogue.policies() == {"L1": "1d", None: "keep", "L2": "30d"}


def test_intents_resolve_into_erased_recordings(catalogue: Catalogue) -> None:
    a, b = rec("a.wav"), rec("b.wav")
    catalogue.upsert([a, b], T0)
    intents = [
        Intent("i1", a.id, 10, ".recd-erase-1", {"method": "overwrite"}, T0),
        Intent("i2", b.id, 10, ".recd-erase-2", {"method": "overwrite"}, T0),
    ]
    catalogue.add_intents(intents)
    assert catalogue.pending_intents() == intents
    catalogue.resolve_intents([("i1", T0 + timedelta(seconds=1))], ["i2"])
    assert catalogue.pending_intents() == []
    assert catalogue.get(a.id).state is State.ERASED  # type: ignore[union-attr]
    assert catalogue.get(b.id).state is State.PRESENT  # type: ignore[union-attr]
    assert catalogue.due_in("pbx", "", T0 + timedelta(days=365), 10) == [catalogue.get(b.id)]


def test_skip_reason_is_stored_and_cleared_by_reindexing(catalogue: Catalogue) -> None:
    a = rec("a.wav")
    catalogue.upsert([a], T0)
    catalogue.set_skip_reason(a.id, "has 2 hard links")
    assert catalogue.get(a.id).skip_reason == "has 2 hard links"  # type: ignore[union-attr]
    catalogue.upsert([a], T0)
    assert catalogue.get(a.id).skip_reason is None  # type: ignore[union-attr]


def test_breakers_trip_and_clear(catalogue: Catalogue) -> None:
    assert catalogue.breakers() == {}
    catalogue.trip_breaker("L1", T0, 2000, 4000)
    b = catalogue.breakers()["L1"]
    assert (b.due, b.total, b.tripped_at, b.released_at) == (2000, 4000, T0, None)
    catalogue.trip_breaker("L1", T0 + timedelta(hours=1), 2100, 4000)
    assert catalogue.breakers()["L1"].due == 2100
    catalogue.clear_breaker("L1")
    assert catalogue.breakers() == {}


def test_failed_transaction_rolls_back(catalogue: Catalogue) -> None:
    a = rec("a.wav")
    catalogue.upsert([a], T0)
    with pytest.raises(sqlite3.IntegrityError):
        catalogue.add_intents(
            [Intent("same", a.id, 0, "t", {}, T0), Intent("same", a.id, 0, "t", {}, T0)]
        )
    assert catalogue.pending_intents() == []


def test_sqlite_is_wal_with_full_sync_and_versioned(tmp_path: Path) -> None:
    cat = SqliteCatalogue(tmp_path / "c.db")
    cat.close()
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()
    SqliteCatalogue(tmp_path / "c.db").close()  # reopening does not migrate again


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError) as exc:
        SqliteCatalogue(tmp_path / "c.db")
    assert str(exc.value) == (
        f"{tmp_path / 'c.db'}: catalogue schema {SCHEMA_VERSION + 1} is newer than this recd "
        f"understands ({SCHEMA_VERSION}); upgrade recd"
    )


def test_sqlite_reports_a_file_that_is_not_a_database_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogueCorrupt) as exc:
        SqliteCatalogue(tmp_path / "c.db")
    assert str(exc.value) == (
        f"{tmp_path / 'c.db'}: the catalogue is corrupt: file is not a database"
    )


def test_dirs_of_a_subtree(catalogue: Catalogue) -> None:
    paths = ("a.wav", "d/b.wav", "d/e/c.wav", "d-x/f.wav", "dz/g.wav", "x/h.wav")
    catalogue.upsert([rec(p) for p in paths], T0)
    catalogue.mark_missing([rec("x/h.wav").id])
    assert catalogue.dirs("pbx") == ["", "d", "d-x", "d/e", "dz"]
    below = catalogue.dirs("pbx", "d")
    assert {"d", "d/e"} <= set(below) <= {"d", "d/e", "d-x"}  # prefix siblings may come too
    assert catalogue.dirs("pbx", "x") == []  # only missing recordings there
    assert catalogue.dirs("other") == []


def test_newest_mtime_of_a_source_up_to_a_limit(catalogue: Catalogue) -> None:
    """What the clock guard at start trusts of an S3 source: the newest time present, never
    one after the limit (a time in the future vouches for nothing)."""
    old, new, future = (rec(f"{n}.wav", started=T0 + timedelta(days=d)) for n, d in
                        (("old", 0), ("new", 1), ("future", 9)))  # fmt: skip
    gone = rec("gone.wav", started=T0 + timedelta(days=2))
    catalogue.upsert([old, new, future, gone, rec("o.wav", source="other")], T0)
    catalogue.mark_missing([gone.id])
    limit = to_us(T0 + timedelta(days=5)) * 1000
    assert catalogue.newest_mtime_ns("pbx", limit) == new.mtime_ns
    assert catalogue.newest_mtime_ns("pbx", old.mtime_ns) == old.mtime_ns
    assert catalogue.newest_mtime_ns("pbx", old.mtime_ns - 1) is None
    assert catalogue.newest_mtime_ns("nowhere", limit) is None


#: Names as ``os.fsdecode`` gives them for bytes that are not UTF-8 (lone surrogates).
BAD = "bad\udcff\nname\x1b[31m.wav"
BAD_DIR = "d\udce9"  # "é" in Latin-1: the byte 0xe9 on its own


def test_names_that_are_not_utf8_round_trip(catalogue: Catalogue) -> None:
    """A name that is not UTF-8 is stored losslessly and found by id, directory and page."""
    rows = [rec(BAD), rec(f"{BAD_DIR}/x.wav"), rec(f"d/{BAD}"), rec("d/a.wav"), rec("d/z.wav")]
    catalogue.upsert(rows, T0)
    for r in rows:
        got = catalogue.get(r.id)
        assert got == r
        assert os.fsencode(got.relpath) == os.fsencode(r.relpath)
    assert set(catalogue.in_dir("pbx", BAD_DIR)) == {rows[1].id}
    assert set(catalogue.in_dir("pbx", "d")) == {rows[2].id, rows[3].id, rows[4].id}
    assert catalogue.dirs("pbx") == ["", "d", BAD_DIR]
    assert catalogue.dirs("pbx", BAD_DIR) == [BAD_DIR]
    now = T0 + timedelta(days=31)
    assert catalogue.due_dirs(now) == [("pbx", ""), ("pbx", "d"), ("pbx", BAD_DIR)]
    paged: list[str] = []
    after = ""
    while page := catalogue.due_in("pbx", "d", now, 1, after):
        paged += [r.relpath for r in page]
        after = page[-1].relpath
    assert paged == ["d/a.wav", "d/z.wav", f"d/{BAD}"]  # every name once: UTF-8 ones first
    assert catalogue.mark_dirs_missing("pbx", [BAD_DIR]) == 1
    catalogue.mark_missing([rows[0].id])
    assert catalogue.dirs("pbx") == ["d"]


def test_a_directory_below_a_utf8_one_may_not_be_utf8(catalogue: Catalogue) -> None:
    catalogue.upsert([rec("d/a.wav"), rec(f"d/{BAD_DIR}/b.wav"), rec("e/c.wav")], T0)
    assert set(catalogue.dirs("pbx", "d")) == {"d", f"d/{BAD_DIR}"}


def test_intents_of_a_name_that_is_not_utf8_resolve(catalogue: Catalogue) -> None:
    r = rec(BAD)
    catalogue.upsert([r], T0)
    plan = {"location": f"/srv/{BAD}"}
    assert catalogue.add_intents([Intent("i1", r.id, 0, ".recd-erase-x", plan, T0)]) == {"i1"}
    assert catalogue.pending_intents()[0].plan == plan
    catalogue.resolve_intents([("i1", T0)], [])
    assert catalogue.get(r.id).state is State.ERASED  # type: ignore[union-attr]


def test_stamps_are_stored_and_refreshed(catalogue: Catalogue) -> None:
    r = replace(rec("a.wav"), ctime_ns=5, btime_ns=3)
    catalogue.upsert([r], T0)
    assert catalogue.get(r.id) == r
    assert catalogue.in_dir("pbx", "")[r.id].ctime_ns == 5
    newer = replace(r, ctime_ns=6, btime_ns=None)
    catalogue.upsert([newer], T0)
    assert catalogue.get(r.id) == newer
    assert catalogue.get(r.id).stamps == Stamps(r.mtime_ns, 6, None)  # type: ignore[union-attr]


def test_rows_of_an_older_schema_have_no_stamps(tmp_path: Path) -> None:
    """Schema 5 adds the change and birth times; rows indexed before have NULL (not compared)."""
    db = sqlite3.connect(tmp_path / "catalog.db")
    db.executescript("".join(MIGRATIONS[v] for v in range(1, 5)) + "PRAGMA user_version=4;")
    db.execute(
        "INSERT INTO recordings (id, source, location, dir, dev, ino, size, mtime_ns, licence, "
        "started, deadline, fields, state, first_seen, indexed_at) VALUES "
        "('x', 'pbx', 'a.wav', '', 1, 1, 70, 0, 'L1', 0, NULL, '{}', 'present', 0, 0)"
    )
    db.commit()
    db.close()
    cat = SqliteCatalogue(tmp_path / "catalog.db")
    got = cat.get("x")
    cat.close()
    assert got is not None
    assert (got.ctime_ns, got.btime_ns) == (None, None)


def test_restored_breakers_replace_theirs_and_rearmed_ones_go(catalogue: Catalogue) -> None:
    catalogue.trip_breaker("L1", T0, 20, 40)
    catalogue.trip_breaker("L3", T0, 5, 6)
    released = Breaker("L1", T0, 30, 40, T0 + timedelta(hours=1), "bob")
    tripped = Breaker("L2", T0, 7, 9, None, None)
    catalogue.restore_breakers([released, tripped], rearmed=["L3", "L9"])
    assert catalogue.breakers() == {"L1": released, "L2": tripped}
    catalogue.restore_breakers([released, tripped], rearmed=["L3"])  # again: the same
    assert catalogue.breakers() == {"L1": released, "L2": tripped}


# -- requests restored from the audit log (issue 14) -----------------------------------------------


def stored_request(rid: str, state: RequestState = RequestState.VERIFIED) -> StoredRequest:
    document = {"request_id": rid, "licence": "L1", "scope": {"all": True}}
    info = {"registered_by": "alice", "registered_seq": 3, "approved_by": "bob"}
    return StoredRequest(rid, "L1", state, document, "ab" * 32, info, T0)


def test_restored_requests_come_back_with_their_items(catalogue: Catalogue) -> None:
    erased = RequestItem("0" * 20, ItemOutcome.ERASED, "/srv/a.wav", "L1", 100, "cd" * 32,
                         "overwrite", True, time=T0, audit_seq=9)  # fmt: skip
    held = RequestItem("1" * 20, ItemOutcome.HELD, holds=("H-0001",), note="kept by a legal hold")
    done = stored_request("REQ-1", RequestState.COMPLETED)
    catalogue.put_request(replace(done, state=RequestState.EXECUTING))
    catalogue.put_items("REQ-1", [replace(erased, outcome=ItemOutcome.PENDING)])
    waiting = stored_request("REQ-2", RequestState.RECEIVED)
    catalogue.restore_requests([(done, [erased, held]), (waiting, [])])
    assert catalogue.request("REQ-1") == done
    assert catalogue.items("REQ-1") == [erased, held]
    assert catalogue.requests(RequestState.RECEIVED) == [waiting]
    catalogue.restore_requests([(done, [erased, held]), (waiting, [])])  # again: the same
    assert catalogue.items("REQ-1") == [erased, held]
    assert len(catalogue.requests()) == 2


def test_requests_are_restored_in_one_transaction(catalogue: Catalogue) -> None:
    broken = replace(stored_request("REQ-2"), info={"not json": object()})
    with pytest.raises(TypeError):
        catalogue.restore_requests([(stored_request("REQ-1"), []), (broken, [])])
    assert catalogue.requests() == [], "half a restore was kept"


# -- holds restored from the audit log (issue 14) -------------------------------------------------


def held_rows(catalogue: Catalogue) -> dict[str, tuple[bool, datetime | None, datetime | None]]:
    return {r.relpath: (r.held, r.not_before, r.deadline) for r in catalogue.all()}  # type: ignore[attr-defined]


def test_restored_holds_keep_their_ids_states_and_times(catalogue: Catalogue) -> None:
    due = T0 + timedelta(days=40)
    active = Hold("H-0007", Scope("L1", call_ids=frozenset({"42"})), "C-1", "court", T0, "alice",
                  until=T0 + timedelta(days=90))  # fmt: skip
    gone = Hold("H-0003", Scope("L2"), "C-2", "audit", T0, "bob", state=HoldState.RELEASED,
                released_at=T0 + timedelta(days=1), released_by="carol",
                release_reason="closed", due_from=due)  # fmt: skip
    catalogue.upsert([rec("held.wav"), rec("free.wav", licence="L3")], T0)
    assert catalogue.restore_holds([gone, active]) == 1
    assert catalogue.hold("H-0007") == active
    assert catalogue.hold("H-0003") == gone
    assert catalogue.holds() == [active]
    assert held_rows(catalogue)["held.wav"][0] and not held_rows(catalogue)["free.wav"][0]
    # Again (a rebuild cut short and redone): the same holds, no duplicate.
    catalogue.restore_holds([gone, active])
    assert catalogue.holds(everything=True) == [gone, active]
    # A hold placed later is numbered after the highest restored.
    stored, _ = catalogue.place_hold(replace(active, id=""))
    assert stored.id == "H-0008"


def test_a_restored_release_floors_what_it_matches_now_and_later(catalogue: Catalogue) -> None:
    due = T0 + timedelta(days=40)  # later than the recordings' deadline (T0 + 30 days)
    gone = Hold("H-0001", Scope("L1"), "C", "r", T0, "alice", state=HoldState.RELEASED,
                released_at=T0, released_by="bob", release_reason="x", due_from=due)  # fmt: skip
    still = Hold("H-0002", Scope("L1", recordings=frozenset({recording_id("pbx", "kept.wav")})),
                 "C", "r", T0, "alice")  # fmt: skip
    catalogue.upsert([rec("before.wav"), rec("kept.wav"), rec("other.wav", licence="L2")], T0)
    catalogue.restore_holds([gone, still])
    catalogue.upsert([rec("after.wav")], T0)  # indexed after the rebuild
    rows = held_rows(catalogue)
    assert rows["before.wav"] == (False, due, due)
    assert rows["after.wav"] == (False, due, due)
    assert rows["kept.wav"][0] is True
    assert rows["other.wav"] == (False, None, T0 + timedelta(days=30))
    assert catalogue.counts(due - timedelta(seconds=1))["L1"] == (3, 0), "due before due_from"
    # Past its due_from, a release floors nothing indexed later.
    catalogue.upsert([rec("late.wav")], due + timedelta(seconds=1))
    assert held_rows(catalogue)["late.wav"] == (False, None, T0 + timedelta(days=30))


def test_a_release_records_its_due_from(catalogue: Catalogue) -> None:
    catalogue.upsert([rec("a.wav")], T0)
    hold, _ = catalogue.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
    due = T0 + timedelta(days=45)
    catalogue.release_hold(hold, at=T0, by="bob", reason="x", expired=False, not_before=due)
    stored = catalogue.hold(hold.id)
    assert stored is not None and stored.due_from == due
    catalogue.upsert([rec("b.wav")], T0)
    assert held_rows(catalogue)["b.wav"] == (False, due, due), "a release's grace is a rule too"


def test_the_audit_mark(catalogue: Catalogue) -> None:
    assert catalogue.audit_mark() is None, "a new catalogue never saw the log"
    catalogue.set_audit_mark(AuditMark(12, "ab" * 32))
    assert catalogue.audit_mark() == AuditMark(12, "ab" * 32)
    catalogue.set_audit_mark(AuditMark(13, "cd" * 32, 4096))
    assert catalogue.audit_mark() == AuditMark(13, "cd" * 32, 4096)


def test_the_audit_checkpoint(catalogue: Catalogue) -> None:
    assert catalogue.audit_checkpoint() is None, "a new catalogue never checked the log"
    checkpoint = AuditCheckpoint(40, "ab" * 32, 12_345, "cd" * 32)
    catalogue.set_audit_checkpoint(checkpoint)
    assert catalogue.audit_checkpoint() == checkpoint
    assert catalogue.audit_mark() is None, "the checkpoint is not the mark"


def test_the_audit_segments_checked(catalogue: Catalogue) -> None:
    assert catalogue.audit_segments() is None, "a new catalogue never checked a segment"
    stat = Stat("audit.log.1-9.gz", 1, 9, 77, 4096, 1_700_000_000_123_456_789)
    prints = Prints({stat.name: Print(stat, Ends(1, GENESIS, 0, 9, "ab" * 32, 9000))},
                    (10, "ab" * 32, 9000))  # fmt: skip
    catalogue.set_audit_segments(prints)
    assert catalogue.audit_segments() == prints
    assert catalogue.audit_checkpoint() is None


def test_a_replayed_release_lets_go_of_what_no_other_hold_keeps(catalogue: Catalogue) -> None:
    """A catalogue behind the log: a hold it has active, released by an entry after its
    mark; what another active hold matches stays held. Replayed twice: the same."""
    due = T0 + timedelta(days=40)
    catalogue.upsert([rec("a.wav"), rec("b.wav")], T0)
    wide, _ = catalogue.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
    only_b = Scope("L1", recordings=frozenset({recording_id("pbx", "b.wav")}))
    narrow, _ = catalogue.place_hold(Hold("", only_b, "C", "r", T0, "alice"))
    released = replace(wide, state=HoldState.RELEASED, released_at=T0, released_by="bob",
                       release_reason="x", due_from=due)  # fmt: skip
    for _ in range(2):
        assert catalogue.restore_holds([released]) == 1
        rows = held_rows(catalogue)
        assert rows["a.wav"] == (False, due, due)
        assert rows["b.wav"][0] is True
        assert catalogue.holds() == [narrow]


def test_an_older_catalogue_in_use_has_seen_its_log(tmp_path: Path) -> None:
    """Schema 6 marks a catalogue an older recd kept (position unknown), not an unused one."""
    for name, used in (("used.db", True), ("unused.db", False)):
        db = sqlite3.connect(tmp_path / name)
        db.executescript("".join(MIGRATIONS[v] for v in range(1, 6)) + "PRAGMA user_version=5;")
        if used:
            db.execute("INSERT INTO scans (source, rule, started) VALUES ('pbx', 'r', 0)")
        db.commit()
        db.close()
        cat = SqliteCatalogue(tmp_path / name)
        mark = cat.audit_mark()
        cat.close()
        assert mark == (AuditMark(None, None) if used else None), name
