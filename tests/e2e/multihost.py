"""Several real `recd` processes on one PostgreSQL catalogue (``[catalogue] url``), each as a
host of its own (``daemon.node``): its own state directory, socket, notify listener and log,
the same database and the same sources.

``Node`` is one such host; ``nodes`` starts a few and stops every one of them afterwards,
SIGKILLed if the test failed first. ``chain`` reads the shared audit table the way an auditor
does (read-only, one snapshot).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from tests.e2e.helpers import kill_daemon, recctl, start_daemon, stop_daemon
from tests.fakes import NotifyListener

HOST = """\
[daemon]
state_dir = "{base}/state"
socket = "{base}/recd.sock"
node = "{node}"

[catalogue]
url = "{url}"

[metrics]
listen = "127.0.0.1:0"

[erase]
settle = "0s"

[safety]
min_breaker_count = 100000

"""


@dataclass
class Node:
    """One recd host: ``base`` holds its config, licences, state, socket, log and listener."""

    name: str
    base: Path
    proc: Popen[bytes] | None = None
    listener: NotifyListener | None = None
    runs: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.base / "recd.toml"

    @property
    def socket(self) -> Path:
        return self.base / "recd.sock"

    def write(self, url: str, sources: str) -> None:
        """Its recd.toml (``HOST`` and the ``[[source]]`` tables ``sources``) and licence L1
        (30 days)."""
        (self.base / "licences.d").mkdir(parents=True, exist_ok=True)
        (self.base / "licences.d" / "l1.toml").write_text(
            'id = "L1"\nname = "One"\nretention = "30d"\n'
        )
        self.config.write_text(HOST.format(base=self.base, node=self.name, url=url) + sources)

    def start(self) -> None:
        """``recd --config`` as a new process with a new listener (READY not awaited)."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} runs already"
        if self.listener is not None:
            self.listener.close()
        self.runs += 1
        self.listener = NotifyListener(str(self.base / f"notify-{self.runs}"))
        log = self.base / f"recd-{self.runs}.log"
        self.logs.append(log)
        self.proc = start_daemon(self.config, self.listener, log)

    def ready(self, timeout: float = 60) -> None:
        assert self.listener is not None
        self.listener.wait_for("READY=1", timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, as a host that loses power (its sessions die with it)."""
        assert self.proc is not None
        kill_daemon(self.proc)

    def stop(self) -> None:
        """SIGTERM and a clean exit (status 0)."""
        assert self.proc is not None and self.listener is not None
        stop_daemon(self.proc, self.listener)

    def ctl(self, *args: str) -> Any:
        """``recctl --socket`` of this node, which must succeed; the completed process."""
        done = recctl("--socket", str(self.socket), *args)
        assert done.returncode == 0, f"recctl {' '.join(args)} on {self.name}: {done.stderr}"
        return done

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(self.ctl("status", "--json").stdout)
        return status

    def log(self) -> str:
        return "".join(f"--- {p.name}\n{p.read_text()}" for p in self.logs if p.exists())

    def close(self) -> None:
        """Killed if still running, its listener closed (any test outcome)."""
        if self.proc is not None:
            kill_daemon(self.proc)
        if self.listener is not None:
            self.listener.close()
            self.listener = None


@contextmanager
def nodes(root: Path, names: Sequence[str], url: str, sources: str) -> Iterator[list[Node]]:
    """Nodes ``names`` below ``root`` on the catalogue ``url``, configured and started (READY
    awaited); each stopped after, with SIGTERM if the test passed, killed otherwise."""
    made = [Node(name, root / name) for name in names]
    with ExitStack() as stack:
        for node in made:
            node.write(url, sources)
            stack.callback(node.close)
        for node in made:
            node.start()
        for node in made:
            node.ready()
        yield made
        for node in made:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()


def chain(url: str) -> list[dict[str, Any]]:
    """Every entry of the audit table, in order, read in one read-only transaction."""
    import psycopg

    with psycopg.connect(url) as db:
        db.read_only = True
        rows = db.execute("SELECT line FROM audit ORDER BY seq").fetchall()
    return [json.loads(bytes(row[0])) for row in rows]


def value(url: str, query: str) -> Any:
    """The one value ``query`` returns (None while its table does not exist yet)."""
    import psycopg

    with psycopg.connect(url) as db:
        db.read_only = True
        try:
            row = db.execute(query.encode()).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else row[0]


def values(url: str, query: str) -> list[Any]:
    """The first column of every row ``query`` returns (none while its table does not exist
    yet)."""
    import psycopg

    with psycopg.connect(url) as db:
        db.read_only = True
        try:
            return [row[0] for row in db.execute(query.encode())]
        except psycopg.errors.UndefinedTable:
            return []


def count(url: str, query: str) -> int:
    """The one number ``query`` returns (0 while its table does not exist yet)."""
    return int(value(url, query) or 0)
