"""recd.toml + licences.d/*.toml -> a frozen Config; every problem named with file and key.

Loading has no side effects: it reads files and returns a value or raises ConfigInvalid with
every problem found, so SIGHUP can validate a new configuration and keep the old one on failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import Mode, UnclassifiedPolicy
from recd.core.periods import Period
from recd.core.safety import SafetySettings

DEFAULT_CONFIG = Path("/etc/recd/recd.toml")


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    state_dir: Path = Path("/var/lib/recd")
    socket: Path = Path("/run/recd/recd.sock")
    admin_group: str = "recd-admin"
    mode: Mode = Mode.ENFORCE
    rescan: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    host: str = "127.0.0.1"
    port: int = 9464
    per_licence: bool = True


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    default: Period = Period(seconds=30 * 86400, text="30d")
    unclassified: UnclassifiedPolicy = UnclassifiedPolicy.KEEP


@dataclass(frozen=True, slots=True)
class HoldSettings:
    release_grace: timedelta = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[[source]]`. Directory sources have ``path``; S3 sources have ``bucket`` etc."""

    name: str
    type: Literal["directory", "s3"]
    rule: ClassifyRule
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    poll: timedelta = timedelta(minutes=5)
    mirror_legal_holds: bool = False


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    email: str
    public_key: bytes  # 32 raw Ed25519 bytes


@dataclass(frozen=True, slots=True)
class Licence:
    id: str
    name: str
    retention: Period
    file: Path
    verification: Literal["two-person", "signature"] = "two-person"
    agents: tuple[Agent, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    daemon: DaemonSettings = DaemonSettings()
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()
    erase: EraseSettings = EraseSettings()
    holds: HoldSettings = HoldSettings()
    safety: SafetySettings = SafetySettings()
    sources: tuple[SourceConfig, ...] = ()
    licences: Mapping[str, Licence] = field(default_factory=dict)

    def period_for(self, licence: str | None) -> Period | None:
        """The retention period of ``licence``; None for an unclassified recording that is kept."""
        if licence is None:
            if self.retention.unclassified is UnclassifiedPolicy.KEEP:
                return None
            return self.retention.default
        found = self.licences.get(licence)
        return found.retention if found is not None else self.retention.default
