"""What every role of the SQLite catalogue shares (recd.adapters.sqlite.store): a write that
fails inside a ``Transaction`` leaves nothing behind. The role mixins (indexing, sweeping,
holding, auditmarks, requesting, mirroring) are tested through the contract suites in
tests/contracts, which run every role on this catalogue.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.ports.records import Intent
from tests.contracts.rows import T0, rec


def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    catalogue = SqliteCatalogue(tmp_path / "c.db")
    a = rec("a.wav")
    catalogue.upsert([a], T0)
    with pytest.raises(sqlite3.IntegrityError):
        catalogue.add_intents(
            [Intent("same", a.id, 0, "t", {}, T0), Intent("same", a.id, 0, "t", {}, T0)]
        )
    assert catalogue.pending_intents() == []
    catalogue.close()
