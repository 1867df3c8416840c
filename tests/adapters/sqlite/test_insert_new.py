"""``insert_new`` (a first index's rows from plain values, ``recd.core.fastclass.Found``)
stores exactly the rows ``upsert`` stores for the same recordings, column for column, with
and without holds that match them."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.core.fastclass import Classified, Found
from recd.core.holds import Hold
from recd.core.model import FileFacts, Provenance, recording_id
from recd.core.scope import Scope
from tests.contracts.rows import T0

DAY_US = 86_400_000_000
TEXT = st.none() | st.text(max_size=6)
PROVENANCE = st.lists(
    st.tuples(st.sampled_from(["licence", "call_id", "caller", "started", "format"]),
              st.sampled_from(list(Provenance))),
    max_size=5, unique_by=lambda p: p[0],
).map(tuple)  # fmt: skip


@st.composite
def found(draw: st.DrawFn) -> Found:
    relpath = draw(st.sampled_from(["a.wav", "d/b.wav", "d/e/c.mp3", "x/\udcff.wav", "ü/é"]))
    relpath = f"{draw(st.integers(0, 99))}/{relpath}"
    started = draw(st.integers(-(10**15), 10**16))
    facts = FileFacts(
        "pbx",
        relpath,
        draw(st.integers(0, 2**32)),
        draw(st.integers(0, 2**40)),
        draw(st.integers(0, 2**40)),
        draw(st.integers(-(2**62), 2**62)),
        ctime_ns=draw(st.none() | st.integers(0, 2**62)),
        btime_ns=draw(st.none() | st.integers(0, 2**62)),
    )
    c = Classified(
        draw(st.sampled_from([None, "L1", "L2"])),
        started,
        draw(st.none() | st.integers(started, started + 400 * DAY_US)),
        draw(TEXT),
        draw(TEXT),
        draw(TEXT),
        draw(TEXT),
        draw(st.none() | st.sampled_from(["wav", "mp3"])),
        draw(PROVENANCE),
    )
    return Found(recording_id("pbx", relpath), facts, c)


def rows(path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT * FROM recordings ORDER BY id").fetchall()
    finally:
        db.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(found(), max_size=8, unique_by=lambda f: f.id),
    hold=st.sampled_from([None, "active", "released"]),
)
def test_insert_new_stores_what_upsert_stores(
    tmp_path_factory: object, batch: list[Found], hold: str | None
) -> None:
    assert hasattr(tmp_path_factory, "mktemp")
    base: Path = tmp_path_factory.mktemp("c")
    now = T0 + timedelta(days=1)
    catalogues = [SqliteCatalogue(base / "fast.db"), SqliteCatalogue(base / "general.db")]
    for cat in catalogues:
        if hold is not None:
            placed, _ = cat.place_hold(Hold("", Scope("L1"), "C-1", "litigation", T0, "alice"))
            if hold == "released":
                cat.release_hold(
                    placed, at=T0, by="bob", reason="done", expired=False,
                    not_before=now + timedelta(days=3),
                )  # fmt: skip
    fast, general = catalogues
    fast.insert_new(batch, now)
    general.upsert([f.recording(now) for f in batch], now)
    for cat in catalogues:
        cat.close()
    assert rows(base / "fast.db") == rows(base / "general.db")
    assert len(rows(base / "fast.db")) == len(batch)
