"""The daemon meets a corrupt catalogue while running (issue 14, point 2), in-process: opening
the state again after it (``recd.daemon.opening``).

An admin command that reads a damaged row fails with one clear line for the admin; the loop then
moves the catalogue aside and rebuilds it without stopping (holds from the audit log first),
and goes on to the next item. Driven through ``Daemon.run`` with items put on its queue.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.core.model import recording_id
from recd.daemon.inbox import Command
from recd.daemon.loop import Daemon
from recd.daemon.runtime import open_runtime
from recd.daemon.signals import Event
from recd.errors import CatalogueCorrupt, ExitCode
from recd.ports.records import Actor
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener

ALICE = Actor("alice", 1000, admin=True)
NOT_UTF8 = "CAST(X'7b226cff63656e6365223a22' AS TEXT)"


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    """Hold H-0001 on L1/held.wav (due, so only the hold keeps it); L1/later.wav not due."""
    estate = Estate(tmp_path, fake_clock)
    estate.hold("L1/held.wav", ALICE)
    estate.write("L1/held.wav", age_days=40)
    estate.write("L1/later.wav", age_days=1)
    return estate


def damaging(estate: Estate, sql: str) -> Command[None]:
    """A loop item that damages a row (as a disk would, between two reads of the loop's)."""

    def damage() -> None:
        db = sqlite3.connect(estate.config.daemon.state_dir / "catalog.db")
        db.execute(sql)
        db.commit()
        db.close()

    return Command(damage)


def corrupt_rebuilds(estate: Estate) -> list[dict[str, object]]:
    rebuilt = [e["details"] for e in estate.audit() if e["action"] == "catalogue.rebuilt"]
    return [d for d in rebuilt if d["why"] == "corrupt"]


def test_the_loop_meets_a_damaged_hold_and_rebuilds_in_process(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    release = Command(lambda: daemon.holds().release("H-0001", reason="done", actor=ALICE))
    damage = damaging(estate, f"UPDATE holds SET scope = {NOT_UTF8}")
    for item in (damage, release, Event.STOP):
        daemon.inbox.queue.put(item)

    assert daemon.run() == ExitCode.OK

    # The loop's own look at the holds after the damage found it: the release then ran on
    # the rebuilt catalogue, where the hold is back with its id.
    assert release.future.result().hold.id == "H-0001"
    [rebuilt] = corrupt_rebuilds(estate)
    assert rebuilt["error"] == "table holds, column scope: text that is not UTF-8"
    state = estate.config.daemon.state_dir
    assert (state / str(rebuilt["aside"])).exists()
    assert (estate.root / "L1/held.wav").exists()
    listener.wait_for("STATUS=catalogue rebuilt; scanning sources")


def test_an_admin_command_that_meets_a_damaged_row_fails_and_the_loop_rebuilds(
    estate: Estate, listener: NotifyListener
) -> None:
    daemon = Daemon(estate.config, estate.clock, Notifier(listener.path))
    later = recording_id("pbx", "L1/later.wav")
    damage = damaging(estate, f"UPDATE recordings SET location = {NOT_UTF8} WHERE id = '{later}'")
    show = Command(lambda: daemon.runtime.catalogue.get(later))
    again = Command(lambda: daemon.runtime.catalogue.get(later))
    for item in (damage, show, None, again, Event.STOP):  # None: a wake-up (the rescan)
        daemon.inbox.queue.put(item)

    assert daemon.run() == ExitCode.OK

    failed = show.future.exception()
    assert isinstance(failed, CatalogueCorrupt)
    state = estate.config.daemon.state_dir
    assert str(failed) == (
        f"{state / 'catalog.db'}: the catalogue is corrupt: table recordings, column "
        "location: text that is not UTF-8"
    )
    recording = again.future.result()  # the rebuilt catalogue has it again, from the scan
    assert recording is not None and recording.relpath == "L1/later.wav"
    [rebuilt] = corrupt_rebuilds(estate)
    assert (rebuilt["aside"], rebuilt["holds"]) == ("catalog.db.corrupt-20261123T120000Z", 1)
    assert (estate.root / "L1/held.wav").exists()


def test_quick_check_runs_at_start_and_not_at_a_reload(estate: Estate) -> None:
    """A damaged page that no query touches (page 3's free-space pointer) is found by SQLite's
    quick_check at start and moved aside; a reload opens the catalogue without it (seconds
    on a large catalogue, and the running daemon has met every page it reads)."""
    for n in range(300):  # enough rows for a third page
        estate.write(f"L1/pad-{n:03d}-{'x' * 60}.wav", age_days=1)
    estate.sweep()
    path = estate.config.daemon.state_dir / "catalog.db"
    data = bytearray(path.read_bytes())
    data[2 * 4096 + 5] ^= 0xFF
    path.write_bytes(bytes(data))

    open_runtime(estate.config, estate.clock, quick_check=False).close()  # a reload's open
    state = estate.config.daemon.state_dir
    assert not list(state.glob("catalog.db.corrupt-*")), "moved aside at a reload"
    estate.runtime().close()  # a start's
    assert len(list(state.glob("catalog.db.corrupt-*"))) == 1, "quick_check did not run"
