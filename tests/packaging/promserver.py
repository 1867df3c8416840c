"""A real Prometheus server for tests: Debian's ``prometheus`` binary on 127.0.0.1 (a free port),
its storage in a temporary directory, scraping given targets every second as job ``recd`` and
evaluating given rule files every second.

.ci/run takes ``/usr/bin/prometheus`` out of Debian's package (installing the package would start
a server); a test without it skips, naming the package (tests/tools.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests import tools

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: {rules}
scrape_configs:
  - job_name: recd
    static_configs:
      - targets: {targets}
"""

START_TIMEOUT = 60.0


class Prometheus:
    """``prometheus`` as a subprocess; ``stop()`` kills it (also when start-up failed).

    Usage::

        server = Prometheus(tmp_path / "prom", ["127.0.0.1:9464"], [rules])
        try:
            server.start()
            server.query('up{job="recd"}')
        finally:
            server.stop()
    """

    def __init__(self, base: Path, targets: Sequence[str], rules: Sequence[Path]) -> None:
        self.base = base
        self.targets = list(targets)
        self.rules = [str(r.resolve()) for r in rules]
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.base / "prometheus.log"

    def start(self) -> None:
        """Start the server and poll ``/-/ready`` until it answers 200."""
        binary = tools.need("prometheus")
        self.base.mkdir(parents=True, exist_ok=True)
        config = self.base / "prometheus.yml"
        config.write_text(
            CONFIG.format(rules=json.dumps(self.rules), targets=json.dumps(self.targets))
        )
        self.port = tools.free_port()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.base / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=self.base,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}: {self._tail()}")
            assert time.monotonic() < deadline, f"prometheus not ready: {self._tail()}"
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/-/ready"), timeout=5) as reply:
                return int(reply.status) == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def _tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").splitlines()[-5:])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful API reply; an error reply raises with Prometheus's
        error text (a query that does not parse, an unknown function)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(self.url(path + query), timeout=30) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (raises when ``expr`` does not parse)."""
        data = self.api("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def stop(self) -> None:
        """Kill the server and reap it; idempotent."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
