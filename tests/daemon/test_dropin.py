"""The drop-in that lets the shipped unit write the recording roots: as systemd reads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recd.config.load import load
from recd.daemon.dropin import drop_in, fix_for, service_lines, unit_path
from tests.e2e.helpers import write_estate

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "recd.service"


def test_a_plain_path_is_written_as_it_is_and_may_be_missing() -> None:
    assert unit_path("/var/spool/asterisk/monitor") == "-/var/spool/asterisk/monitor"


def test_a_path_with_a_space_quote_backslash_or_percent_is_quoted_and_escaped() -> None:
    assert unit_path("/srv/Call Recordings") == '"-/srv/Call Recordings"'
    assert unit_path('/srv/a"b\\c') == '"-/srv/a\\"b\\\\c"'
    assert unit_path("/srv/100%") == "-/srv/100%%"
    assert unit_path("/srv/a\tb") == '"-/srv/a\\x09b"'


def test_roots_below_a_hidden_home_also_need_protect_home_read_only() -> None:
    assert service_lines(["/var/rec", "/var/rec"]) == ["ReadWritePaths=-/var/rec"]
    assert service_lines(["/var/rec", "/home/pbx/rec"]) == [
        "ProtectHome=read-only",
        "ReadWritePaths=-/var/rec -/home/pbx/rec",
    ]
    assert service_lines(["/homes/rec"]) == ["ReadWritePaths=-/homes/rec"]
    assert fix_for("/root/rec") == "[Service]; ProtectHome=read-only; ReadWritePaths=-/root/rec"


def test_only_directory_sources_and_none_without_them(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    assert drop_in(load(config))[1:] == ["[Service]", f"ReadWritePaths=-{tmp_path}/recordings"]
    text = config.read_text().replace('type = "directory"', 'type = "s3"\nbucket = "recordings"')
    config.write_text(text.replace(f'path = "{tmp_path}/recordings"\n', ""))
    assert drop_in(load(config)) == []


@pytest.mark.tools("systemd-analyze")
def test_systemd_reads_each_quoted_path_as_one_absolute_path(tmp_path: Path) -> None:
    """`systemd-analyze verify` warns of a word that is not an absolute path (an unquoted
    space splits one): the drop-in added to the shipped unit gets no complaint."""
    roots = ["/srv/Call Recordings", '/srv/a"b', "/srv/100%", "/home/pbx/rec"]
    unit = tmp_path / "recd.service"
    text = UNIT.read_text().replace("/usr/bin/recd", "/bin/true")
    unit.write_text(text + "\n[Service]\n" + "\n".join(service_lines(roots)) + "\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    unit.write_text(text + "\n[Service]\nReadWritePaths=-/srv/Call Recordings\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Recordings" in result.stderr  # the check can fail: the unquoted one is refused
