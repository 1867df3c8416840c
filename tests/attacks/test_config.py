"""Config that silently changes policy (issue 13, point 12).

A retention of zero in any spelling made every recording due the moment it was indexed, and a
licences.d that was missing, a dangling link, a file or a loop dropped every licence without a
word, so licensed recordings fell to retention.default and were erased. Each is now refused:
check-config and the daemon's start exit 78, a reload is refused and the old policy kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.cli.client import call
from recd.config.load import load
from recd.daemon.loop import Daemon
from recd.daemon.main import main
from recd.daemon.signals import Event
from recd.errors import ConfigInvalid
from recd.protocol import Request
from tests.adapters.loopfs import Mounts
from tests.e2e.helpers import write_estate, write_licence, write_recording
from tests.fakes import FakeClock

ZEROS = ["0d", "0s", "0 months", "0mo", "0y", "000w", "P0D", "PT0S", "P0Y0M", "p0d", "0 seconds"]
FALLBACK = "(every licence's recordings would get retention.default)"


def zero_message(text: str) -> str:
    return (
        f'a retention of "{text}" erases every recording as soon as it is found; write a '
        'length such as "30d", or "never" to keep recordings'
    )


def problems(config: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as excinfo:
        load(config)
    return [str(p) for p in excinfo.value.problems]


@pytest.mark.parametrize("zero", ZEROS)
def test_a_zero_default_retention_is_refused(tmp_path: Path, zero: str) -> None:
    config = write_estate(tmp_path)
    config.write_text(config.read_text() + f'\n[retention]\ndefault = "{zero}"\n')
    assert problems(config) == [f"{config}: retention.default: {zero_message(zero)}"]


@pytest.mark.parametrize("zero", ZEROS)
def test_a_zero_licence_retention_is_refused(tmp_path: Path, zero: str) -> None:
    config = write_estate(tmp_path)
    licence = write_licence(tmp_path, zero)
    assert problems(config) == [f"{licence}: retention: {zero_message(zero)}"]


@pytest.mark.parametrize("kept", ["never", "1s", "P1D", "1 months"])
def test_never_and_any_length_stay_valid(tmp_path: Path, kept: str) -> None:
    config = write_estate(tmp_path)
    write_licence(tmp_path, kept)
    config.write_text(config.read_text() + f'\n[retention]\ndefault = "{kept}"\n')
    loaded = load(config)
    assert loaded.licences["L1"].retention.text == loaded.retention.default.text == kept


def break_licences(base: Path, how: str) -> None:
    """Take licences.d away from under recd.toml in one of the ways that dropped every licence."""
    licences = base / "licences.d"
    aside = base / "licences.aside"
    licences.rename(aside)
    if how == "dangling symlink":
        licences.symlink_to(base / "gone")
    elif how == "file":
        licences.write_text('id = "L1"\n')
    elif how == "symlink loop":
        licences.symlink_to(licences)
    elif how == "symlink to a file":
        (base / "a-file").write_text("")
        licences.symlink_to(base / "a-file")


BROKEN = {
    "missing": f"the licences directory does not exist {FALLBACK}; create it, empty if there "
    "are none",
    "dangling symlink": f"the licences directory is a dangling symlink {FALLBACK}; create it, "
    "empty if there are none",
    "file": f"the licences directory is not a directory {FALLBACK}",
    "symlink to a file": f"the licences directory is not a directory {FALLBACK}",
    "symlink loop": "cannot read the licences directory: Too many levels of symbolic links "
    f"{FALLBACK}",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_licences_dir_that_gives_no_licences_is_refused(tmp_path: Path, how: str) -> None:
    config = write_estate(tmp_path)
    break_licences(tmp_path, how)
    assert problems(config) == [f"{tmp_path}/licences.d: {BROKEN[how]}"]


def test_an_empty_or_symlinked_licences_dir_is_valid(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "licences.d" / "l1.toml").unlink()
    assert load(config).licences == {}
    (tmp_path / "licences.d").rename(tmp_path / "elsewhere")
    (tmp_path / "licences.d").symlink_to(tmp_path / "elsewhere")
    write_licence(tmp_path, "30d")
    assert set(load(config).licences) == {"L1"}


@pytest.mark.parametrize("how", ["missing", "dangling symlink"])
def test_check_config_and_the_start_exit_78_and_erase_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    config = write_estate(tmp_path)
    licensed = write_recording(tmp_path, "L1/licensed.wav", age_days=2)
    config.write_text(config.read_text() + '\n[retention]\ndefault = "1d"\n')
    break_licences(tmp_path, how)
    line = f"recd: {tmp_path}/licences.d: {BROKEN[how]}\n"
    assert main(["check-config", "--config", str(config)]) == 78
    assert capsys.readouterr().err == line
    assert main(["--once", "--config", str(config)]) == 78
    assert capsys.readouterr().err == line
    assert licensed.exists()


@pytest.mark.parametrize("how", ["missing", "dangling symlink", "zero"])
def test_a_reload_is_refused_and_the_licences_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """The step after the refused reload sweeps with the old policy: L1's recording, 2 days
    into its 30, stays (with the new config it had fallen to the default 1d and been erased)."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    licensed = write_recording(tmp_path, "L1/licensed.wav", age_days=2)
    config.write_text(config.read_text() + '\n[retention]\ndefault = "1d"\n')
    before = load(config)
    daemon = Daemon(before, FakeClock(datetime.now(UTC)), Notifier(None))
    daemon.start()
    try:
        if how == "zero":
            licence = write_licence(tmp_path, "0d")
            refused = f"{licence}: retention: {zero_message('0d')}"
        else:
            break_licences(tmp_path, how)
            refused = f"{tmp_path}/licences.d: {BROKEN[how]}"
        daemon.step(Event.RELOAD)
        assert f"reload refused: {refused}\n" in caplog.text
        assert "keeping the configuration loaded before" in caplog.text
        assert daemon.config is before
        reply = call(before.daemon.socket, Request("status"), timeout=10).unwrap()
        assert reply["recordings"] == 1
        assert licensed.exists()
    finally:
        daemon.stop()


def test_check_config_names_every_zero_at_once(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    licence = write_licence(tmp_path, "PT0S")
    config.write_text(config.read_text() + '\n[retention]\ndefault = "0 months"\n')
    assert problems(config) == [
        f"{config}: retention.default: {zero_message('0 months')}",
        f"{licence}: retention: {zero_message('PT0S')}",
    ]


# --- check-config: a source that is the state directory under another name (point 9) -----------

OWN_STATE = "recd refuses to erase its own state"


def with_source(config: Path, root: Path) -> None:
    config.write_text(
        config.read_text().replace(f'path = "{config.parent}/recordings"', f'path = "{root}"')
    )


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@pytest.mark.root
@pytest.mark.parametrize("bound", ["parent of the state dir", "state dir", "inside it"])
def test_a_bind_mounted_alias_of_the_state_dir_is_refused(
    tmp_path: Path, mounts: Mounts, capsys: pytest.CaptureFixture[str], bound: str
) -> None:
    config = write_estate(tmp_path)  # state_dir = TMP/state
    state = tmp_path / "state"
    (state / "certificates").mkdir(parents=True)
    alias = tmp_path / "alias"
    alias.mkdir()
    if bound == "parent of the state dir":
        mounts.bind(tmp_path, alias)
        root, seen = alias, tmp_path
        reason = f'contains daemon.state_dir ("{state}"); {OWN_STATE}'
    elif bound == "state dir":
        mounts.bind(state, alias)
        root, seen = alias, state
        reason = f"is daemon.state_dir; {OWN_STATE}"
    else:
        mounts.bind(state, alias)
        root, seen = alias / "certificates", state / "certificates"
        reason = f'is inside daemon.state_dir ("{state}"); {OWN_STATE}'
    with_source(config, root)
    line = (
        f'{config}: source[0].path: "{root}" is "{seen}" by device and inode (a bind mount or '
        f"another mount of it), which {reason}"
    )
    assert problems(config) == [line]
    assert main(["check-config", "--config", str(config)]) == 78
    assert capsys.readouterr().err == f"recd: {line}\n"


@pytest.mark.parametrize("linked", ["source root", "state dir"])
def test_a_symlinked_alias_of_the_state_dir_is_refused(tmp_path: Path, linked: str) -> None:
    config = write_estate(tmp_path)
    real = tmp_path / "real"
    (real / "state").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    if linked == "source root":  # the root leads, through a link, to the state dir's parent
        config.write_text(config.read_text().replace(f"{tmp_path}/state", f"{real}/state"))
        with_source(config, link)
        expected = (
            f'"{link}" resolves to "{real}", which contains daemon.state_dir ("{real}/state"); '
            f"{OWN_STATE}"
        )
    else:  # state_dir is written through a link; the root is the real directory holding it
        config.write_text(config.read_text().replace(f"{tmp_path}/state", f"{link}/state"))
        with_source(config, real)
        expected = f'"{real}" contains daemon.state_dir ("{real}/state"); {OWN_STATE}'
    assert problems(config) == [f"{config}: source[0].path: {expected}"]


def test_a_source_beside_the_state_dir_is_still_valid(tmp_path: Path) -> None:
    config = write_estate(tmp_path)
    (tmp_path / "state").mkdir()
    assert [s.name for s in load(config).sources] == ["pbx"]
