"""`recd`'s entry point in-process: sub-commands, exit codes, one-line errors, logging setup."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import sys
from pathlib import Path

import pytest

from recd import log
from recd.adapters.sqlite.catalogue import SCHEMA_VERSION
from recd.daemon.main import main
from tests.e2e.helpers import on_shared_catalogue, write_estate, write_recording


def test_check_config_ok_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    assert main(["check-config", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines()[0], err) == (f"{config}: ok (1 source, 1 licence, mode enforce)", "")


def test_check_config_prints_the_drop_in_the_roots_need_after_the_ok_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    assert main(["check-config", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(": ok (1 source, 1 licence, mode enforce)")
    assert lines[1:3] == [
        f"node: {socket.gethostname()}",
        f"catalogue: SQLite, {tmp_path / 'state' / 'catalog.db'}",
    ]
    assert lines[3:] == [
        "# the unit may write only what ReadWritePaths= lists: add the roots with",
        "# systemctl edit recd   (and recd-once, if the timer runs); then: systemctl restart recd",
        "[Service]",
        f"ReadWritePaths=-{tmp_path / 'recordings'}",
    ]
    assert main(["check-config", "--drop-in", "--config", str(config)]) == 0
    assert capsys.readouterr().out.splitlines() == lines[4:]


def test_check_config_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text() + '\n[retention]\ndefault = "never"\n')
    assert main(["check-config", "--config", str(config)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("warning: ")
    assert f"{config}: ok (1 source, 1 licence, mode enforce)" in out.splitlines()


def test_check_config_shows_a_shared_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    on_shared_catalogue(config, "postgresql://recd@db1.example.com:5433/recd?sslmode=verify-full")
    assert main(["check-config", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines()[:3], err) == (
        [
            f"{config}: ok (1 source, 1 licence, mode enforce)",
            "node: pbx-a",
            'catalogue: PostgreSQL, database "recd" on db1.example.com:5433 as user "recd"',
        ],
        "",
    )


def test_once_with_an_unreachable_shared_catalogue_exits_69_and_erases_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never SQLite instead (the hosts would each erase on their own), never a crash: 69,
    so the timer runs it again."""
    config = write_estate(tmp_path)
    gone = tmp_path / "no-server"
    on_shared_catalogue(config, f"postgresql:///recd?host={gone}")
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    assert main(["--once", "--config", str(config)]) == 69
    out, err = capsys.readouterr()
    assert out == ""
    last = err.splitlines()[-1]
    assert last.startswith(
        f'recd: catalogue database "recd" on {gone}: cannot reach the database: '
    )
    assert old.exists()
    assert not (tmp_path / "state" / "catalog.db").exists(), "a SQLite catalogue was made"


def test_global_config_option_works_for_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    assert main(["--config", str(config), "check-config"]) == 0
    assert "mode enforce)\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["check-config"], ["--once"], []], ids=["check-config", "once", "daemon"]
)
def test_invalid_config_lists_every_problem_and_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """The daemon too, before it opens anything: the unit has no ExecStartPre check-config
    (systemd's RestartPreventExitStatus=78 covers only the main process's exit)."""
    config = write_estate(tmp_path)
    config.write_text(config.read_text().replace('settle = "0s"', 'settle = 5\nsettel = "1m"'))
    assert main([*argv, "--config", str(config)]) == 78
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"recd: {config}: erase.set")
    assert not (tmp_path / "state").exists(), "the state was opened"


def test_once_runs_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=40)
    assert main(["--once", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "L1: 1 recording, 1 due, 1 erased\n"
    assert not old.exists()


def test_once_with_a_broken_state_dir_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "state").mkdir(mode=0o750)  # private, as recd wants it: no line tightening it
    # A catalogue of a newer recd: not corrupt (garbage would be moved aside and rebuilt).
    db = sqlite3.connect(tmp_path / "state" / "catalog.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    (tmp_path / "state" / "catalog.db").chmod(0o600)
    assert main(["--once", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"recd: {tmp_path}/state/catalog.db: catalogue schema {SCHEMA_VERSION + 1} is newer "
        f"than this recd understands ({SCHEMA_VERSION}); upgrade recd\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--acknowledge-log", "checked"],
         "--acknowledge-log goes with --once (the daemon: `recctl audit acknowledge`)"),
        (["--once", "--acknowledge-log", " "],
         "--acknowledge-log: give the reason (what you checked)"),
    ],
)  # fmt: skip
def test_acknowledge_log_goes_with_once_and_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    config = write_estate(tmp_path)
    assert main([*argv, "--config", str(config)]) == 2
    assert capsys.readouterr().err == f"recd: {message}\n"
    assert not (tmp_path / "state").exists(), "the state was opened"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize(("journald", "timestamped"), [(True, False), (False, True)])
def test_logging_has_timestamps_only_outside_journald(journald: bool, timestamped: bool) -> None:
    fmt = log.logging_config(journald=journald)["formatters"]["plain"]["format"]
    assert fmt.startswith("%(asctime)s") is timestamped
    log.configure(journald=journald, level="DEBUG")
    assert logging.getLogger("recd").level == logging.DEBUG
    log.configure(journald=journald)


def test_recd_log_level_is_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECD_LOG", "chatty")
    assert main(["check-config", "--config", str(write_estate(tmp_path))]) == 2
    assert capsys.readouterr().err == (
        'recd: RECD_LOG: unknown level "chatty" (use DEBUG, INFO, WARNING or ERROR)\n'
    )
    monkeypatch.setenv("RECD_LOG", "debug")
    assert main(["check-config", "--config", str(write_estate(tmp_path))]) == 0
    assert logging.getLogger("recd").level == logging.DEBUG


def test_log_timestamps_are_utc() -> None:
    formatter = log.UTCFormatter("%(asctime)s", "%Y-%m-%dT%H:%M:%SZ")
    record = logging.makeLogRecord({"created": 0.0})
    assert formatter.format(record) == "1970-01-01T00:00:00Z"


def test_log_timestamps_are_to_the_second_like_every_time_shown() -> None:
    formatter = log.UTCFormatter("%(asctime)s %(message)s")
    record = logging.makeLogRecord({"created": 1.999999, "msg": "x"})
    assert formatter.format(record) == "1970-01-01T00:00:01Z x"


def test_release_breaker_without_a_tripped_breaker_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_estate(tmp_path)
    assert main(["release-breaker", "L1", "--config", str(config)]) == 3
    assert capsys.readouterr().err == "recd: no tripped mass-deletion breaker for licence L1\n"


def test_a_log_line_cannot_be_forged_by_a_name() -> None:
    formatter = log.UTCFormatter("%(levelname)s %(name)s: %(message)s")
    name = "a\nERROR recd.daemon.loop: forged\x1b[31m\u202e\udcff.wav"
    record = logging.makeLogRecord(
        {"msg": "erased %s (%s)", "args": (name, "overwrite"), "levelname": "INFO", "name": "x"}
    )
    assert formatter.format(record) == (
        "INFO x: erased a\\nERROR recd.daemon.loop: forged\\x1b[31m\\u202e\\xff.wav (overwrite)"
    )


def test_a_traceback_keeps_its_lines_but_escapes_a_name_in_them() -> None:
    formatter = log.UTCFormatter("%(message)s")
    try:
        raise ValueError("bad name a\nforged\x1b[0m")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    lines = formatter.format(record).split("\n")
    assert lines[0] == "failed"
    assert lines[1] == "  | Traceback (most recent call last):"
    assert lines[-2:] == ["  | ValueError: bad name a", "  | forged\\x1b[0m"]
    assert all(line.startswith("  | ") for line in lines[1:])


def test_stderr_is_the_journal_only_when_journal_stream_names_it(tmp_path: Path) -> None:
    with (tmp_path / "journal").open("wb") as journal, (tmp_path / "other").open("wb") as other:
        st = os.fstat(journal.fileno())
        named = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert log.stderr_is_journal(named, journal.fileno())
        # Inherited by a process whose stderr goes elsewhere (a shell in the unit, a pipe).
        assert not log.stderr_is_journal(named, other.fileno())
        for value in ("", "8:", ":12", "8:12:1", "x:y", " 8:12"):
            assert not log.stderr_is_journal({"JOURNAL_STREAM": value}, journal.fileno())
        assert not log.stderr_is_journal({}, journal.fileno())
    assert not log.stderr_is_journal(named, 987654)  # not an open descriptor


@pytest.mark.parametrize(
    ("level", "prefix"),
    [(logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"),
     (logging.ERROR, "<3>"), (logging.CRITICAL, "<2>"), (25, "<4>")],
)  # fmt: skip
def test_under_journald_every_line_of_a_record_carries_its_priority(
    level: int, prefix: str
) -> None:
    formatter = log.UTCFormatter("%(levelname)s %(name)s: %(message)s", journald=True)
    try:
        raise ValueError("x")
    except ValueError:
        record = logging.makeLogRecord(
            {"msg": "m", "levelno": level, "levelname": logging.getLevelName(level),
             "name": "recd", "exc_info": sys.exc_info()}
        )  # fmt: skip
    lines = formatter.format(record).split("\n")
    assert len(lines) > 2
    assert all(line.startswith(prefix) for line in lines), lines
    assert lines[0] == f"{prefix}{logging.getLevelName(level)} recd: m"
    assert lines[1] == f"{prefix}  | Traceback (most recent call last):"


def test_outside_journald_lines_carry_no_priority() -> None:
    formatter = log.UTCFormatter("%(levelname)s %(message)s")
    record = logging.makeLogRecord({"msg": "m", "levelno": 40, "levelname": "ERROR"})
    assert formatter.format(record) == "ERROR m"
