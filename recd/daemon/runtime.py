"""Composition: build the adapters a configuration needs; one-shot runs (`recd --once`).

The adapters come from the typed factories of ``recd.daemon.build``, which import each only
when a configuration uses it: mutagen only for sources with ``tags = true``, boto3 only for
S3 sources (one client per S3 source, shared by its lister and its eraser). ``run_once`` is
``recd --once``; the daemon's loop is built on the same runtime.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from recd.config.load import Config
from recd.core.model import EraseMethod
from recd.core.objects import bucket_report
from recd.daemon import build
from recd.daemon.statedir import catalogue_found, prepare_state
from recd.errors import CatalogueCorrupt, StateError, os_reason
from recd.ports.audit import AuditLog
from recd.ports.catalogue import Catalogue
from recd.ports.clock import Clock
from recd.ports.eraser import Eraser
from recd.ports.owners import SourceOwners
from recd.ports.source import ObjectStore, Source, TagReader
from recd.service import rebuild
from recd.service.duty import Duty
from recd.service.indexing import Indexer

if TYPE_CHECKING:
    from recd.adapters.local.safefs import RootPins

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the service runs on; ``close`` releases files and locks."""

    config: Config
    clock: Clock
    catalogue: Catalogue
    audit: AuditLog
    sources: dict[str, Source] = field(default_factory=dict)
    erasers: dict[str, Eraser] = field(default_factory=dict)
    stores: dict[str, ObjectStore] = field(default_factory=dict)  # S3 sources' buckets
    tag_reader: TagReader | None = None
    catalogue_found: str | None = None  # rebuild.MISSING / EMPTY: the file before it was opened
    found_details: dict[str, str] = field(default_factory=dict)  # CORRUPT: aside, error
    owners: SourceOwners = field(default_factory=build.sole_node)

    @functools.cached_property
    def duty(self) -> Duty:  # which sources this node serves now
        return Duty(self.config, self.owners)

    def close(self) -> None:
        for eraser in self.erasers.values():
            eraser.close()
        self.owners.close()
        self.audit.close()
        self.catalogue.close()


def rebuilder(
    runtime: Runtime, progress: Callable[[str], None] = lambda status: None
) -> rebuild.Rebuild:
    """The catalogue checked against the audit log, and rebuilt or replayed from it."""
    return rebuild.Rebuild(
        runtime.config,
        runtime.catalogue,
        runtime.audit,
        runtime.clock,
        runtime.catalogue_found,
        progress,
        runtime.found_details,
    )


def open_catalogue(
    state: Path,
    now: datetime,
    found: str | None,
    corrupt: CatalogueCorrupt | None = None,
    *,
    quick_check: bool = True,
) -> tuple[Catalogue, str | None, dict[str, str]]:
    """The catalogue of ``state`` (after ``prepare_state``), what was found before it was
    opened (``found``, from ``catalogue_found``, or ``rebuild.CORRUPT``) and, for a corrupt
    one, the details of its move.

    A corrupt catalogue (found now, or ``corrupt``: found by a running recd) is moved aside as
    ``catalog.db.corrupt-<UTC time>`` with one error line, and a new one is started: the
    rebuild fills it from the sources and the audit log. Any other failure raises.
    ``quick_check``: run SQLite's ``PRAGMA quick_check`` (at start, not at a reload: up to a
    few seconds on a large catalogue, and the running daemon met every page it reads).
    """
    path = state / "catalog.db"
    if corrupt is None:
        try:
            return build.open_catalogue_file(path, quick_check=quick_check), found, {}
        except CatalogueCorrupt as exc:
            corrupt = exc
    aside = build.move_catalogue_aside(path, now)
    logger.error(
        "%s: the catalogue is corrupt (%s); moved it aside as %s and started a new one, "
        "rebuilt from the sources and the audit log before anything is erased",
        path,
        corrupt.problem,
        aside.name,
    )
    prepare_state(state)  # the new file 0600, as the first one
    details = {"aside": aside.name, "error": corrupt.problem}
    return build.open_catalogue_file(path), rebuild.CORRUPT, details


def open_runtime(
    config: Config,
    clock: Clock,
    pins: RootPins | None = None,
    corrupt: CatalogueCorrupt | None = None,
    *,
    quick_check: bool = True,
) -> Runtime:
    """Open the state directory (``prepare_state``) and build the adapters ``config`` needs.

    ``pins``: what the run knows of its directory sources' roots (``build.root_pins()``, a new
    one when None); the daemon passes the one it keeps for its life, so a reload never
    resolves or pins a root again. ``corrupt``: the catalogue was found corrupt while in use;
    it is moved aside (``open_catalogue``). With ``[catalogue] url`` the catalogue and the
    audit chain are the PostgreSQL database's (``_shared_runtime``); the state directory then
    keeps only the certificates.
    """
    if pins is None:
        pins = build.root_pins()
    state = config.daemon.state_dir
    if config.catalogue.shared:
        runtime = _shared_runtime(config, clock, corrupt)
    else:
        found = catalogue_found(state / "catalog.db")
        prepare_state(state)
        # The audit log first: its lock keeps a second recd from moving a catalogue aside.
        audit = build.open_audit_log(state / "audit.log", clock.now(), config.audit)
        try:
            catalogue, found, details = open_catalogue(
                state, clock.now(), found, corrupt, quick_check=quick_check
            )
        except BaseException:
            audit.close()
            raise
        runtime = Runtime(config, clock, catalogue, audit, catalogue_found=found)
        runtime.found_details = details
    for source in config.sources:
        if not source.on_node(config.daemon.node):
            continue  # another node's: not even its root is looked at (config_warnings)
        if source.type == "s3":
            lister, eraser = build.s3_adapters(source.name, source)
            runtime.sources[source.name] = lister
            runtime.erasers[source.name] = runtime.stores[source.name] = eraser
            continue
        assert source.path is not None
        runtime.sources[source.name] = build.directory_source(
            source.name, source.path, exclude=(state,), pins=pins
        )
        runtime.erasers[source.name] = build.local_eraser(
            source.path, pins=pins, effectiveness=config.erase.method is EraseMethod.OVERWRITE
        )
    if any(s.rule.tags for s in config.sources):
        runtime.tag_reader = build.tag_reader()
    return runtime


def _shared_runtime(config: Config, clock: Clock, corrupt: CatalogueCorrupt | None) -> Runtime:
    """The runtime on the PostgreSQL database ``catalogue.url`` names, shared with recd on
    other hosts. Raises ``CatalogueUnreachable`` while the server cannot be reached (the
    daemon retries; `recd --once` exits 69) and ``StateError`` for a row that does not decode:
    a shared catalogue is never moved aside or rebuilt by one host under the others' feet."""
    assert config.catalogue.url is not None
    if corrupt is not None:
        raise StateError(
            f"{corrupt}; recd does not repair a catalogue other hosts share: stop recd on "
            "every host and restore the database from its last pg_dump (the audit chain "
            "in it rebuilds the holds and requests)"
        )
    prepare_state(config.daemon.state_dir, catalogue_file=False)  # the certificates
    audit, catalogue, owners = build.shared_state(config.catalogue.url.text, config.daemon.node)
    return Runtime(config, clock, catalogue, audit, owners=owners)


#: What to do about a clock found far ahead at start (the daemon; `recd --once` has a flag).
CONFIRM_HINT = "check the clock, then `recctl clock confirm`"
ONCE_CONFIRM_HINT = "check the clock, then run `recd --once --confirm-clock`"
#: What to do about an audit log that does not verify or does not match the catalogue.
ACKNOWLEDGE_HINT = (
    "check it with `recctl audit verify`, then run `recctl audit acknowledge --reason TEXT`"
)
ONCE_ACKNOWLEDGE_HINT = (
    "check it with `recctl audit verify`, then run `recd --once --acknowledge-log REASON`"
)


def report_buckets(runtime: Runtime) -> None:
    """Log each S3 bucket's versioning and Object Lock default; warn where a COMPLIANCE
    default makes early deletion impossible or legal holds cannot be mirrored."""
    for s in runtime.config.sources:
        store = runtime.stores.get(s.name)
        if store is None or s.bucket is None:
            continue
        try:
            state = store.bucket_state()
        except OSError as exc:
            logger.warning(
                "source %s: cannot read the settings of bucket %s: %s (polls will tell)",
                s.name,
                s.bucket,
                os_reason(exc),
            )
            continue
        for warning, line in bucket_report(
            s.name,
            s.bucket,
            state,
            mirror_legal_holds=s.mirror_legal_holds,
            bypass_governance=s.bypass_governance,
        ):
            logger.log(logging.WARNING if warning else logging.INFO, "%s", line)


def reindex(runtime: Runtime, source: str, relpath: str) -> None:
    """Index one file again (a sweep found it changed since it was indexed)."""
    configs = {s.name: s for s in runtime.config.sources}
    found = runtime.sources.get(source)
    if found is not None and source in configs and runtime.duty.serves(source):
        Indexer(
            runtime.config, configs[source], found, runtime.catalogue, runtime.tag_reader
        ).reindex(relpath, runtime.clock.now())


def scan_all(runtime: Runtime) -> bool:
    """Index every source; False if any could not be scanned (reported, others go on)."""
    ok = True
    configs = {s.name: s for s in runtime.config.sources}
    for name in runtime.duty.served(runtime.sources):  # another node scans the others now
        found = runtime.sources[name]
        indexer = Indexer(
            runtime.config, configs[name], found, runtime.catalogue, runtime.tag_reader
        )
        try:
            indexer.run(runtime.clock.now())
        except OSError as exc:
            ok = False
            logger.error("source %s: cannot scan %s: %s", name, exc.filename, os_reason(exc))
    return ok
