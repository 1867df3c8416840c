"""The hold, request and S3-mirror roles of the catalogue (``recd.ports.legal``), on every
implementation in ``CATALOGUES``."""

from __future__ import annotations

from datetime import timedelta

from recd.core.holds import Hold
from recd.core.scope import Scope
from recd.ports.catalogue import Catalogue
from tests.contracts.rows import T0, held_rows, rec


def test_a_release_records_its_due_from(catalogue: Catalogue) -> None:
    catalogue.upsert([rec("a.wav")], T0)
    hold, _ = catalogue.place_hold(Hold("", Scope("L1"), "C", "r", T0, "alice"))
    due = T0 + timedelta(days=45)
    catalogue.release_hold(hold, at=T0, by="bob", reason="x", expired=False, not_before=due)
    stored = catalogue.hold(hold.id)
    assert stored is not None and stored.due_from == due
    catalogue.upsert([rec("b.wav")], T0)
    assert held_rows(catalogue)["b.wav"] == (False, due, due), "a release's grace is a rule too"
