"""The CatalogueReader contract: read-only queries beside a live writer, on every
implementation in ``CATALOGUES``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from recd.core.model import State
from recd.ports.catalogue import Catalogue
from recd.ports.reader import CatalogueReader, ListQuery, Totals
from tests.contracts.rows import T0, rec


def test_totals_follow_every_kind_of_change(pair: tuple[Catalogue, CatalogueReader]) -> None:
    writer, reader = pair
    a, b, c = rec("a.wav"), rec("b.wav"), rec("c.wav", licence=None, deadline=None)
    writer.upsert([a, b, c], T0)
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 2, 200)]
    writer.upsert([replace(a, size=50, classification=replace(a.classification, licence="L2"))], T0)
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 1, 100), Totals("L2", 1, 50)]
    writer.mark_missing([b.id])
    writer.upsert([replace(b, size=10)], T0)  # back again, smaller
    assert reader.totals() == [Totals(None, 1, 100), Totals("L1", 1, 10), Totals("L2", 1, 50)]
    writer.mark_dirs_missing("pbx", [""])
    assert reader.totals() == []


def test_listing_orders_by_deadline_then_the_undated(
    pair: tuple[Catalogue, CatalogueReader],
) -> None:
    writer, reader = pair
    late = rec("late.wav", deadline=T0 + timedelta(days=9))
    soon = rec("soon.wav", deadline=T0 + timedelta(days=1))
    kept = rec("kept.wav", licence=None, deadline=None)
    gone = rec("gone.wav")
    writer.upsert([late, kept, soon, gone], T0)
    writer.mark_missing([gone.id])

    def ids(query: ListQuery) -> list[str]:
        return [r.id for r in reader.recordings(query)]

    assert ids(ListQuery()) == [soon.id, late.id, kept.id]
    assert ids(ListQuery(limit=2)) == [soon.id, late.id]
    assert ids(ListQuery(unclassified=True)) == [kept.id]
    assert ids(ListQuery(licence="L1")) == [soon.id, late.id]
    assert ids(ListQuery(due_before=T0 + timedelta(days=2))) == [soon.id]
    assert ids(ListQuery(state=State.MISSING)) == [gone.id]
    assert set(ids(ListQuery(state=None))) == {late.id, soon.id, kept.id, gone.id}


def test_counts_lookups_and_prefixes(pair: tuple[Catalogue, CatalogueReader]) -> None:
    writer, reader = pair
    a = rec("a.wav", deadline=T0 + timedelta(hours=1))
    b = rec("b.wav", deadline=T0 + timedelta(hours=3))
    writer.upsert([a, b], T0)
    assert reader.due_counts(T0 + timedelta(hours=2)) == {"L1": 1}
    assert reader.overdue(T0 + timedelta(hours=2)) == 1
    assert reader.next_deadline(T0 + timedelta(hours=1)) == T0 + timedelta(hours=3)
    assert reader.next_deadline(T0 + timedelta(hours=3)) is None
    assert reader.get(a.id) == writer.get(a.id)
    assert reader.get("nope") is None
    assert [r.id for r in reader.match(a.id[:8])] == [a.id]
    assert reader.match("") != []


def test_breakers_and_scans(pair: tuple[Catalogue, CatalogueReader]) -> None:
    writer, reader = pair
    writer.trip_breaker("L1", T0, 10, 20)
    writer.begin_scan("pbx", T0, "rule")
    assert reader.breakers() == writer.breakers()
    assert reader.scans() == {"pbx": (T0, None)}
    writer.finish_scan("pbx", T0 + timedelta(seconds=5))
    assert reader.scans() == {"pbx": (T0, T0 + timedelta(seconds=5))}
