"""`recd` as a subprocess: --once, check-config, exit codes and one-line errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recd import __version__
from tests.e2e.helpers import env, on_shared_catalogue, recctl, recd, write_estate, write_recording


def test_once_erases_due_recordings_and_audit_verifies(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    new = write_recording(tmp_path, "L1/new.wav", age_days=2)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "L1: 2 recordings, 1 due, 1 erased\n")
    assert not old.exists() and new.exists()
    check = recctl("audit", "verify", "--file", str(tmp_path / "state" / "audit.log"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{tmp_path / 'state' / 'audit.log'}: 3 entries, chain intact")


def test_check_config_reports_every_problem_and_exits_78(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text().replace('settle = "0s"', 'settle = "soon"\nsettel = 1'))
    result = recd("check-config", "--config", str(config))
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"recd: {config}: erase.") for line in lines)
    assert result.stdout == ""


def test_once_with_an_unreachable_shared_catalogue_exits_69_and_erases_nothing(
    tmp_path: Path,
) -> None:
    """Never SQLite instead (each host would erase on its own): 69, the timer tries again."""
    config = write_estate(tmp_path)
    gone = tmp_path / "no-server"
    on_shared_catalogue(config, f"postgresql:///recd?host={gone}")
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    result = recd("--once", "--config", str(config))
    assert (result.returncode, result.stdout) == (69, "")
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        f'recd: catalogue database "recd" on {gone}: cannot reach the database: '
    )
    assert old.exists()
    assert not (tmp_path / "state" / "catalog.db").exists(), "a SQLite catalogue was made"


def test_check_config_ok(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    result = recd("check-config", "--config", str(config))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"{config}: ok (1 source, 1 licence, mode enforce)\n"
        f"node: {socket.gethostname()}\n"
        f"catalogue: SQLite, {tmp_path / 'state' / 'catalog.db'}\n"
        "# the unit may write only what ReadWritePaths= lists: add the roots with\n"
        "# systemctl edit recd   (and recd-once, if the timer runs); then: systemctl restart recd\n"
        "[Service]\n"
        f"ReadWritePaths=-{tmp_path / 'recordings'}\n"
    )


def test_once_with_invalid_config_exits_78_and_touches_nothing(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    config.write_text(config.read_text() + "\n[bogus]\n")
    result = recd("--once", "--config", str(config))
    assert result.returncode == 78
    assert result.stderr == f"recd: {config}: bogus: unknown key\n"
    assert old.exists()
    assert not (tmp_path / "state").exists()


def test_version() -> None:
    result = recd("--version")
    assert (result.returncode, result.stdout) == (0, f"recd {__version__}\n")


def test_state_dir_that_cannot_be_created_is_one_line_exit_1(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "blocker").write_text("a file, not a directory")
    config.write_text(
        config.read_text().replace(f'"{tmp_path}/state"', f'"{tmp_path}/blocker/state"')
    )
    result = recd("--once", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr == (
        f"recd: {tmp_path}/blocker/state: cannot create the state directory: Not a directory\n"
    )


def test_under_journald_each_line_carries_its_syslog_priority(tmp_path: Path) -> None:
    """systemd names the journal stream in JOURNAL_STREAM (device:inode of stderr): then every
    line starts with its priority, so `journalctl -p warning` shows exactly the problems."""
    config = write_estate(tmp_path)
    write_recording(tmp_path, "L1/old.wav", age_days=31)
    linked = write_recording(tmp_path, "L1/linked.wav", age_days=31)
    os.link(linked, tmp_path / "elsewhere.wav")  # a refusal: a warning
    log = tmp_path / "journal"
    with log.open("wb") as stderr:
        st = os.fstat(stderr.fileno())
        result = subprocess.run(
            [sys.executable, "-m", "recd", "--once", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=stderr, check=False, timeout=120,
            env=env() | {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
        )  # fmt: skip
    assert result.returncode == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert lines and all(re.match(r"<[3467]>(INFO|WARNING|ERROR|DEBUG) recd", ln) for ln in lines)
    assert any(ln.startswith("<4>WARNING ") and "has 2 hard links" in ln for ln in lines), lines
    assert any(ln.startswith("<6>INFO ") and "erased" in ln for ln in lines), lines
    # The same variable inherited with stderr elsewhere (a pipe): plain timestamped lines.
    piped = subprocess.run(
        [sys.executable, "-m", "recd", "--once", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=120,
        env=env() | {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr and not piped.stderr.startswith("<")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", piped.stderr)


def test_once_leaves_a_source_of_other_nodes_alone(tmp_path: Path) -> None:
    """A source whose nodes leave this node out: said at start, not indexed, nothing in it
    erased, not even a recording an earlier run indexed as due (the sweep does not look at it:
    it would otherwise be kept as "not configured"); the source this node serves goes on."""
    config = write_estate(tmp_path)
    other = tmp_path / "other"
    elsewhere = (
        f'\n[[source]]\nname = "other"\ntype = "directory"\npath = "{other}"\n'
        "pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'\nnodes = [\"pbx-here\"]\n"
    )
    text = config.read_text().replace("[daemon]\n", '[daemon]\nnode = "pbx-here"\n')
    config.write_text(text.replace("[erase]", 'mode = "dry-run"\n\n[erase]') + elsewhere)
    theirs = _old_file(other / "L1" / "theirs.wav")
    first = recd("--once", "--config", str(config))  # served here: indexed, due, kept (dry-run)
    assert first.stdout == "L1: 1 recording, 1 due, 1 would be erased (dry-run)\n", first.stderr

    config.write_text(
        config.read_text()
        .replace('mode = "dry-run"\n', "")
        .replace('nodes = ["pbx-here"]', 'nodes = ["pbx-b", "pbx-c"]')
    )
    unseen = _old_file(other / "L1" / "unseen.wav")
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    result = recd("--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert (
        'source "other": nodes does not list this node ("pbx-here"), so recd leaves it alone '
        "(no scan, no watch, no erase); add the node to nodes, or set daemon.node"
    ) in result.stderr
    assert result.stdout == "L1: 2 recordings, 2 due, 1 erased\n"
    assert theirs.exists() and unseen.exists() and not old.exists()


def _old_file(path: Path) -> Path:
    """A 31-day-old recording (due under L1's 30 days) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(4096))
    stamp = (datetime.now(UTC) - timedelta(days=31)).timestamp()
    os.utime(path, (stamp, stamp))
    return path
