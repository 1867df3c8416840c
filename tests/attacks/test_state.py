"""State readable by others (issue 13, point 14).

In a state directory that already existed with mode 0755, ``catalog.db`` and its WAL (caller
numbers in paths) were readable by every local user. Every state file is now created 0600
(catalogue) or 0640 (audit log, certificates) whatever the umask; a state directory others can
read or enter is set to 0750 with a log line when recd owns it and refused (exit 78) when it
does not; state files found with looser modes are tightened, with a log line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.config.load import load
from recd.daemon.main import main
from recd.daemon.runtime import open_runtime, scan_all
from tests.e2e.helpers import write_estate, write_recording
from tests.fakes import FakeClock

CATALOGUE = ("catalog.db", "catalog.db-wal", "catalog.db-shm")


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(state: Path) -> dict[str, int]:
    """Every file and directory under ``state`` (itself included) by relative name."""
    found = {".": mode(state)}
    for path in sorted(state.rglob("*")):
        found[str(path.relative_to(state))] = mode(path)
    return found


def once(config: Path) -> int:
    return main(["--once", "--config", str(config)])


@pytest.mark.usefixtures("umask_000")
def test_a_new_state_dir_under_umask_000_is_private(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    write_recording(tmp_path, "L1/due.wav", age_days=40)
    write_recording(tmp_path, "L1/kept.wav", age_days=1)
    assert once(config) == 0
    found = modes(tmp_path / "state")
    assert {name: found.get(name) for name in (".", "certificates", "audit.log")} == {
        ".": 0o750, "certificates": 0o750, "audit.log": 0o640,
    }  # fmt: skip
    assert all(found[name] == 0o600 for name in CATALOGUE if name in found)
    assert all(not m & 0o007 for m in found.values()), found


@pytest.mark.usefixtures("umask_000")
def test_the_catalogues_wal_and_shm_are_0600_while_recd_runs(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """SQLite creates them with the catalogue's mode, which recd creates 0600 before SQLite."""
    config = load(write_estate(tmp_path))
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    runtime = open_runtime(config, fake_clock)
    try:
        scan_all(runtime)
        found = modes(state)
        assert {name: found.get(name) for name in CATALOGUE} == dict.fromkeys(CATALOGUE, 0o600)
        assert (found["."], found["audit.log"]) == (0o750, 0o640)
    finally:
        runtime.close()


@pytest.mark.parametrize("loose", [0o755, 0o777, 0o705])
@pytest.mark.usefixtures("umask_000")
def test_an_existing_state_dir_others_can_read_is_fixed_with_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loose: int
) -> None:
    config = write_estate(tmp_path)
    write_recording(tmp_path, "L1/kept.wav", age_days=1)
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(loose)
    assert once(config) == 0
    fixed = loose & 0o750
    assert mode(state) == fixed
    assert (
        f"WARNING recd.daemon.statedir: state directory {state} was mode {loose:04o}, "
        f"open to every local user; set it to {fixed:04o}\n"
    ) in capsys.readouterr().err
    assert all(not m & 0o007 for m in modes(state).values())


@pytest.mark.usefixtures("umask_000")
def test_state_files_already_0644_are_tightened_with_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    write_recording(tmp_path, "L1/kept.wav", age_days=1)
    assert once(config) == 0  # a real catalogue, audit log and (kept by a crash) WAL and SHM
    state = tmp_path / "state"
    for name in CATALOGUE:
        (state / name).touch()
    (state / "certificates" / "REQ-1.json").write_text("{}")
    loose = [state / n for n in (*CATALOGUE, "audit.log", "certificates/REQ-1.json")]
    for path in loose:
        path.chmod(0o644)
    state.chmod(0o755)
    capsys.readouterr()
    assert once(config) == 0
    err = capsys.readouterr().err
    found = modes(state)
    allowed = {"audit.log": 0o640, "certificates/REQ-1.json": 0o640, "certificates": 0o750}
    assert {name: m for name, m in found.items() if m != allowed.get(name, 0o600)} == {".": 0o750}
    for path in loose:
        wanted = 0o640 if path.name in ("audit.log", "REQ-1.json") else 0o600
        assert (
            f"WARNING recd.daemon.statedir: state file {path} was mode 0644, readable by others; "
            f"tightened it to {wanted:04o}\n"
        ) in err


@pytest.mark.root
def test_a_loose_state_dir_recd_does_not_own_is_refused_with_exit_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    kept = write_recording(tmp_path, "L1/due.wav", age_days=40)
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    os.chown(state, 65534, 65534)
    assert once(config) == 78
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"recd: {state}: the state directory is mode 0755, so every local user can read recd's "
        f"catalogue, and it belongs to uid 65534, not to recd (uid {os.geteuid()}); run chmod "
        "o-rwx on it or set daemon.state_dir to a directory recd owns"
    )
    assert kept.exists() and mode(state) == 0o755
    assert not (state / "catalog.db").exists()


@pytest.mark.root
def test_a_private_state_dir_recd_does_not_own_is_used_as_it_is(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o770)
    state.chmod(0o770)
    os.chown(state, 65534, 65534)
    assert once(config) == 0
    assert mode(state) == 0o770
