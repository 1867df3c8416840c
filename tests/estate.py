"""A small recording estate for service and daemon tests: real files, real state, a fake clock.

Recordings live at ``<root>/<licence>/<name>``; the licence comes from the first path segment
and the start time from the mtime, so a file's age decides whether it is due.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from recd.config.load import Config, DaemonSettings, Licence, Listen, MetricsSettings, SourceConfig
from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import Mode, recording_id
from recd.core.periods import parse_period
from recd.core.safety import SafetySettings
from recd.core.scope import Scope
from recd.daemon.once import run_once
from recd.daemon.runtime import Runtime, open_runtime, scan_all
from recd.errors import ExitCode
from recd.ports.records import Actor
from recd.service.holds import Holds
from recd.service.policies import apply_policies
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport
from tests.fakes import FakeClock
from tests.intentshape import per_recording

PATTERN = re.compile(r"^(?P<licence>[A-Z0-9-]+)/(?:(?P<started>\d{14})_)?[^/]+\.wav$")


class Estate:
    def __init__(self, base: Path, clock: FakeClock, **settings: Any) -> None:
        self.base = base
        self.clock = clock
        self.root = base / "recordings"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = Config(
            path=base / "recd.toml",
            daemon=DaemonSettings(state_dir=base / "state", socket=base / "recd.sock"),
            # any free port: tests run side by side
            metrics=MetricsSettings(Listen("127.0.0.1", 0)),
            erase=EraseSettings(settle=timedelta(minutes=2)),
            safety=SafetySettings(min_breaker_count=1000),
            sources=(
                SourceConfig(
                    "pbx",
                    "directory",
                    ClassifyRule(timezone=UTC, pattern=PATTERN, started_format="%Y%m%d%H%M%S"),
                    path=self.root,
                ),
            ),
            licences={
                "L1": Licence("L1", "One", parse_period("30d"), base / "l1.toml"),
                "L2": Licence("L2", "Two", parse_period("3mo"), base / "l2.toml"),
            },
        )
        if settings:
            self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Replace top-level config sections, e.g. ``erase=EraseSettings(...)``, ``mode=...``."""
        mode = settings.pop("mode", None)
        if mode is not None:
            settings["daemon"] = replace(self.config.daemon, mode=Mode(mode))
        self.config = replace(self.config, **settings)

    def write(
        self,
        relpath: str,
        age_days: float,
        data: bytes = b"\x01" * 4096,
        *,
        modified_seconds_ago: float | None = None,
    ) -> Path:
        """Write a recording ``age_days`` old by mtime, or, with ``modified_seconds_ago``, one
        whose name says it started ``age_days`` ago but whose last write was that recent."""
        started = self.clock.now() - timedelta(days=age_days)
        if modified_seconds_ago is not None:
            head, _, tail = relpath.rpartition("/")
            relpath = f"{head}/{started:%Y%m%d%H%M%S}_{tail}"
            started = self.clock.now() - timedelta(seconds=modified_seconds_ago)
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (started.timestamp(), started.timestamp()))
        return path

    def runtime(self) -> Runtime:
        return open_runtime(self.config, self.clock)

    def hold(self, relpath: str, actor: Actor) -> str:
        """Place a legal hold on the recording at ``relpath`` (the licence is its first path
        segment) as ``actor``, through the service, as `recctl hold place` does; its id."""
        runtime = self.runtime()
        try:
            licence = relpath.split("/", 1)[0]
            scope = Scope(licence, recordings=frozenset({recording_id("pbx", relpath)}))
            holds = Holds(self.config, runtime.catalogue, runtime.audit, self.clock)
            hold, _ = holds.place(scope, case="CASE-1", reason="court order", until=None,
                                  actor=actor)  # fmt: skip
            return hold.id
        finally:
            runtime.close()

    def sweep(self) -> SweepReport:
        """Recover, apply policies, scan and sweep once, as `recd --once` does."""
        rt = self.runtime()
        try:
            Recovery(self.config, rt.catalogue, rt.audit, self.clock, rt.erasers).run()
            apply_policies(self.config, rt.catalogue)
            scan_all(rt)
            return Sweeper(self.config, rt.catalogue, rt.audit, self.clock, rt.erasers).run()
        finally:
            rt.close()

    def once(self) -> tuple[ExitCode, str]:
        out = io.StringIO()
        code = run_once(self.config, self.clock, out)
        return code, out.getvalue()

    @property
    def audit_path(self) -> Path:
        return self.config.daemon.state_dir / "audit.log"

    def audit(self) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_bytes().splitlines()]

    def actions(self, prefix: str = "erase.") -> list[tuple[str, str]]:
        """(action, subject) of each entry; a batch ``erase.intent`` once per recording."""
        entries = per_recording(self.audit())
        return [(e["action"], e["subject"]) for e in entries if e["action"].startswith(prefix)]
