"""Attack: a corrupt or hostile ``catalog.db`` (issue 14, point 2).

Whoever can write recd's state directory (a failing disk, a crash, a careless restore, or
someone with recd's uid) damages the catalogue, or prepares the names recd will move it to.
Before: garbage was a traceback or "cannot open" forever, a flipped byte in a row a traceback.

What must hold: a corrupt catalogue is moved aside as ``catalog.db.corrupt-<UTC time>`` with its
journals, never over anything already there (a symlink planted at that name, or at the name of
one of its journals, is neither followed nor replaced: the next free name is taken), and never
while another recd holds the state; a journal beside it goes with it and is never replayed
into the new catalogue; the holds come back from the audit log before anything is erased. A
catalogue that is not corrupt but refused (a schema newer than this recd) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.errors import ExitCode, StateError
from recd.ports.records import Actor
from tests.attacks.helpers import Victim
from tests.estate import Estate
from tests.fakes import FakeClock

ASIDE = "catalog.db.corrupt-20261123T120000Z"  # FakeClock's time, UTC
ALICE = Actor("alice", 1000, admin=True)


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    """A hold on L1/held.wav, placed before it was written; then it and L1/due.wav, both due."""
    estate = Estate(tmp_path, fake_clock)
    estate.hold("L1/held.wav", ALICE)
    estate.write("L1/held.wav", age_days=40)
    estate.write("L1/due.wav", age_days=40)
    return estate


def state(estate: Estate) -> Path:
    return estate.config.daemon.state_dir


def damage(estate: Estate, data: bytes = b"") -> bytes:
    """Garbage over catalog.db (what was there is gone: the audit log is the record)."""
    garbage = data or os.urandom(32 * 1024)
    (state(estate) / "catalog.db").write_bytes(garbage)
    return garbage


def run_kept_the_hold(estate: Estate) -> list[dict[str, object]]:
    """`recd --once`: exit 0, the held recording kept, the other erased; the rebuilds."""
    code, out = estate.once()
    assert code == ExitCode.OK, out
    assert (estate.root / "L1/held.wav").exists()
    assert not (estate.root / "L1/due.wav").exists(), "the sweep did not run"
    return [e["details"] for e in estate.audit() if e["action"] == "catalogue.rebuilt"]


def test_a_symlink_planted_at_the_aside_name_is_not_followed(
    estate: Estate, tmp_path: Path
) -> None:
    victim = Victim(tmp_path / "outside" / "secret")
    (state(estate) / ASIDE).symlink_to(victim.path)
    garbage = damage(estate)

    [details] = run_kept_the_hold(estate)

    assert details["aside"] == f"{ASIDE}-2"
    assert victim.untouched()
    assert os.readlink(state(estate) / ASIDE) == str(victim.path)
    assert (state(estate) / f"{ASIDE}-2").read_bytes() == garbage


def test_a_dangling_symlink_at_the_aside_name_creates_nothing(
    estate: Estate, tmp_path: Path
) -> None:
    target = tmp_path / "outside" / "made-by-recd"
    (state(estate) / ASIDE).symlink_to(target)
    damage(estate)

    [details] = run_kept_the_hold(estate)

    assert details["aside"] == f"{ASIDE}-2"
    assert not target.exists() and not target.parent.exists()


def test_a_symlink_planted_at_a_journals_aside_name_skips_the_whole_name(
    estate: Estate, tmp_path: Path
) -> None:
    victim = Victim(tmp_path / "outside" / "secret")
    (state(estate) / f"{ASIDE}-wal").symlink_to(victim.path)
    garbage = damage(estate)

    [details] = run_kept_the_hold(estate)

    assert details["aside"] == f"{ASIDE}-2"
    assert victim.untouched()
    assert not (state(estate) / ASIDE).exists()
    assert (state(estate) / f"{ASIDE}-2").read_bytes() == garbage


@pytest.mark.parametrize("journal", ["-journal", "-wal"])
def test_a_journal_beside_a_corrupt_catalogue_never_reaches_the_new_one(
    estate: Estate, journal: str
) -> None:
    """SQLite drops a journal it cannot use when the damaged file is closed; whatever is left
    goes aside with it, before the new catalogue is created, so none is replayed into it."""
    damage(estate)
    (state(estate) / f"catalog.db{journal}").write_bytes(b"journal " * 4096)

    [details] = run_kept_the_hold(estate)

    assert details["aside"] == ASIDE
    assert not (state(estate) / "catalog.db-journal").exists()
    runtime = estate.runtime()
    try:
        assert [h.id for h in runtime.catalogue.holds()] == ["H-0001"]
    finally:
        runtime.close()


def test_a_second_corruption_in_the_same_second_keeps_the_first_copy(estate: Estate) -> None:
    first = damage(estate)
    run_kept_the_hold(estate)
    estate.write("L1/due.wav", age_days=40)
    second = damage(estate)

    rebuilds = run_kept_the_hold(estate)

    assert [d["aside"] for d in rebuilds] == [ASIDE, f"{ASIDE}-2"]
    assert (state(estate) / ASIDE).read_bytes() == first
    assert (state(estate) / f"{ASIDE}-2").read_bytes() == second


def test_a_corrupt_catalogue_another_recd_holds_is_not_moved(estate: Estate) -> None:
    garbage = damage(estate)
    other = FileAuditLog.open(estate.audit_path, estate.clock.now())
    try:
        with pytest.raises(StateError) as exc:
            estate.once()
    finally:
        other.close()
    assert str(exc.value) == f"{estate.audit_path}: in use by another recd process"
    assert (state(estate) / "catalog.db").read_bytes() == garbage
    assert not list(state(estate).glob("*.corrupt-*"))


def test_an_absurd_schema_version_is_corrupt(estate: Estate) -> None:
    """A header field set to make recd refuse its catalogue for good ("upgrade recd")."""
    path = state(estate) / "catalog.db"
    data = bytearray(path.read_bytes())
    data[60:64] = (2**31 - 1).to_bytes(4, "big")  # the header's user_version
    path.write_bytes(bytes(data))

    [details] = run_kept_the_hold(estate)

    assert details["error"] == f"schema version {2**31 - 1} makes no sense"


def test_a_newer_schema_is_refused_and_left_in_place(estate: Estate) -> None:
    path = state(estate) / "catalog.db"
    data = bytearray(path.read_bytes())
    data[60:64] = (int.from_bytes(data[60:64], "big") + 1).to_bytes(4, "big")
    path.write_bytes(bytes(data))

    with pytest.raises(StateError, match="is newer than this recd understands"):
        estate.once()

    assert path.read_bytes() == bytes(data)
    assert not list(state(estate).glob("*.corrupt-*"))
    assert (estate.root / "L1/due.wav").exists(), "erased with a catalogue it refused"
