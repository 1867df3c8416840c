"""Legal holds and requests across Unix users, as a pytest plugin (``tests/conftest.py`` loads it):
the fixtures ``keys`` (agents' Ed25519 keys), ``admins`` (a fresh admin group, two members and
an outsider, root only) and ``shared`` (a directory other users can pass through), and the
config, recctl and daemon helpers that the e2e legal tests and the backup attacks share.

``admins`` removes the users and the group it made whatever happens; ``running`` kills the
daemon at the end unless the test stopped it."""

from __future__ import annotations

import contextlib
import grp
import pwd
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests import tools
from tests.e2e.helpers import env, kill_daemon, start_daemon, wait_swept, write_estate
from tests.fakes import NotifyListener
from tests.foreign import Foreign
from tests.keys import key_text

Completed = subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def keys() -> dict[str, Ed25519PrivateKey]:
    """Jane is L3's authorised agent, Mallory L2's; nobody lists Oscar's key."""
    return {name: Ed25519PrivateKey.generate() for name in ("jane", "mallory", "oscar")}


def write_licences(base: Path, keys: dict[str, Ed25519PrivateKey]) -> None:
    """L1 (from write_estate) and L2 verify by two-person approval, L3 by Jane's signature."""
    (base / "licences.d" / "l2.toml").write_text(
        'id = "L2"\nname = "Two"\nretention = "30d"\nverification = "two-person"\n\n'
        f'[[agent]]\nname = "Mal Lory"\nemail = "m@two.example"\n'
        f'public_key = "{key_text(keys["mallory"])}"\n'
    )
    (base / "licences.d" / "l3.toml").write_text(
        'id = "L3"\nname = "Three"\nretention = "30d"\nverification = "signature"\n\n'
        f'[[agent]]\nname = "Jane Doe"\nemail = "dpo@three.example"\n'
        f'public_key = "{key_text(keys["jane"])}"\n'
    )


def configure(
    base: Path,
    keys: dict[str, Ed25519PrivateKey],
    *,
    socket: Path | None = None,
    admin_group: str | None = None,
    verify: bool = False,
    listen: str = "127.0.0.1:0",
    release_grace: str | None = None,
) -> Path:
    """write_estate's config, with the socket moved, the admin group and hold grace set, and
    the licences of write_licences; returns the config path."""
    config = write_estate(base, verify=verify, listen=listen)
    write_licences(base, keys)
    text = config.read_text()
    daemon = f'socket = "{socket or base / "recd.sock"}"\n'
    if admin_group is not None:
        daemon += f'admin_group = "{admin_group}"\n'
    text = text.replace(f'socket = "{base}/recd.sock"\n', daemon)
    if release_grace is not None:
        text += f'\n[holds]\nrelease_grace = "{release_grace}"\n'
    config.write_text(text)
    return config


@dataclass(frozen=True, slots=True)
class Account:
    """A Unix user to run recctl as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups its recctl runs with


def ctl(
    sock: Path | None, *args: str, user: Account | None = None, foreign: Foreign | None = None
) -> Completed:
    """``python -m recd.cli.main [--socket SOCK] ARGS`` as this test's user, or as ``user`` with
    the copy of recd that ``foreign`` made reachable to every user."""
    argv = [*([] if sock is None else ["--socket", str(sock)]), *args]
    if user is None:
        return subprocess.run(
            [sys.executable, "-m", "recd.cli.main", *argv],
            capture_output=True, text=True, env=env(), timeout=120, check=False,
        )  # fmt: skip
    assert foreign is not None, "another uid runs the reachable copy of recd"
    return subprocess.run(
        [*foreign.recctl, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        user=user.uid,
        group=user.gid,
        extra_groups=list(user.groups),
        env=foreign.env,
    )


@contextlib.contextmanager
def running(
    config: Path, base: Path, listener: NotifyListener
) -> Iterator[subprocess.Popen[bytes]]:
    """`recd` on ``config``, READY and done with its first scan and sweep; SIGKILLed at the
    end unless the test stopped or killed it."""
    mark = len(listener.messages)
    proc = start_daemon(config, listener, base / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        wait_swept(listener, since=mark)
        yield proc
    finally:
        kill_daemon(proc)


def run_tool(*cmd: str) -> None:
    """Run a user or group tool; while another run of the suite holds /etc/passwd or
    /etc/group locked ("cannot lock"), try again (for up to about 30 s)."""
    for _ in range(60):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0:
            return
        if "lock" not in done.stderr:
            break
        time.sleep(0.1 + 0.4 * random.random())
    raise AssertionError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")


@dataclass(frozen=True, slots=True)
class Admins:
    group: str
    alice: Account  # in the admin group
    bob: Account  # in the admin group
    eve: Account  # not in it
    foreign: Foreign  # what they run recctl with


@pytest.fixture
def admins(foreign: Foreign) -> Iterator[Admins]:
    """A fresh admin group, two members and one outsider (removed again, whatever happens)."""
    tools.need("useradd", "groupadd", "userdel", "groupdel")
    tag = secrets.token_hex(3)
    group = f"recd-test-admin-{tag}"
    names = {who: f"recdt-{who}-{tag}" for who in ("alice", "bob", "eve")}
    users: list[str] = []
    group_made = False
    try:
        run_tool("groupadd", "--system", group)
        group_made = True
        for who, name in names.items():
            member = ["-G", group] if who != "eve" else []
            run_tool("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 *member, name)  # fmt: skip
            users.append(name)
        gid = grp.getgrnam(group).gr_gid

        def account(who: str) -> Account:
            pw = pwd.getpwnam(names[who])
            extra = (gid,) if who != "eve" else ()
            return Account(pw.pw_name, pw.pw_uid, pw.pw_gid, extra)

        yield Admins(group, account("alice"), account("bob"), account("eve"), foreign)
    finally:
        for name in users:
            subprocess.run(["userdel", name], capture_output=True, check=False, timeout=60)
            with contextlib.suppress(KeyError):  # a user group userdel left behind
                grp.getgrnam(name)
                subprocess.run(["groupdel", name], capture_output=True, check=False, timeout=60)
        if group_made:
            subprocess.run(["groupdel", group], capture_output=True, check=False, timeout=60)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other users can pass through (the socket and request files live here)."""
    path = Path(tempfile.mkdtemp(prefix="recd-legal-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)
