"""Issue 14 (4): `recctl backup DIR` cannot be turned into a write where its caller could not
write, nor into a write through a link planted in DIR.

recd runs privileged and recctl is run by members of the admin group: recd writes no backup
itself; it hands recctl read-only descriptors of its snapshot, and recctl writes the files with
its caller's rights, each one created anew (``O_EXCL | O_NOFOLLOW``) in the directory it opened.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recd.cli import client
from recd.cli import main as recctl
from tests import legal
from tests.adapters.loopfs import Mounts
from tests.attacks.helpers import Victim
from tests.e2e.helpers import audit_entries, running, write_estate
from tests.e2e.helpers import recctl as run_recctl
from tests.fakes import NotifyListener
from tests.legal import Account, Admins

Completed = subprocess.CompletedProcess[str]


def backups_written(base: Path) -> list[dict[str, Any]]:
    return [e for e in audit_entries(base) if e["action"] == "backup.written"]


@pytest.mark.parametrize("planted", ["catalog.db", "audit.log", "MANIFEST.json"])
def test_a_symlink_planted_in_dir_after_the_checks_is_not_followed(
    tmp_path: Path,
    listener: NotifyListener,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    planted: str,
) -> None:
    """The link appears after recctl found DIR empty and recd handed over the snapshot, just
    before recctl writes: the file is refused, the victim is untouched, what recctl wrote is
    taken back, nothing is audited."""
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    victim = Victim(tmp_path / "elsewhere" / "victim")
    target = tmp_path / "b"
    real_call = client.call

    def call_then_plant(*args: Any, **kwargs: Any) -> Any:
        reply = real_call(*args, **kwargs)
        if kwargs.get("fds"):
            (target / planted).symlink_to(victim.path)
        return reply

    monkeypatch.setattr(client, "call", call_then_plant)
    with running(config, tmp_path, listener) as sock:
        code = recctl.main(["--socket", str(sock), "backup", str(target)])
        err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"recctl: {target / planted}: appeared while the backup was written (not by recctl); "
        "nothing in it was followed or overwritten\n"
    )
    assert victim.untouched()
    assert os.listdir(target) == [planted], "recctl's own files were not taken back"
    assert backups_written(tmp_path) == []


def test_a_directory_every_user_may_write_is_refused(
    tmp_path: Path, listener: NotifyListener
) -> None:
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    target = tmp_path / "open"
    target.mkdir()
    target.chmod(0o777)
    with running(config, tmp_path, listener) as sock:
        done = recctl_run(sock, "backup", str(target))
    assert (done.returncode, done.stderr) == (
        1,
        f"recctl: {target}: every user may write in it (mode 0777) and could replace the "
        "backup's files; chmod o-w it or give another directory (nothing was written)\n",
    )
    assert os.listdir(target) == []


def recctl_run(sock: Path, *args: str) -> Completed:
    return run_recctl("--socket", str(sock), *args)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    with Mounts(tmp_path / "mounts") as m:
        yield m


@pytest.mark.root
def test_a_directory_on_another_mount_is_fine(
    tmp_path: Path, listener: NotifyListener, mounts: Mounts
) -> None:
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    mounted = tmp_path / "usb"
    mounted.mkdir()
    mounts.tmpfs(mounted, size="16m")
    target = mounted / "b"
    with running(config, tmp_path, listener) as sock:
        done = recctl_run(sock, "backup", str(target))
        assert done.returncode == 0, done.stderr
    assert target.stat().st_dev != (tmp_path / "state").stat().st_dev
    checked = recctl_run(tmp_path / "recd.sock", "backup", "verify", str(target))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.root
def test_an_admin_writes_only_where_they_may_and_an_outsider_not_at_all(
    tmp_path: Path,
    listener: NotifyListener,
    keys: Any,
    admins: Admins,
    shared: Path,
) -> None:
    """recd runs as root here: alice (admin group) gets a backup she owns in her directory,
    cannot have one written into a directory only root may write (77, nothing created), and
    eve (not in the group) gets 77 from the socket."""
    sock = shared / "recd.sock"
    config = legal.configure(tmp_path, keys, socket=sock, admin_group=admins.group)
    alice, eve = admins.alice, admins.eve
    home = shared / "alice"
    home.mkdir(mode=0o700)
    os.chown(home, alice.uid, alice.gid)
    eves = shared / "eve"
    eves.mkdir(mode=0o700)
    os.chown(eves, eve.uid, eve.gid)
    closed = shared / "root-only"
    closed.mkdir(mode=0o755)

    def as_(user: Account, *args: str) -> Completed:
        return legal.ctl(sock, *args, user=user, foreign=admins.foreign)

    with legal.running(config, tmp_path, listener):
        mine = as_(alice, "backup", str(home / "b"), "--json")
        assert mine.returncode == 0, mine.stderr
        denied = as_(alice, "backup", str(closed / "b"))
        outsider = as_(eve, "backup", str(eves / "b"))
    assert (denied.returncode, denied.stderr) == (
        77,
        f"recctl: {closed / 'b'}: cannot create it: Permission denied\n",
    )
    assert os.listdir(closed) == []
    assert outsider.returncode == 77, outsider.stderr
    assert "not in the admin group" in outsider.stderr or "permission denied" in outsider.stderr
    assert not (shared / "eve").exists() or os.listdir(shared / "eve") == []
    owners = {
        p.name: (p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in (home / "b").iterdir()
    }
    assert owners == {
        "catalog.db": (alice.uid, 0o600),
        "audit.log": (alice.uid, 0o640),
        "MANIFEST.json": (alice.uid, 0o640),
    }
    [written] = backups_written(tmp_path)
    assert (written["actor"], written["subject"]) == (alice.name, str(home / "b"))
    assert json.loads(mine.stdout)["audit_seq"] == written["seq"]
