"""Attack: a source root that is not a recording tree.

Whoever writes recd's configuration (a mistaken admin, a config-management template with an empty
variable, a symlink someone else controls) points a source at ``/``, a system directory, a
pseudo-filesystem, recd's own state directory or a directory that holds it, spelled plainly or
disguised (``//etc``, ``/./etc``, ``/usr/../proc``, a trailing slash, a symlink that resolves
there, a symlinked state directory).

What must hold: ``recd check-config`` refuses each one with exit 78 and one line per problem that
names the config file, the key (``source[0].path``) and why; ``recd --once`` and the daemon refuse
the same config with 78 before touching anything (no state directory is made, no file erased).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recd.daemon.main import main
from tests.e2e.helpers import env, recd, write_estate, write_recording

REFUSE = "recd refuses to erase there"
OWN = "recd refuses to erase its own state"


def with_root(config: Path, base: Path, root: str) -> None:
    text = config.read_text()
    old = f'path = "{base}/recordings"'
    assert old in text
    config.write_text(text.replace(old, f'path = "{root}"'))


@pytest.mark.parametrize(
    ("root", "why"),
    [
        ("/", f'"/" is the root directory; {REFUSE}'),
        ("//", f'"//" resolves to "/", which is the root directory; {REFUSE}'),
        ("/etc", f'"/etc" is the system directory /etc; {REFUSE}'),
        ("/etc/", f'"/etc" is the system directory /etc; {REFUSE}'),
        ("/./etc", f'"/etc" is the system directory /etc; {REFUSE}'),
        ("//etc", f'"//etc" resolves to "/etc", which is the system directory /etc; {REFUSE}'),
        ("/usr/share", f'"/usr/share" is inside the system directory /usr; {REFUSE}'),
        ("/usr/../proc", f'"/usr/../proc" is the system directory /proc; {REFUSE}'),
        ("/proc", f'"/proc" is the system directory /proc; {REFUSE}'),
        ("/proc/self/cwd", f'"/proc/self/cwd" is inside the system directory /proc; {REFUSE}'),
        ("/sys", f'"/sys" is the system directory /sys; {REFUSE}'),
        ("/dev/shm", f'"/dev/shm" is inside the system directory /dev; {REFUSE}'),
        ("/var", '"/var" is the whole of /var; name the directory that holds the recordings'),
        ("/tmp", '"/tmp" is the whole of /tmp; name the directory that holds the recordings'),
        (
            "//var",
            '"//var" resolves to "/var", which is the whole of /var; '
            "name the directory that holds the recordings",
        ),
        ("BASE/state", f'"BASE/state" is daemon.state_dir; {OWN}'),
        ("BASE/state/", f'"BASE/state" is daemon.state_dir; {OWN}'),
        ("BASE/state/rec", f'"BASE/state/rec" is inside daemon.state_dir ("BASE/state"); {OWN}'),
        ("BASE", f'"BASE" contains daemon.state_dir ("BASE/state"); {OWN}'),
        (
            "BASE/recordings/..",
            f'"BASE/recordings/.." contains daemon.state_dir ("BASE/state"); {OWN}',
        ),
        (
            "BASE/to-etc",
            f'"BASE/to-etc" resolves to "/etc", which is the system directory /etc; {REFUSE}',
        ),
        (
            "BASE/to-state",
            f'"BASE/to-state" resolves to "BASE/state", which is daemon.state_dir; {OWN}',
        ),
        (
            "BASE/to-root",
            f'"BASE/to-root" resolves to "/", which is the root directory; {REFUSE}',
        ),
    ],
)
def test_forbidden_root_is_refused_by_check_config_with_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root: str, why: str
) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "to-etc").symlink_to("/etc")
    (tmp_path / "to-root").symlink_to("/")
    (tmp_path / "to-state").symlink_to(tmp_path / "state")
    with_root(config, tmp_path, root.replace("BASE", str(tmp_path)))
    code = main(["check-config", "--config", str(config)])  # in-process: 25 configs, quickly
    out, err = capsys.readouterr()
    assert (code, out) == (78, "")
    assert err == f"recd: {config}: source[0].path: {why.replace('BASE', str(tmp_path))}\n"


def test_source_inside_a_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    """``daemon.state_dir`` is a symlink; a source written by its real path is still inside it."""
    config = write_estate(tmp_path)
    (tmp_path / "real-state").mkdir()
    (tmp_path / "state-link").symlink_to(tmp_path / "real-state")
    config.write_text(config.read_text().replace(f'"{tmp_path}/state"', f'"{tmp_path}/state-link"'))
    with_root(config, tmp_path, f"{tmp_path}/real-state/rec")
    result = recd("check-config", "--config", str(config))
    assert result.returncode == 78
    assert result.stderr == (
        f'recd: {config}: source[0].path: "{tmp_path}/real-state/rec" is inside daemon.state_dir '
        f'("{tmp_path}/real-state"); {OWN}\n'
    )


def test_once_and_the_daemon_refuse_a_forbidden_root_before_touching_anything(
    tmp_path: Path,
) -> None:
    config = write_estate(tmp_path)
    old = write_recording(tmp_path, "L1/old.wav", age_days=31)
    with_root(config, tmp_path, str(tmp_path))  # holds the state dir and the recordings
    line = (
        f'recd: {config}: source[0].path: "{tmp_path}" contains daemon.state_dir '
        f'("{tmp_path}/state"); {OWN}\n'
    )
    once = recd("--once", "--config", str(config))
    assert (once.returncode, once.stderr) == (78, line)
    daemon = subprocess.run(
        [sys.executable, "-m", "recd", "--config", str(config)],
        capture_output=True, text=True, env=env(), check=False, timeout=60,
    )  # fmt: skip
    assert (daemon.returncode, daemon.stderr) == (78, line)
    assert old.exists()
    assert not (tmp_path / "state").exists()
    assert sorted(os.listdir(tmp_path)) == ["licences.d", "recd.toml", "recordings"]
