"""Attack: modification times set by hand (``touch -d``, ``os.utime``).

Whoever owns a file can set its mtime to anything. Backdated to 1970 while a writer still has it
open, it looks settled (``erase.settle`` counts from the mtime) and long past any deadline taken
from the mtime; backdated after closing, it contradicts the start time its name gives; dated in
the future, it looks unsettled forever.

What must hold: a file open for writing is not erased however old its mtime says it is (the lease
check does not trust the mtime), and is erased once closed; where the source's pattern gives the
start time, the recording is due by its name, never early because of its mtime (and not kept
late because of it either); a future mtime is left for later ("modification time is in the
future") without failing anything. No traceback.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.attacks.helpers import OPEN, Writer, named, named_estate
from tests.e2e.helpers import audit_entries, recd, write_estate, write_recording


def erased(base: Path) -> list[str]:
    return [e["details"]["location"] for e in audit_entries(base) if e["action"] == "erase.done"]


def test_file_backdated_while_a_writer_has_it_open_is_not_erased_until_closed(
    tmp_path: Path, writers: list[Writer]
) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text().replace('settle = "0s"', 'settle = "1h"'))
    held = write_recording(tmp_path, "L1/held.wav", age_days=0)
    writer = Writer(held)
    writers.append(writer)
    writer.write()
    os.utime(held, (0, 0))  # settled for 56 years, due for as long
    content = held.read_bytes()
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == f"L1: 1 recording, 1 due, 0 erased, 1 kept (1 {OPEN})\n"
    assert f"not erasing {held} yet: {OPEN}\n" in result.stderr
    assert held.read_bytes() == content
    assert erased(tmp_path) == []

    writer.close()
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 1 recording, 1 due, 1 erased\n")
    assert not held.exists()


def test_the_name_gives_the_deadline_whatever_the_mtime_says(tmp_path: Path) -> None:
    config = named_estate(tmp_path, settle="0s")
    young = named(tmp_path, "young", age_days=1)  # due in 29 days by its name
    os.utime(young, (0, 0))  # backdated after closing
    old = named(tmp_path, "old", age_days=40)  # due 10 days ago by its name
    now = datetime.now(UTC).timestamp()
    os.utime(old, (now - 5, now - 5))  # and freshly "modified" (settled, as settle is 0s)
    result = recd("--once", "--config", str(config))
    assert "Traceback" not in result.stderr
    assert (result.returncode, result.stdout) == (0, "L1: 2 recordings, 1 due, 1 erased\n")
    assert young.exists() and not old.exists()
    [done] = [e for e in audit_entries(tmp_path) if e["action"] == "erase.done"]
    started = datetime.strptime(old.name[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert done["details"]["deadline"] == (started + timedelta(days=30)).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )


def test_future_mtime_is_left_for_later_and_the_rest_is_erased(tmp_path: Path) -> None:
    config = named_estate(tmp_path, settle="0s")
    future = named(tmp_path, "future", age_days=40)
    year_2100 = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
    os.utime(future, (year_2100, year_2100))
    other = named(tmp_path, "other", age_days=40)
    result = recd("--once", "--config", str(config))
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert f"not erasing {future} yet: modification time is in the future\n" in result.stderr
    assert future.exists() and not other.exists()
    assert erased(tmp_path) == [str(other)]
