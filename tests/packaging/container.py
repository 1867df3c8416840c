"""A real systemd (PID 1) in a container, booted from a cached Debian 12 rootfs, for the
end-to-end tests of the installed package (``tests/packaging/test_systemd.py``).

``base_rootfs()`` returns a minimal bookworm made once with ``debootstrap`` and kept in
``/var/cache/recd-tests/rootfs-bookworm-<hash of what it includes>`` (``RECD_TEST_ROOTFS``
names another). It is built in a temporary directory beside it and renamed into place under an
``fcntl.flock`` lock, so two test runs at once neither build it twice nor see half of one; the
mirror is the one this machine's apt uses (``/etc/apt/sources.list`` and ``sources.list.d``).

``Container.booted(rootfs, state)`` boots it with ``packaging/tools/sysd-container.sh``
(``--volatile=overlay``: every boot starts pristine; ``--private-network``) and stops it after;
``run`` executes a command inside, ``path`` reaches a file inside from the host, ``show`` reads
unit properties and ``diagnostics`` is what a failing test prints (``systemctl status`` and the
journal of recd's units).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tests import tools

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "tools" / "sysd-container.sh"

#: Read at import: tests/conftest.py's clean_env hides RECD_* variables from the tests.
ROOTFS_ENV = "RECD_TEST_ROOTFS"
ROOTFS_OVERRIDE = os.environ.get(ROOTFS_ENV) or None
CACHE = Path("/var/cache/recd-tests")
SUITE = "bookworm"
#: What the base rootfs holds beyond minbase: systemd as PID 1, python3 for the package's venv,
#: procps (kill, ps), passwd (useradd for the PBX user), acl (the docs' setfacl recipe).
INCLUDE = ("systemd", "systemd-sysv", "dbus", "python3", "procps", "passwd", "acl")
FALLBACK_MIRROR = "http://deb.debian.org/debian"
#: The journal fields that tie an entry to a unit (its processes', systemd's about it).
UNIT_FIELDS = ("_SYSTEMD_UNIT", "UNIT", "OBJECT_SYSTEMD_UNIT")
#: journald's priorities, most urgent first (their index is the number).
PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

#: The tools the host needs, each named with its Debian package in tests/tools.py.
HOST_TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb")

#: Inside the container: a plain root environment, not the host's.
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}

Completed = subprocess.CompletedProcess[str]


# --- the base rootfs ---------------------------------------------------------------------------


def debian_mirror(apt: Path = Path("/etc/apt")) -> str:
    """The URI this machine's apt uses for Debian ``SUITE`` (not -updates, not -security):
    from one-line ``deb URI SUITE ...`` entries and deb822 ``.sources`` stanzas; else
    deb.debian.org."""
    files = [apt / "sources.list"]
    listed = apt / "sources.list.d"
    if listed.is_dir():
        files += sorted(p for p in listed.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = _deb822(stanza)
                if (
                    "deb" in fields.get("types", "").split()
                    and SUITE in fields.get("suites", "").split()
                ):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    return FALLBACK_MIRROR


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def rootfs_path() -> Path:
    """Where the cached rootfs for ``INCLUDE`` lives (a new list, a new directory)."""
    if ROOTFS_OVERRIDE is not None:
        return Path(ROOTFS_OVERRIDE)
    key = hashlib.sha256(f"{SUITE} minbase {','.join(INCLUDE)}".encode()).hexdigest()[:12]
    return CACHE / f"rootfs-{SUITE}-{key}"


def base_rootfs() -> Path:
    """The cached base rootfs, built first if missing (about a minute, ~290 MB).

    Under an exclusive ``flock`` on ``<path>.lock``: a second run waits for the first one's
    build instead of starting its own, and a temporary directory left by a build that was
    killed is removed. The finished tree is renamed into place, so it is whole or absent.
    """
    final = rootfs_path()
    if _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{final}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(final):
            return final
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        work.chmod(0o755)  # the container's /: mkdtemp makes it 0700
        mirror = debian_mirror()
        argv = [tools.need("debootstrap"), "--variant=minbase", f"--include={','.join(INCLUDE)}",
                SUITE, str(work), mirror]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800)
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise RuntimeError(f"debootstrap {SUITE} from {mirror} failed:\n{tail}")
        work.rename(final)
    return final


def _complete(rootfs: Path) -> bool:
    return (rootfs / "usr" / "lib" / "systemd" / "systemd").exists() and (
        rootfs / "usr" / "bin" / "python3"
    ).exists()


# --- a booted container ------------------------------------------------------------------------


class Container:
    """A container booted by ``sysd-container.sh``; its state (pids, console log) in ``state``."""

    def __init__(self, state: Path) -> None:
        self.state = state
        #: ``dpkg -i``'s result, once ``install`` ran.
        self.installed: Completed | None = None

    @classmethod
    @contextlib.contextmanager
    def booted(cls, rootfs: Path, state: Path, *nspawn_args: str) -> Iterator[Container]:
        """Boot ``rootfs`` (pristine: a volatile overlay), off the network; stop it after."""
        argv = ["sh", str(SCRIPT), "start", str(rootfs), str(state), "--private-network",
                *nspawn_args]  # fmt: skip
        started = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        box = cls(state)
        try:
            if started.returncode != 0:
                log = state / "console.log"
                console = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(
                    f"container from {rootfs} did not boot: {started.stderr.strip()}\n{console}"
                )
            yield box
        finally:
            subprocess.run(["sh", str(SCRIPT), "stop", str(state)], check=False, timeout=120)

    @property
    def leader(self) -> int:
        return int((self.state / "leader.pid").read_text())

    def path(self, inside: str) -> Path:
        """A path inside the container, reached from the host through its PID 1's root."""
        return Path(f"/proc/{self.leader}/root") / inside.lstrip("/")

    def run(
        self,
        *argv: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> Completed:
        """``argv`` inside the container (all its namespaces, as root); output as text.
        ``check``: fail with the command's output when it exits non-zero."""
        done = subprocess.run(
            ["sh", str(SCRIPT), "exec", str(self.state), "env", "-i",
             *(f"{k}={v}" for k, v in {**INSIDE_ENV, **(env or {})}.items()), *argv],
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"in the container, {' '.join(argv)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def install(self, deb_inside: str) -> Completed:
        """``dpkg -i`` a package already inside the container; its result (unchecked)."""
        self.installed = self.run("dpkg", "-i", deb_inside, check=False)
        return self.installed

    def sh(self, script: str, check: bool = True) -> Completed:
        return self.run("sh", "-ec", script, check=check)

    def as_user(self, user: str, *argv: str) -> Completed:
        """``argv`` as ``user`` (with that user's groups from /etc/group), unchecked."""
        return self.run("runuser", "-u", user, "--", *argv, check=False)

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        """Write a file inside the container (as root; parents made)."""
        path = self.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show`` properties of ``unit``."""
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def prop(self, unit: str, prop: str) -> str:
        return self.show(unit, prop).get(prop, "")

    def cursor(self) -> str:
        """The journal's current end, for ``journal(after=...)``."""
        out = self.run("journalctl", "--no-pager", "-n", "1", "--show-cursor", "-q").stdout
        found = re.search(r"^-- cursor: (\S+)", out, re.MULTILINE)
        assert found is not None, out
        return found.group(1)

    def journal(
        self, priority: str | None = None, unit: str = "recd", after: str | None = None
    ) -> str:
        """The messages of ``unit`` (recd's and systemd's about it), one a line, at
        ``priority`` ("warning", "err", ...) or more urgent, after ``cursor`` if given.

        Filtered here, not by ``journalctl -u -p --after-cursor``: with matches, journalctl
        drops the first matching entry after a cursor entry that does not match."""
        argv = ["journalctl", "--no-pager", "-q", "-o", "json"]
        if after is not None:
            argv.append(f"--after-cursor={after}")
        service = unit if "." in unit else f"{unit}.service"
        most = PRIORITIES.index(priority) if priority is not None else 7
        lines = []
        for raw in self.run(*argv).stdout.splitlines():
            entry = json.loads(raw)
            if service not in (
                entry.get(k) for k in ("_SYSTEMD_UNIT", "UNIT", "OBJECT_SYSTEMD_UNIT")
            ):
                continue
            if int(entry.get("PRIORITY", 6)) <= most:
                message = entry.get("MESSAGE", "")
                lines.append(message if isinstance(message, str) else repr(message))
        return "".join(f"{line}\n" for line in lines)

    def wait(self, what: str, done: Callable[[], object], timeout: float = 60) -> None:
        """Poll ``done()`` until true; fail naming ``what`` (and the journal) after ``timeout``."""
        give_up = time.monotonic() + timeout
        while not done():
            if time.monotonic() > give_up:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(0.1)

    def diagnostics(self, units: Sequence[str] = ("recd", "recd-once")) -> str:
        """What a failing test prints: the units' status and their journal (last 150 lines)."""
        status = self.run("systemctl", "status", "--no-pager", "-l", *units, check=False)
        journal = self.run(
            "journalctl", "--no-pager", "-n", "150", *(f"--unit={u}" for u in units), check=False
        )
        return (
            f"--- systemctl status {' '.join(units)}\n{status.stdout}{status.stderr}"
            f"--- journalctl (last 150 lines)\n{journal.stdout}{journal.stderr}"
        )


# --- packages ----------------------------------------------------------------------------------


def deb_version(deb: Path) -> str:
    done = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def repack(deb: Path, version: str, out: Path) -> Path:
    """The same package as ``deb`` with Version ``version`` (for an upgrade): ``dpkg-deb -R``,
    the control file's Version changed, ``dpkg-deb -b`` (gzip -1: fast)."""
    with tempfile.TemporaryDirectory(prefix="recd-repack-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
        control = tree / "DEBIAN" / "control"
        text = re.sub(r"(?m)^Version: .*$", f"Version: {version}", control.read_text())
        control.write_text(text)
        subprocess.run(
            ["dpkg-deb", "-Zgzip", "-z1", "-b", str(tree), str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
    return out
