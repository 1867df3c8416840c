"""The ``Source`` contract (``recd.ports.source``), on every kind of place in ``PLACES``: a
``DirectorySource`` and an ``S3Source`` (on the moto server).

A scan yields the facts of each recording once (relpath, size, modification time), ``facts``
agrees with it, a removed recording is no longer listed, ``under`` limits a scan to one
directory (key prefix), and ``last_scan`` is as declared: None before a full scan and always
for a source that counts nothing (a directory), the totals of the last full scan otherwise.
"""

from __future__ import annotations

import time

from recd.ports.source import ScanTotals
from tests.contracts.places import Place

SECOND = 1_000_000_000


def test_a_scan_yields_the_facts_of_each_recording(place: Place) -> None:
    before = time.time_ns() // SECOND * SECOND  # S3 times have whole seconds
    place.write("1001/a.wav", b"abc")
    place.write("b.wav", b"recording b")
    after = time.time_ns()
    facts = {f.relpath: f for f in place.source.scan()}
    assert {p: f.size for p, f in facts.items()} == {"1001/a.wav": 3, "b.wav": 11}
    assert all(before <= f.mtime_ns <= after for f in facts.values()), facts
    assert {f.source for f in facts.values()} == {place.source.name}
    assert list(place.source.report.unreadable_dirs) == []
    for relpath, f in facts.items():
        assert place.source.facts(relpath) == f


def test_a_removed_recording_is_no_longer_listed(place: Place) -> None:
    place.write("a.wav", b"a")
    place.write("b.wav", b"b")
    place.remove("a.wav")
    assert [f.relpath for f in place.source.scan()] == ["b.wav"]
    assert place.source.facts("a.wav") is None


def test_a_scan_under_a_directory_yields_only_what_is_below_it(place: Place) -> None:
    place.write("1001/a.wav", b"a")
    place.write("1001/sub/b.wav", b"b")
    place.write("1002/c.wav", b"c")
    place.write("1001.wav", b"d")
    assert sorted(f.relpath for f in place.source.scan("1001")) == ["1001/a.wav", "1001/sub/b.wav"]


def test_last_scan_is_what_the_last_full_scan_listed(place: Place) -> None:
    place.write("1001/a.wav", b"abc")
    place.write("b.wav", b"recording b")
    assert place.source.last_scan is None, "before any scan"
    list(place.source.scan("1001"))
    assert place.source.last_scan is None, "a partial scan counts nothing"
    list(place.source.scan())
    totals = ScanTotals(objects=2, versions=2, delete_markers=0, bytes=14)
    assert place.source.last_scan == (totals if place.counts_scans else None)
    place.remove("b.wav")
    list(place.source.scan())
    totals = ScanTotals(objects=1, versions=1, delete_markers=0, bytes=3)
    assert place.source.last_scan == (totals if place.counts_scans else None)
