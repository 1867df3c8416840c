"""A corrupt catalogue never loses a hold (SPEC section 8, issue 14 point 2): it is moved aside
as ``catalog.db.corrupt-<UTC time>`` and a new one rebuilt from the sources and the audit log.

Each test places a hold through a real daemon and `recctl`, damages ``catalog.db`` (garbage
over it, or a byte of a row that no longer decodes, at rest or under the running daemon) and
lets recd meet it: the held recording is kept, a due one the hold does not cover is erased (the
sweep ran), the damaged file is kept beside the new one, and ``catalogue.rebuilt`` says why.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path

from tests.e2e.helpers import (
    ctl,
    held_and_due,
    place,
    rebuilt,
    recd,
    rid,
    running,
    wait_until,
    write_due_at,
    write_estate_with_grace,
)
from tests.fakes import NotifyListener

ASIDE = re.compile(r"catalog\.db\.corrupt-[0-9]{8}T[0-9]{6}Z")
NOT_UTF8 = "CAST(X'4c312f736f6f6ee92e776176' AS TEXT)"  # 'L1/soon\xe9.wav': Latin-1, not UTF-8


def asides(base: Path) -> list[str]:
    """The catalogues moved aside (their -wal and -shm, if any, left out)."""
    return sorted(p.name for p in (base / "state").iterdir() if ASIDE.fullmatch(p.name))


def test_a_garbage_catalogue_is_moved_aside_and_the_hold_kept(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config, hold = held_and_due(tmp_path, listener)
    garbage = os.urandom(64 * 1024)
    (tmp_path / "state" / "catalog.db").write_bytes(garbage)

    with running(config, tmp_path, listener) as sock:
        assert not (tmp_path / "recordings/L1/other.wav").exists(), "the sweep did not run"
        assert (tmp_path / "recordings/L1/held.wav").exists()
        shown = json.loads(ctl(sock, "hold", "show", hold, "--json").stdout)
        assert (shown["state"], shown["held"]) == ("active", 1)

    [aside] = asides(tmp_path)
    assert ASIDE.fullmatch(aside), aside
    assert (tmp_path / "state" / aside).read_bytes() == garbage
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["holds"], details["active"]) == ("corrupt", 1, 1)
    assert (details["aside"], details["error"]) == (aside, "file is not a database")
    log = (tmp_path / "recd.log").read_text()
    assert (
        f"ERROR recd.daemon.runtime: {tmp_path / 'state' / 'catalog.db'}: the catalogue is corrupt "
        f"(file is not a database); moved it aside as {aside} and started a new one, rebuilt "
        "from the sources and the audit log before anything is erased\n"
    ) in log
    assert "was corrupt; rebuilt 1 legal hold (1 active, 0 released)" in log


def test_a_hold_that_does_not_decode_is_found_by_a_once_run(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """A flipped byte in a row passes quick_check: the open decodes the holds and finds it."""
    config, hold = held_and_due(tmp_path, listener)
    db = sqlite3.connect(tmp_path / "state" / "catalog.db")
    db.execute(f"UPDATE holds SET scope = {NOT_UTF8}")
    db.commit()
    db.close()

    done = recd("--once", "--config", str(config))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "recordings/L1/held.wav").exists(), done.stderr
    assert not (tmp_path / "recordings/L1/other.wav").exists(), "the sweep did not run"
    [details] = rebuilt(tmp_path)
    assert details["error"] == "table holds, column scope: text that is not UTF-8"
    with running(config, tmp_path, listener) as sock:
        holds = json.loads(ctl(sock, "hold", "ls", "--json").stdout)
    assert [(h["id"], h["state"]) for h in holds] == [(hold, "active")]


def test_a_row_that_does_not_decode_under_the_running_daemon(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """The sweep meets the damaged row at the next deadline: the daemon moves the catalogue
    aside and rebuilds it in process (the same process, stopped cleanly after), then erases
    what is due and keeps what is held."""
    config = write_estate_with_grace(tmp_path)
    deadline = time.time() + 8
    write_due_at(tmp_path, "L1/held.wav", deadline)
    write_due_at(tmp_path, "L1/soon.wav", deadline)
    with running(config, tmp_path, listener) as sock:
        hold = place(sock, "--recording", rid("L1/held.wav"))
        db = sqlite3.connect(tmp_path / "state" / "catalog.db", timeout=10)
        db.execute(
            f"UPDATE recordings SET location = {NOT_UTF8} WHERE id = ?", (rid("L1/soon.wav"),)
        )
        db.commit()
        db.close()
        assert time.time() < deadline, "too slow: the row was damaged after the deadline"

        wait_until("soon.wav erased", lambda: not (tmp_path / "recordings/L1/soon.wav").exists())
        assert (tmp_path / "recordings/L1/held.wav").exists()
        holds = json.loads(ctl(sock, "hold", "ls", "--json").stdout)
        assert [(h["id"], h["state"]) for h in holds] == [(hold, "active")]

    [aside] = asides(tmp_path)
    assert ASIDE.fullmatch(aside), aside
    [details] = rebuilt(tmp_path)
    assert (details["why"], details["aside"], details["error"]) == (
        "corrupt", aside, "table recordings, column location: text that is not UTF-8",
    )  # fmt: skip
    log = (tmp_path / "recd.log").read_text()
    assert "Traceback" not in log
    assert log.count("the catalogue is corrupt") == 1, log
