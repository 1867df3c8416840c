"""recd.toml + licences.d/*.toml -> a frozen Config; every problem named with file and key.

Loading has no side effects: it reads files (and resolves symlinks in source roots) and returns a
value or raises ConfigInvalid with every problem found, never just the first, so SIGHUP can
validate a new configuration and keep the old one on failure. Unknown keys are errors. Periods and
durations are parsed here, so nothing downstream parses strings. A Config that loads names no
source root that is, contains or lies inside a system directory or the state directory, and no
two sources overlap: recd must never be pointed at something it could wrongly erase.

This module reads the recd.toml sections and assembles the Config; the value types live in
recd.config.types, the TOML table reader in recd.config.tables, the ``[[source]]`` readers and root
checks in recd.config.sources and the licences.d readers in recd.config.licences. Import the public
names from here.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from recd.config.catalogue import read_catalogue, read_node
from recd.config.licences import read_licences
from recd.config.sources import read_sources
from recd.config.tables import Table, quote, read_toml
from recd.config.types import (
    MIN_ROTATE_SIZE,
    Agent,
    AuditCompression,
    AuditSettings,
    CatalogueSettings,
    Config,
    DaemonSettings,
    HoldSettings,
    Licence,
    Listen,
    MetricsSettings,
    RetentionSettings,
    SourceConfig,
    SourceType,
    Verification,
)
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, ErasePattern, Mode, OnIneffective, UnclassifiedPolicy
from recd.core.safety import SafetySettings
from recd.errors import ConfigInvalid, ConfigProblem, InvalidValue

__all__ = [
    "DEFAULT_CONFIG",
    "Agent",
    "AuditSettings",
    "CatalogueSettings",
    "Config",
    "DaemonSettings",
    "HoldSettings",
    "Licence",
    "Listen",
    "MetricsSettings",
    "RetentionSettings",
    "SourceConfig",
    "SourceType",
    "Verification",
    "config_warnings",
    "load",
]

DEFAULT_CONFIG = Path("/etc/recd/recd.toml")


def load(path: Path = DEFAULT_CONFIG, *, licences_dir: Path | None = None) -> Config:
    """Read ``path`` and every ``*.toml`` in ``licences_dir`` (default: ``licences.d`` beside it).

    An empty licences directory means no licences; a missing or unreadable one is a problem.
    Raises ConfigInvalid listing every problem.
    """
    problems: list[ConfigProblem] = []
    data = read_toml(path, problems)
    config = _config(path, Table(str(path), "", data or {}, problems))
    if licences_dir is None:
        licences_dir = path.parent / "licences.d"
    # When recd.toml itself did not load, a missing licences.d beside it is not news.
    licences = read_licences(licences_dir, problems, missing_ok=data is None)
    if problems:
        raise ConfigInvalid(problems)
    return replace(config, licences=MappingProxyType(licences))


def config_warnings(config: Config) -> list[str]:
    """Lines to log at start and print from check-config: valid, but probably not meant."""
    warnings: list[str] = []
    if config.daemon.mode is Mode.DRY_RUN:
        warnings.append('daemon.mode is "dry-run": recordings that are due are logged, not erased')
    if not config.sources:
        warnings.append("no [[source]] is configured: recd has nothing to watch")
    default = config.retention.default
    if default.never:
        warnings.append(
            "retention.default is never; recordings of licences without a file are kept "
            "until a request or a policy change"
        )
    node = config.daemon.node
    for source in config.sources:
        if not config.catalogue.shared and not source.on_node(node):
            warnings.append(
                f'source "{source.name}": nodes does not list this node ({quote(node)}), so '
                "recd leaves it alone (no scan, no watch, no erase); add the node to nodes, "
                "or set daemon.node"
            )
        fixed = source.rule.licence
        if fixed is not None and fixed not in config.licences:
            warnings.append(
                f'source "{source.name}": licence "{fixed}" has no file in licences.d; '
                f"its recordings get retention.default ({default.text})"
            )
    for licence in sorted(config.licences.values(), key=lambda lic: lic.id):
        if licence.retention.never:
            warnings.append(
                f'licence "{licence.id}" ({licence.file}): retention is never; its recordings '
                "are kept until a request or a policy change"
            )
    return warnings


# --- recd.toml ----------------------------------------------------------------------------------


def _config(path: Path, top: Table) -> Config:
    catalogue = read_catalogue(top.table("catalogue"))
    daemon = _daemon(top.table("daemon"), shared=catalogue.shared)
    config = Config(
        path=path,
        daemon=daemon,
        catalogue=catalogue,
        metrics=_metrics(top.table("metrics")),
        retention=_retention(top.table("retention")),
        erase=_erase(top.table("erase")),
        holds=_holds(top.table("holds")),
        safety=_safety(top.table("safety")),
        audit=_audit(top.table("audit")),
        sources=read_sources(
            top.tables("source"),
            daemon.state_dir,
            node=daemon.node if catalogue.shared else None,
        ),
    )
    top.finish()
    return config


def _daemon(t: Table, *, shared: bool) -> DaemonSettings:
    d = DaemonSettings()
    settings = DaemonSettings(
        state_dir=t.abspath("state_dir") or d.state_dir,
        socket=t.abspath("socket") or d.socket,
        admin_group=t.text("admin_group", d.admin_group),
        mode=t.choice("mode", tuple(Mode), d.mode),
        rescan=t.duration("rescan", d.rescan, positive=True),
        node=read_node(t, socket.gethostname(), shared=shared),
    )
    t.finish()
    return settings


def _metrics(t: Table) -> MetricsSettings:
    d = MetricsSettings()
    listen, text = d.listen, t.string("listen")
    if text is not None:
        try:
            listen = _listen(text)
        except InvalidValue as exc:
            t.report("listen", str(exc))
    settings = MetricsSettings(listen, t.flag("per_licence", d.per_licence))
    t.finish()
    return settings


def _listen(text: str) -> Listen:
    usage = f'expected "host:port", such as "127.0.0.1:9464" or "[::1]:9464", got {quote(text)}'
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise InvalidValue(usage)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidValue(f"{quote(host)} is not an IPv6 address") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon or not host or any(c.isspace() for c in host):
            raise InvalidValue(usage)
        if ":" in host:
            raise InvalidValue('write an IPv6 address in brackets, such as "[::1]:9464"')
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise InvalidValue(f"port must be a number from 0 to 65535, got {quote(port)}")
    return Listen(host, int(port))


def _retention(t: Table) -> RetentionSettings:
    d = RetentionSettings()
    settings = RetentionSettings(
        default=t.period("default") or d.default,
        unclassified=t.choice("unclassified", tuple(UnclassifiedPolicy), d.unclassified),
    )
    t.finish()
    return settings


def _erase(t: Table) -> EraseSettings:
    d = EraseSettings()
    settings = EraseSettings(
        # s3-delete is what S3 sources do; it is not an erase method an operator chooses.
        method=t.choice("method", (EraseMethod.OVERWRITE, EraseMethod.UNLINK), d.method),
        pattern=t.choice("pattern", tuple(ErasePattern), d.pattern),
        verify=t.flag("verify", d.verify),
        settle=t.duration("settle", d.settle),
        on_ineffective=t.choice("on_ineffective", tuple(OnIneffective), d.on_ineffective),
    )
    t.finish()
    return settings


def _holds(t: Table) -> HoldSettings:
    # 0s is allowed: SPEC section 5 says it deletes a released recording at the next sweep.
    settings = HoldSettings(release_grace=t.duration("release_grace", HoldSettings().release_grace))
    t.finish()
    return settings


def _safety(t: Table) -> SafetySettings:
    d = SafetySettings()
    fraction = t.number("max_due_fraction")
    if fraction is not None and not 0 < fraction <= 1:
        t.report("max_due_fraction", f"must be more than 0 and at most 1, got {fraction:g}")
        fraction = None
    count = t.value("min_breaker_count", int, "an integer")
    if count is not None and count < 0:
        t.report("min_breaker_count", f"must be 0 or more, got {count}")
        count = None
    settings = SafetySettings(
        max_due_fraction=d.max_due_fraction if fraction is None else fraction,
        min_breaker_count=d.min_breaker_count if count is None else count,
        max_clock_jump=t.duration("max_clock_jump", d.max_clock_jump, positive=True),
        max_clock_gap=t.duration("max_clock_gap", d.max_clock_gap, positive=True),
        max_clock_skew=_max_clock_skew(t, d.max_clock_skew),
    )
    t.finish()
    return settings


#: The largest ``safety.max_clock_skew``: two hosts may differ by twice it, which must stay
#: within a shared catalogue's claims (10 minutes), or a live claim could look expired.
MAX_CLOCK_SKEW = timedelta(minutes=4)


def _max_clock_skew(t: Table, default: timedelta) -> timedelta:
    skew = t.duration("max_clock_skew", default, positive=True)
    if skew > MAX_CLOCK_SKEW:
        t.report(
            "max_clock_skew",
            f"must be at most 4m (two hosts may differ by twice it, and a shared catalogue's "
            f"claims last 10m), got {quote(str(t.data['max_clock_skew']))}",
        )
        return default
    return skew


def _audit(t: Table) -> AuditSettings:
    d = AuditSettings()
    size = t.size("rotate_size", d.rotate_size)
    if size < MIN_ROTATE_SIZE:
        t.report("rotate_size", f"must be at least 64KiB, got {quote(str(t.data['rotate_size']))}")
        size = d.rotate_size
    compress: tuple[AuditCompression, ...] = ("none", "gzip")
    settings = AuditSettings(size, t.choice("compress", compress, d.compress))
    t.finish()
    return settings
