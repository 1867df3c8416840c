"""The frozen values a loaded configuration is made of.

Everything here is already parsed and checked (periods, durations, paths, patterns), so nothing
downstream of recd.config.load parses strings. recd.config.load re-exports these names;
import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from socket import gethostname
from typing import Literal

from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import Mode, UnclassifiedPolicy
from recd.core.periods import Period
from recd.core.pgurl import PostgresURL
from recd.core.safety import SafetySettings

DEFAULT_POLL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    state_dir: Path = Path("/var/lib/recd")
    socket: Path = Path("/run/recd/recd.sock")
    admin_group: str = "recd-admin"
    mode: Mode = Mode.ENFORCE
    rescan: timedelta = timedelta(hours=6)
    #: This host's name in a shared catalogue's leases and audit entries (``daemon.node``).
    node: str = field(default_factory=gethostname)


@dataclass(frozen=True, slots=True)
class Listen:
    """A TCP address to listen on, parsed once from ``host:port`` (``[v6]:port``) at load."""

    host: str
    port: int

    def __str__(self) -> str:
        """The ``host:port`` form again, brackets around an IPv6 address."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: Listen = Listen("127.0.0.1", 9464)
    per_licence: bool = True


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    default: Period = field(default_factory=lambda: Period(seconds=30 * 86400, text="30d"))
    unclassified: UnclassifiedPolicy = UnclassifiedPolicy.KEEP


@dataclass(frozen=True, slots=True)
class HoldSettings:
    release_grace: timedelta = timedelta(days=7)


AuditCompression = Literal["none", "gzip"]
#: The smallest ``audit.rotate_size``: a segment per few hundred entries is already absurd.
MIN_ROTATE_SIZE = 64 << 10


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """``[audit]``: when the live log is closed into a segment, and how segments are kept."""

    rotate_size: int = 64 << 20  # bytes of audit.log past which it is rotated
    compress: AuditCompression = "none"


@dataclass(frozen=True, slots=True)
class CatalogueSettings:
    """``[catalogue]``: ``url`` None keeps the catalogue in SQLite, ``catalog.db`` in
    ``daemon.state_dir`` (the default); a URL names a PostgreSQL catalogue shared by hosts."""

    url: PostgresURL | None = None

    @property
    def shared(self) -> bool:
        """Whether the catalogue is shared by hosts (PostgreSQL): every source is then held
        by one node at a time, and each host has its own ``daemon.node``."""
        return self.url is not None


SourceType = Literal["directory", "s3"]
Verification = Literal["two-person", "signature"]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[[source]]`. Directory sources have ``path``; S3 sources have ``bucket`` etc."""

    name: str
    type: SourceType
    rule: ClassifyRule
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    poll: timedelta = DEFAULT_POLL
    mirror_legal_holds: bool = False
    bypass_governance: bool = False  # send x-amz-bypass-governance-retention on deletes
    #: The ``daemon.node`` names that serve this source; None: every node (``nodes``).
    nodes: tuple[str, ...] | None = None
    #: A directory several nodes see (an NFS export): served by one of them at a time, like
    #: every S3 source (``shared``).
    shared: bool = False

    def on_node(self, node: str) -> bool:
        """Whether the node ``node`` may serve this source at all (``nodes`` lists it)."""
        return self.nodes is None or node in self.nodes

    @property
    def one_at_a_time(self) -> bool:
        """Whether at most one node serves this source at a time: S3, or ``shared``."""
        return self.type == "s3" or self.shared


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
    verification: Verification = "two-person"
    agents: tuple[Agent, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    erase: EraseSettings = field(default_factory=EraseSettings)
    holds: HoldSettings = field(default_factory=HoldSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    catalogue: CatalogueSettings = field(default_factory=CatalogueSettings)
    sources: tuple[SourceConfig, ...] = ()
    licences: Mapping[str, Licence] = field(default_factory=dict)

    @property
    def audit_place(self) -> str:
        """Where the audit chain is, as messages name it: ``<state_dir>/audit.log``, or the
        ``audit`` table of the shared catalogue's database."""
        if self.catalogue.url is not None:
            return f"the audit table of {self.catalogue.url}"
        return str(self.daemon.state_dir / "audit.log")

    @property
    def audit_named(self) -> str:
        """The audit chain as a sentence names it: ``the audit log <state_dir>/audit.log``, or
        ``the audit table of …`` (``audit_place`` with its noun)."""
        if self.catalogue.shared:
            return self.audit_place
        return f"the audit log {self.audit_place}"

    def period_for(self, licence: str | None) -> Period | None:
        """The retention period of ``licence``; None for an unclassified recording that is kept."""
        if licence is None:
            if self.retention.unclassified is UnclassifiedPolicy.KEEP:
                return None
            return self.retention.default
        found = self.licences.get(licence)
        return found.retention if found is not None else self.retention.default
