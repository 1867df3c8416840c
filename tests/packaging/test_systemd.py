"""recd installed from its .deb and run by a real systemd 252 (PID 1 in a container).

A cached Debian 12 minbase rootfs (``tests/packaging/container.py``) is booted with a volatile
overlay (pristine every boot) and no network, the .deb bound in. One container serves the
scenarios below in any order (each starts from recd active with a good configuration); the
upgrade and purge scenarios boot their own.

Scenarios:
- ``dpkg -i`` on the pristine rootfs: user ``recd`` and group ``recd-admin`` exist, the unit
  is enabled and active with no source configured.
- Journal priorities: ``journalctl -u recd -p warning`` shows the warnings, not the info lines.
- A directory source as the docs say (the recordings owned by a user ``pbx``, a default ACL
  for ``recd``, a ``ReadWritePaths=`` drop-in, a restart): a recording due in a few seconds is
  erased, not before its deadline, by the main process running as the unit's ``User=``.
- The writer check (CAP_LEASE): a recording held open for writing by a ``pbx`` process is not
  erased while it is open, and is once it is closed.
- ``systemctl reload`` with a good configuration applies it; with a broken one it is refused,
  the old configuration stays in force and the unit stays active.
- Watchdog: a main process stopped (SIGSTOP) under a short ``WatchdogSec=`` is killed and
  restarted by systemd.
- SIGKILL: systemd restarts recd; the audit log and catalogue are kept and consistent.
- A broken configuration at start: exit 78, the unit failed and not restarted.
- ``systemctl start recd-once.service`` while recd runs: recd is stopped first, recd-once runs
  and succeeds (no "in use by another recd process").
- ``recctl status``: 0 for a member of ``recd-admin``, 77 for another user.
- ``systemctl stop``: a clean exit, no warning or error lines.
- Upgrade to a newer build (a second `make deb` with a higher Version): state and
  configuration kept, the audit log continues and verifies.
- ``dpkg --purge`` keeps ``/var/lib/recd``; with ``RECD_PURGE_STATE=yes`` it removes it.

Test-only drop-ins: ``RestartSec=1s`` throughout (the shipped 10 s only slows the restart
scenarios down); ``WatchdogSec=2s`` in the watchdog scenario; ``ExecStop=/bin/sleep 3`` in the
recd-once one (recd slow to stop: a start of recd-once not ordered after the stop would fail).
The upgrade's newer build is a second real build with ``Version: <version>+e2e1`` (with
RECD_TEST_DEB, the given .deb repacked with that Version).
Root only; needs debootstrap, systemd-container (systemd-nspawn), util-linux and dpkg.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from recd.core.audit import verify
from tests import tools
from tests.packaging.container import HOST_TOOLS, Container, base_rootfs, deb_version, repack
from tests.packaging.helpers import PREBUILT, build_deb

pytestmark = pytest.mark.root

DEB = "/tmp/recd.deb"  # where the .deb is bound in the container
NEWER = "/tmp/recd-newer.deb"
STATE = "/var/lib/recd"
ROOT = "/srv/pbx/recordings"  # the PBX's recordings: the source's root
DROPINS = "/etc/systemd/system/recd.service.d"
DAY = 86_400
RETENTION_DAYS = 30

SOURCE = f"""
[[source]]
name = "pbx"
type = "directory"
path = "{ROOT}"
pattern = '^(?P<licence>[A-Z0-9-]+)/[^/]+\\.wav$'
"""
LICENCE = 'id = "L1"\nname = "One"\nretention = "{retention}"\n'
BROKEN = '\n[erase]\nmethod = "overwrite"\n'  # a second [erase] table: invalid TOML
# The PBX's user and directory with the docs' ACL recipe (install.md, 4.2); alice may run
# recctl, bob may not.
SETUP = f"""
useradd --system --user-group --home-dir /srv/pbx --no-create-home --shell /usr/sbin/nologin pbx
useradd --create-home --groups recd-admin alice
useradd --create-home bob
chown pbx:pbx /srv/pbx
chmod 0750 /srv/pbx
install -d -o pbx -g pbx -m 0750 {ROOT}
setfacl -m u:recd:x /srv/pbx
setfacl -R -m u:recd:rwX {ROOT}
setfacl -R -d -m u:recd:rwX {ROOT}
"""
# The docs' drop-in for a directory source, and the test's own (faster restarts).
READWRITE = f"[Service]\nReadWritePaths={ROOT}\n"
FAST = "[Service]\nRestartSec=1s\n"


@pytest.fixture(scope="module")
def rootfs() -> Path:
    tools.need(*HOST_TOOLS)
    return base_rootfs()


@contextlib.contextmanager
def booted(rootfs: Path, deb: Path, tmp: Path) -> Iterator[Container]:
    """A container with ``deb`` installed and the PBX's directory on the host's file system
    (not the volatile overlay, whose files and directories report different devices, which
    recd takes for a mount below its root)."""
    (tmp / "pbx").mkdir()
    binds = (f"--bind-ro={deb}:{DEB}", f"--bind={tmp / 'pbx'}:/srv/pbx")
    with Container.booted(rootfs, tmp / "state", *binds) as box:
        if box.install(DEB).returncode == 0:
            box.sh(SETUP)
        yield box


@pytest.fixture(scope="module")
def box(rootfs: Path, built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One container for most scenarios (the first checks the install)."""
    with booted(rootfs, built_deb, tmp_path_factory.mktemp("box")) as container:
        yield container


@pytest.fixture
def fresh(rootfs: Path, built_deb: Path, tmp_path: Path) -> Iterator[Container]:
    """A container of the test's own, the .deb installed, recd configured and active."""
    with booted(rootfs, built_deb, tmp_path) as container:
        yield configured(container)


@pytest.fixture(scope="module")
def newer_deb(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A newer build, for an upgrade: ``make deb DEB_VERSION=<version>+e2e1`` from this tree
    (a second real build, about 40 s); with RECD_TEST_DEB set (no tree to build it from), the
    given package repacked with that Version."""
    out = tmp_path_factory.mktemp("newer")
    version = f"{deb_version(built_deb)}+e2e1"
    if PREBUILT is not None:
        return repack(built_deb, version, out / "recd_newer.deb")
    return build_deb(out, version=version)


def good_config(box: Container) -> dict[str, str]:
    """The shipped recd.toml (as installed) plus the pbx source, licence L1 and the drop-ins."""
    shipped = box.path("/root/recd.toml.shipped")
    if not shipped.exists():
        shipped.write_text(box.path("/etc/recd/recd.toml").read_text().split(SOURCE)[0])
    return {
        "/etc/recd/recd.toml": shipped.read_text() + SOURCE,
        "/etc/recd/licences.d/l1.toml": LICENCE.format(retention=f"{RETENTION_DAYS}d"),
        f"{DROPINS}/50-recordings.conf": READWRITE,
        f"{DROPINS}/90-test-fast.conf": FAST,
    }


def configured(box: Container) -> Container:
    """``box`` with recd active on the good configuration (restarted if anything changed)."""
    assert box.installed is not None and box.installed.returncode == 0, box.installed
    changed = False
    wanted = good_config(box)
    for inside, text in wanted.items():
        path = box.path(inside)
        if not path.exists() or path.read_text() != text:
            box.write(inside, text)
            changed = True
    for extra in box.path(DROPINS).iterdir():
        if f"{DROPINS}/{extra.name}" not in wanted:
            extra.unlink()
            changed = True
    if changed:
        box.run("systemctl", "daemon-reload")
    box.run("systemctl", "reset-failed", "recd", "recd-once", check=False)
    if changed or box.prop("recd", "ActiveState") != "active":
        box.run("systemctl", "restart", "recd")
    assert box.prop("recd", "ActiveState") == "active"
    return box


@pytest.fixture
def healthy(box: Container) -> Container:
    """The module's container, recd active on the good configuration."""
    return configured(box)


# --- helpers -------------------------------------------------------------------------------------


def record(box: Container, relpath: str, due_in: float, days: int = RETENTION_DAYS) -> float:
    """A recording written by pbx whose ``days`` deadline is ``due_in`` seconds from now (its
    start is its mtime, whole seconds); returns the deadline (Unix time)."""
    deadline = int(time.time() + due_in) + 1
    path = f"{ROOT}/{relpath}"
    box.run("runuser", "-u", "pbx", "--", "sh", "-ec",
            f'mkdir -p "$(dirname {path})"; head -c 8192 /dev/urandom >{path}; '
            f"touch -m -d @{deadline - days * DAY} {path}")  # fmt: skip
    return float(deadline)


def audit(box: Container) -> list[dict[str, Any]]:
    raw = box.path(f"{STATE}/audit.log").read_bytes()
    return [json.loads(line) for line in raw.splitlines(keepends=True) if line.endswith(b"\n")]


def erased(box: Container, relpath: str) -> dict[str, Any] | None:
    """The ``erase.done`` entry of ``relpath`` once the file is gone; None before."""
    if box.path(f"{ROOT}/{relpath}").exists():
        return None
    for entry in audit(box):
        if entry["action"] == "erase.done" and entry["details"]["location"].endswith(relpath):
            return entry
    return None


def wait_erased(box: Container, relpath: str, timeout: float = 60) -> dict[str, Any]:
    box.wait(f"{relpath} erased", lambda: erased(box, relpath), timeout=timeout)
    done = erased(box, relpath)
    assert done is not None
    return done


def catalogue(box: Container, query: str) -> list[list[Any]]:
    """Rows of ``query`` on recd's catalogue, read-only, by the container's python3 (SQLite
    resolves /proc/PID/root to the host's /)."""
    code = (
        "import json, sqlite3, sys; db = sqlite3.connect("
        f"'file:{STATE}/catalog.db?mode=ro', uri=True); "
        "print(json.dumps(db.execute(sys.argv[1]).fetchall()))"
    )
    return list(json.loads(box.run("python3", "-c", code, query).stdout))


def main_pid(box: Container) -> int:
    return int(box.prop("recd", "MainPID"))


def restarted(box: Container, pid: int) -> bool:
    """recd active again with a main process other than ``pid``."""
    return box.prop("recd", "ActiveState") == "active" and main_pid(box) not in (0, pid)


def journal_shows(box: Container, text: str, after: str | None = None, **kw: str) -> None:
    """Wait until ``text`` is in the journal (``Container.journal``'s arguments): journald
    stores a line some time after the process wrote it, so a line written just before
    READY=1 (``systemctl reload`` returning) may not be readable yet."""
    box.wait(f"journal shows {text!r}", lambda: text in box.journal(after=after, **kw), timeout=30)


def unit_user(box: Container) -> str:
    """The user the unit runs as (root when it sets no ``User=``)."""
    return box.prop("recd", "User") or "root"


# --- the scenarios -------------------------------------------------------------------------------


def test_dpkg_install_creates_the_users_and_starts_the_enabled_unit(box: Container) -> None:
    assert box.installed is not None
    assert box.installed.returncode == 0, box.installed.stdout + box.installed.stderr
    assert box.run("getent", "passwd", "recd").stdout.startswith("recd:")
    assert box.run("getent", "group", "recd-admin").stdout.startswith("recd-admin:")
    assert box.run("systemctl", "is-enabled", "recd").stdout.strip() == "enabled"
    assert box.prop("recd", "ActiveState") == "active"
    journal_shows(box, "no [[source]] is configured")
    assert box.run("recd", "check-config").returncode == 0


def test_journal_keeps_the_priority_of_each_line(box: Container) -> None:
    def journalctl(priority: str) -> str:
        argv = ("journalctl", "--no-pager", "-o", "cat", "-u", "recd", "-p", priority)
        return box.run(*argv).stdout

    box.wait("recd's start in the journal", lambda: "no [[source]]" in journalctl("warning"))
    warnings = journalctl("warning")
    assert "no [[source]] is configured" in warnings
    assert " starting with /etc/recd/recd.toml" not in warnings
    assert " starting with /etc/recd/recd.toml" in journalctl("info")


def test_recording_due_is_erased_on_time_by_the_unit_user(healthy: Container) -> None:
    box = healthy
    user = box.run("ps", "-o", "user=", "-p", str(main_pid(box))).stdout.strip()
    assert user == unit_user(box)
    cursor = box.cursor()
    deadline = record(box, "L1/due.wav", due_in=3)
    done = wait_erased(box, "L1/due.wav")
    assert datetime.fromisoformat(done["time"]).timestamp() >= deadline, done
    assert box.journal("warning", after=cursor) == ""


def test_file_open_for_writing_by_the_pbx_is_not_erased(healthy: Container) -> None:
    box = healthy
    cursor = box.cursor()
    path = f"{ROOT}/L1/open.wav"
    started = int(time.time()) - RETENTION_DAYS * DAY - 60  # due a minute ago, once dated
    # The writer creates the file, writes, dates it back and keeps it open: recd cannot find
    # it due before it is open for writing.
    box.run("systemd-run", "--unit=pbx-writer", "--uid=pbx", "--gid=pbx", "sh", "-ec",
            f"mkdir -p {ROOT}/L1; exec 3>>{path}; head -c 8192 /dev/urandom >&3; "
            f"touch -m -d @{started} {path}; exec sleep infinity")  # fmt: skip
    skipped = f"not erasing {path} yet: open for writing by another process"
    box.wait("recd skips the open file", lambda: skipped in box.journal(after=cursor))
    assert box.path(path).exists()
    box.run("systemctl", "stop", "pbx-writer")
    box.run("recctl", "scan")  # or wait for the retry (30 s)
    wait_erased(box, "L1/open.wav")


def test_reload_applies_a_good_config(healthy: Container) -> None:
    box = healthy
    record(box, "L1/week-old.wav", due_in=-23 * DAY)  # due under 7d, not under 30d
    pid = main_pid(box)
    cursor = box.cursor()
    box.write("/etc/recd/licences.d/l1.toml", LICENCE.format(retention="7d"))
    box.run("systemctl", "reload", "recd")
    journal_shows(box, "configuration reloaded from /etc/recd/recd.toml", after=cursor)
    wait_erased(box, "L1/week-old.wav")
    assert main_pid(box) == pid  # reloaded, not restarted


def test_reload_with_a_broken_config_is_refused_and_the_old_one_stays(healthy: Container) -> None:
    box = healthy
    pid = main_pid(box)
    cursor = box.cursor()
    box.write("/etc/recd/recd.toml", good_config(box)["/etc/recd/recd.toml"] + BROKEN)
    box.run("systemctl", "reload", "recd")  # systemd waits for RELOADING=1 ... READY=1
    journal_shows(box, "reload refused: /etc/recd/recd.toml", after=cursor, priority="err")
    assert box.prop("recd", "ActiveState") == "active"
    assert main_pid(box) == pid
    record(box, "L1/after-refusal.wav", due_in=1)  # the old configuration still erases
    wait_erased(box, "L1/after-refusal.wav")


def test_watchdog_restarts_a_stopped_daemon(healthy: Container) -> None:
    box = healthy
    box.write(f"{DROPINS}/95-test-watchdog.conf", "[Service]\nWatchdogSec=2s\n")
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "restart", "recd")
    pid, restarts = main_pid(box), int(box.prop("recd", "NRestarts"))
    cursor = box.cursor()
    box.run("kill", "-STOP", str(pid))
    box.wait("systemd restarts recd", lambda: restarted(box, pid))
    assert int(box.prop("recd", "NRestarts")) == restarts + 1
    journal_shows(box, "Watchdog timeout", after=cursor)


def test_sigkill_restarts_recd_with_its_state_kept(healthy: Container) -> None:
    box = healthy
    record(box, "L1/before-kill.wav", due_in=1)
    wait_erased(box, "L1/before-kill.wav")
    before = audit(box)
    pid, restarts = main_pid(box), int(box.prop("recd", "NRestarts"))
    box.run("kill", "-KILL", str(pid))
    box.wait("systemd restarts recd", lambda: restarted(box, pid))
    assert int(box.prop("recd", "NRestarts")) == restarts + 1
    assert audit(box)[: len(before)] == before
    assert box.run("recctl", "audit", "verify").returncode == 0
    record(box, "L1/after-kill.wav", due_in=1)
    wait_erased(box, "L1/after-kill.wav")
    assert catalogue(box, "SELECT COUNT(*) FROM intents") == [[0]]
    states = dict(catalogue(box, "SELECT location, state FROM recordings"))
    assert states["L1/before-kill.wav"] == states["L1/after-kill.wav"] == "erased", states


def test_broken_config_at_start_exits_78_and_is_not_restarted(healthy: Container) -> None:
    box = healthy
    box.write("/etc/recd/recd.toml", good_config(box)["/etc/recd/recd.toml"] + BROKEN)
    box.run("systemctl", "restart", "recd", check=False)
    box.wait("recd fails", lambda: box.prop("recd", "ActiveState") == "failed")
    shown = box.show("recd", "ExecMainStatus", "NRestarts")
    assert shown == {"ExecMainStatus": "78", "NRestarts": "0"}, shown
    # "failed", not "activating (auto-restart)": no restart is scheduled. Looked at again
    # once RestartSec (1 s here) has passed.
    time.sleep(2)
    again = box.show("recd", "ActiveState", "NRestarts")
    assert again == {"ActiveState": "failed", "NRestarts": "0"}, again


def test_recd_once_stops_the_daemon_first_and_succeeds(healthy: Container) -> None:
    box = healthy
    # recd takes 3 s to stop (holding the audit log until it exits): without an ordering,
    # recd-once would start meanwhile and find the log in use.
    box.write(f"{DROPINS}/95-test-slow-stop.conf", "[Service]\nExecStop=/bin/sleep 3\n")
    box.run("systemctl", "daemon-reload")
    cursor = box.cursor()
    box.run("systemctl", "start", "recd-once.service")
    once = box.show("recd-once", "Result", "ExecMainStatus")
    assert once["Result"] == "success", once
    assert box.prop("recd", "ActiveState") == "inactive"
    assert "in use by another recd process" not in box.journal(unit="recd-once", after=cursor)


def test_recctl_status_needs_the_admin_group(healthy: Container) -> None:
    alice = healthy.as_user("alice", "recctl", "status")
    assert alice.returncode == 0, alice.stderr
    bob = healthy.as_user("bob", "recctl", "status")
    assert bob.returncode == 77, bob.stdout + bob.stderr


def test_stop_is_clean(healthy: Container) -> None:
    box = healthy
    cursor = box.cursor()
    box.run("systemctl", "stop", "recd")
    shown = box.show("recd", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    assert shown == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1",
                     "ExecMainStatus": "0"}, shown  # fmt: skip
    assert box.journal("warning", after=cursor) == ""


def test_upgrade_keeps_state_and_config(fresh: Container, newer_deb: Path) -> None:
    box = fresh
    record(box, "L1/before-upgrade.wav", due_in=1)
    wait_erased(box, "L1/before-upgrade.wav")
    head = box.run("recctl", "audit", "head").stdout.split()[-1]  # SEQ:HASH
    before = audit(box)
    configs = {inside: box.path(inside).read_text() for inside in good_config(box)}
    shutil.copy(newer_deb, box.path(NEWER))
    box.run("dpkg", "-i", NEWER)
    version = box.run("dpkg-query", "-W", "-f=${Version}", "recd").stdout
    assert version == deb_version(newer_deb)
    assert {inside: box.path(inside).read_text() for inside in configs} == configs
    box.wait("recd active after the upgrade", lambda: box.prop("recd", "ActiveState") == "active")
    record(box, "L1/after-upgrade.wav", due_in=1)
    wait_erased(box, "L1/after-upgrade.wav")
    after = audit(box)
    assert after[: len(before)] == before and len(after) > len(before)
    verified = box.run("recctl", "audit", "verify", "--expect", head, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_purge_keeps_the_state(fresh: Container) -> None:
    box = fresh
    kept = audit(box)
    box.run("dpkg", "--purge", "recd")
    assert not box.path("/usr/bin/recd").exists()
    assert box.prop("recd", "LoadState") == "not-found"
    assert audit(box)[: len(kept)] == kept  # the audit log is evidence
    assert verify(box.path(f"{STATE}/audit.log").read_bytes().splitlines(keepends=True)).ok


def test_purge_removes_the_state_when_asked(fresh: Container) -> None:
    box = fresh
    assert box.path(f"{STATE}/audit.log").exists()
    box.run("dpkg", "--purge", "recd", env={"RECD_PURGE_STATE": "yes"})
    assert not box.path(STATE).exists()
