"""The indexing and policy roles of the catalogue (``recd.ports.scanning``), on every
implementation in ``tests.contracts.conftest.CATALOGUES``."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

from recd.core.fastclass import Classified, Found
from recd.core.holds import Hold
from recd.core.model import FileFacts, Provenance, Stamps, State, recording_id
from recd.core.scope import Scope
from recd.ports.legal import HoldCatalogue
from recd.ports.scanning import IndexingCatalogue, PolicyCatalogue
from recd.ports.sweeping import SweepCatalogue
from tests.contracts.rows import BAD, BAD_DIR, T0, ns, rec, stored


class Scanning(IndexingCatalogue, PolicyCatalogue, SweepCatalogue, Protocol):
    """What the indexer and the retention rules use of the catalogue, and the sweep's
    queries, which must find by directory what the indexer stored."""


def test_upsert_then_get_round_trips(catalogue: Scanning) -> None:
    r = rec("a.wav")
    assert catalogue.begin_scan("pbx", T0, "rule1") is False
    catalogue.upsert([r], T0)
    got = catalogue.get(r.id)
    assert got == r
    assert catalogue.get("nope") is None


def test_begin_scan_notices_rule_changes(catalogue: Scanning) -> None:
    assert catalogue.begin_scan("pbx", T0, "a") is False
    assert catalogue.begin_scan("pbx", T0, "a") is False
    assert catalogue.begin_scan("pbx", T0, "b") is True
    assert catalogue.begin_scan("other", T0, "b") is False
    catalogue.finish_scan("pbx", T0)


def test_in_dir_returns_known_facts_of_one_directory(catalogue: Scanning) -> None:
    rows = [rec("a.wav", ino=9), rec("d/b.wav", ino=10), rec("d/e/c.wav", ino=11)]
    catalogue.upsert(rows, T0)
    root = catalogue.in_dir("pbx", "")
    assert list(root) == [rows[0].id]
    assert (root[rows[0].id].ino, root[rows[0].id].state) == (9, State.PRESENT)
    assert list(catalogue.in_dir("pbx", "d")) == [rows[1].id]
    assert catalogue.in_dir("other", "d") == {}
    assert sorted(catalogue.dirs("pbx")) == ["", "d", "d/e"]


def test_mark_missing_by_id_and_by_directory(catalogue: Scanning) -> None:
    rows = [rec(p) for p in ("a.wav", "d/b.wav", "d/c.wav", "x/d.wav")]
    catalogue.upsert(rows, T0)
    catalogue.mark_missing([rows[0].id])
    assert catalogue.mark_dirs_missing("pbx", ["d"]) == 2
    assert catalogue.mark_dirs_missing("pbx", ["d"]) == 0  # already missing
    states = {r.relpath: stored(catalogue, r.relpath).state for r in rows}
    assert states == {
        "a.wav": State.MISSING,
        "d/b.wav": State.MISSING,
        "d/c.wav": State.MISSING,
        "x/d.wav": State.PRESENT,
    }
    assert catalogue.dirs("pbx") == ["x"]


def test_reappearing_file_is_present_again(catalogue: Scanning) -> None:
    r = rec("a.wav")
    catalogue.upsert([r], T0)
    catalogue.mark_missing([r.id])
    assert stored(catalogue, r.relpath).state is State.MISSING
    catalogue.upsert([r], T0 + timedelta(days=1))
    got = catalogue.get(r.id)
    assert got is not None
    assert got.state is State.PRESENT
    assert got.first_seen == T0  # first seen is kept


def test_dirs_of_a_subtree(catalogue: Scanning) -> None:
    paths = ("a.wav", "d/b.wav", "d/e/c.wav", "d-x/f.wav", "dz/g.wav", "x/h.wav")
    catalogue.upsert([rec(p) for p in paths], T0)
    catalogue.mark_missing([rec("x/h.wav").id])
    assert catalogue.dirs("pbx") == ["", "d", "d-x", "d/e", "dz"]
    below = catalogue.dirs("pbx", "d")
    assert {"d", "d/e"} <= set(below) <= {"d", "d/e", "d-x"}  # prefix siblings may come too
    assert catalogue.dirs("pbx", "x") == []  # only missing recordings there
    assert catalogue.dirs("other") == []


def test_newest_mtime_of_a_source_up_to_a_limit(catalogue: Scanning) -> None:
    """What the clock guard at start trusts of an S3 source: the newest time present, never
    one after the limit (a time in the future vouches for nothing)."""
    old, new, future = (rec(f"{n}.wav", started=T0 + timedelta(days=d)) for n, d in
                        (("old", 0), ("new", 1), ("future", 9)))  # fmt: skip
    gone = rec("gone.wav", started=T0 + timedelta(days=2))
    catalogue.upsert([old, new, future, gone, rec("o.wav", source="other")], T0)
    catalogue.mark_missing([gone.id])
    limit = ns(T0 + timedelta(days=5))
    assert catalogue.newest_mtime_ns("pbx", limit) == new.mtime_ns
    assert catalogue.newest_mtime_ns("pbx", old.mtime_ns) == old.mtime_ns
    assert catalogue.newest_mtime_ns("pbx", old.mtime_ns - 1) is None
    assert catalogue.newest_mtime_ns("nowhere", limit) is None


def test_names_that_are_not_utf8_round_trip(catalogue: Scanning) -> None:
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


def test_a_directory_below_a_utf8_one_may_not_be_utf8(catalogue: Scanning) -> None:
    catalogue.upsert([rec("d/a.wav"), rec(f"d/{BAD_DIR}/b.wav"), rec("e/c.wav")], T0)
    assert set(catalogue.dirs("pbx", "d")) == {"d", f"d/{BAD_DIR}"}


def test_stamps_are_stored_and_refreshed(catalogue: Scanning) -> None:
    r = replace(rec("a.wav"), ctime_ns=5, btime_ns=3)
    catalogue.upsert([r], T0)
    assert catalogue.get(r.id) == r
    assert catalogue.in_dir("pbx", "")[r.id].ctime_ns == 5
    newer = replace(r, ctime_ns=6, btime_ns=None)
    catalogue.upsert([newer], T0)
    assert catalogue.get(r.id) == newer
    assert stored(catalogue, r.relpath).stamps == Stamps(r.mtime_ns, 6, None)


def test_set_deadlines_recomputes_one_licence_and_records_policy(catalogue: Scanning) -> None:
    catalogue.upsert([rec("a.wav"), rec("b.wav", licence="L2"), rec("u.wav", licence=None)], T0)
    n = catalogue.set_deadlines("L1", "1d", lambda s: s + timedelta(days=1))
    assert n == 1
    assert stored(catalogue, "a.wav").deadline == T0 + timedelta(days=1)
    assert stored(catalogue, "b.wav").deadline == T0 + timedelta(days=30)
    catalogue.set_deadlines(None, "keep", lambda s: None)
    assert stored(catalogue, "u.wav").deadline is None
    catalogue.record_policy("L2", "30d")
    catalogue.record_policy("L1", "ignored: already stored")
    assert catalogue.policies() == {"L1": "1d", None: "keep", "L2": "30d"}


class ScanningHolds(Scanning, HoldCatalogue, Protocol):
    """The indexer's roles and the holds that decide what it stores as held."""


def test_insert_new_stores_the_recordings_it_stands_for(catalogue: ScanningHolds) -> None:
    """A first index's rows from plain values (``Found``) are the ``Recording``s they stand
    for, held where an active hold matches them, as ``upsert`` would store them."""
    found = []
    for relpath, licence, deadline_us in (("a.wav", "L1", None), ("d/b.wav", "L2", 5 * 10**15)):
        facts = FileFacts("pbx", relpath, 7, 1, 100, ns(T0), ctime_ns=ns(T0), btime_ns=None)
        c = Classified(
            licence, 10**15 + 1, deadline_us, "42", None, "0770", None, "wav",
            (("licence", Provenance.PATTERN), ("call_id", Provenance.PATTERN),
             ("caller", Provenance.PATTERN), ("started", Provenance.PATTERN),
             ("format", Provenance.PATTERN)),
        )  # fmt: skip
        found.append(Found(recording_id("pbx", relpath), facts, c))
    catalogue.place_hold(Hold("", Scope("L2"), "C-1", "litigation", T0, "alice"))
    catalogue.insert_new(found, T0)
    a, b = (f.recording(T0) for f in found)
    assert catalogue.get(a.id) == a
    assert catalogue.get(b.id) == replace(b, held=True)
