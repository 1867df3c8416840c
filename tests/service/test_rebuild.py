"""recd.service.rebuild: a catalogue behind the audit log gets the entries after its mark replayed,
and past a break in the chain the replay keeps hold placings and leaves releases out."""

from __future__ import annotations

import shutil

from recd.core.audit import AuditDraft
from recd.core.holds import HoldState
from recd.core.model import recording_id
from recd.core.scope import Scope
from recd.daemon.runtime import rebuilder, scan_all
from recd.ports.records import RECD
from recd.service.holds import Holds
from recd.service.rebuild import BEHIND
from tests.estate import Estate
from tests.service.helpers import ALICE, check, started


def test_a_catalogue_behind_the_log_gets_the_entries_after_its_mark(estate: Estate) -> None:
    kept = estate.write("L1/kept.wav", age_days=40)  # due: only a hold keeps it
    freed = estate.write("L1/freed.wav", age_days=5)
    rt = estate.runtime()
    scan_all(rt)
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    early, _ = holds.place(Scope("L1", recordings=frozenset({recording_id("pbx", "L1/freed.wav")})),
                           case="C-1", reason="r", until=None, actor=ALICE)  # fmt: skip
    rebuilder(rt).mark()
    rt.close()
    backup = estate.base / "backup.db"
    shutil.copy(estate.config.daemon.state_dir / "catalog.db", backup)
    rt = estate.runtime()
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    late, _ = holds.place(Scope("L1", recordings=frozenset({recording_id("pbx", "L1/kept.wav")})),
                          case="C-2", reason="r", until=None, actor=ALICE)  # fmt: skip
    holds.release(early.id, reason="closed", actor=RECD)
    rt.close()
    shutil.copy(backup, estate.config.daemon.state_dir / "catalog.db")

    rt = estate.runtime()
    rebuilding = rebuilder(rt)
    done = rebuilding.restore()
    assert done is not None and rebuilding.problem is None
    assert (done.why, done.entries, len(done.replayed.holds)) == (BEHIND, 2, 2)
    stored = {h.id: h.state for h in rt.catalogue.holds(everything=True)}
    assert stored == {early.id: HoldState.RELEASED, late.id: HoldState.ACTIVE}
    rows = {r.relpath: r.held for r in rt.catalogue.all()}  # type: ignore[attr-defined]
    assert rows == {"L1/kept.wav": True, "L1/freed.wav": False}
    rebuilding.record()
    mark = rt.catalogue.audit_mark()
    last = rt.audit.last()
    assert last is not None and mark is not None and (mark.seq, mark.hash) == (last.seq, last.hash)
    assert last.details["why"] == "behind" and last.details["mark_seq"] == done.mark_seq
    rt.close()
    rt, again = check(estate)
    rt.close()
    assert again.restore() is None, "replayed again"
    assert kept.exists() and freed.exists()


def test_past_a_break_in_the_chain_a_replay_keeps_placings_and_leaves_releases(
    estate: Estate,
) -> None:
    """A catalogue behind a log that was also damaged after its mark: what is before the
    break is replayed; after it, intact entries that place holds are (keep more), releases
    are not; erasing stays paused for an administrator either way."""
    estate.write("L1/a.wav", age_days=5)
    estate.write("L1/b.wav", age_days=5)
    started(estate, runs=1)
    rt = estate.runtime()
    scan_all(rt)
    rebuilder(rt).mark()
    mark = rt.catalogue.audit_mark()
    rt.close()
    backup = estate.base / "backup.db"
    shutil.copy(estate.config.daemon.state_dir / "catalog.db", backup)
    rt = estate.runtime()
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)

    def place(name: str) -> str:
        scope = Scope("L1", recordings=frozenset({recording_id("pbx", name)}))
        return holds.place(scope, case="C", reason="r", until=None, actor=ALICE)[0].id

    before = place("L1/a.wav")
    rt.audit.append([AuditDraft("note", "-", {"text": "to be damaged"})], estate.clock.now())
    after = place("L1/b.wav")
    holds.release(before, reason="closed", actor=ALICE)
    rt.close()
    shutil.copy(backup, estate.config.daemon.state_dir / "catalog.db")
    estate.audit_path.write_bytes(estate.audit_path.read_bytes().replace(b"to be damaged", b"X"))

    rt = estate.runtime()
    rebuilding = rebuilder(rt)
    done = rebuilding.restore()
    try:
        assert rebuilding.problem is not None and rebuilding.problem.kind == "chain"
        assert done is not None and (done.why, done.mark_seq) == ("behind", mark and mark.seq)
        states = {h.id: str(h.state) for h in rt.catalogue.holds(everything=True)}
        assert states == {before: "active", after: "active"}, "a release past the break"
        assert [p.split(":")[1] for p in done.replayed.problems] == [
            f" hold.released {before} comes after a break in the chain; not replayed"
        ]
        rows = {r.relpath: r.held for r in rt.catalogue.all()}  # type: ignore[attr-defined]
        assert rows == {"L1/a.wav": True, "L1/b.wav": True}
    finally:
        rt.close()
