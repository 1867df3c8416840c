"""Typed construction of every adapter the daemon and `recd --once` run on.

One small factory per adapter, each returning the port it implements, so mypy checks every
construction (nobody picks recd's adapters by name: a string registry would only lose types).
Each factory imports its adapter inside the function: ``boto3`` is loaded only when an S3
source is configured (``s3_adapters``) and ``mutagen`` only for ``tags = true``
(``tag_reader``). The adapters' own modules are named here for the type checker only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from recd.config.types import AuditSettings, Config, SourceConfig
from recd.ports.audit import AuditLog
from recd.ports.catalogue import Catalogue
from recd.ports.clock import Clock
from recd.ports.eraser import Eraser
from recd.ports.owners import SourceOwners
from recd.ports.reader import CatalogueCopier, CatalogueReader
from recd.ports.source import Source, TagReader, Watcher, WatchEvent

if TYPE_CHECKING:
    from recd.adapters.local.safefs import RootPins
    from recd.adapters.s3.eraser import S3Eraser


def system_clock() -> Clock:
    """The real clock: UTC wall time and monotonic time."""
    from recd.adapters.clock import SystemClock

    return SystemClock()


def root_pins() -> RootPins:
    """What one run (a daemon's life, one ``--once``) knows of its directory sources' roots."""
    from recd.adapters.local.safefs import RootPins

    return RootPins()


def sole_node() -> SourceOwners:
    """Which sources this host serves with the SQLite catalogue: every one (one host)."""
    from recd.adapters.sqlite.owners import SoleNode

    return SoleNode()


def shared_state(url: str, node: str) -> tuple[AuditLog, Catalogue, SourceOwners]:
    """The audit chain, the catalogue and the sources' owners in the PostgreSQL database
    ``url`` names, as the node ``node``; what was opened is closed if a later part fails.
    The only place psycopg is imported from for the daemon (``[catalogue] url`` set).
    Raises ``CatalogueUnreachable`` (the server, or ``NodeInUse``: another recd runs as
    ``node``) or ``StateError`` (its schema)."""
    from recd.adapters.postgres.audit import PostgresAuditLog
    from recd.adapters.postgres.catalogue import PostgresCatalogue
    from recd.adapters.postgres.owners import AdvisoryOwners

    # The owners first: their session holds this node's name, so that a second host given
    # the same daemon.node stops here (NodeInUse) before its catalogue drops this node's claims.
    owners = AdvisoryOwners(url, node=node)
    try:
        catalogue = PostgresCatalogue(url, node=node)  # creates or migrates the schema
        try:
            audit = PostgresAuditLog(url, node=node, writer=catalogue)  # recd.ports.together
        except BaseException:
            catalogue.close()
            raise
    except BaseException:
        owners.close()
        raise
    return audit, catalogue, owners


def open_catalogue_file(path: Path, *, quick_check: bool = True) -> Catalogue:
    """The SQLite catalogue at ``path``. Raises ``CatalogueCorrupt`` or ``StateError``."""
    from recd.adapters.sqlite.catalogue import SqliteCatalogue

    return SqliteCatalogue(path, quick_check=quick_check)


def move_catalogue_aside(path: Path, now: datetime) -> Path:
    """Rename a corrupt catalogue (and its journals) aside; where it went."""
    from recd.adapters.sqlite.corrupt import move_aside

    return move_aside(path, now)


def open_reader(config: Config) -> CatalogueReader:
    """A read-only connection to the catalogue ``config`` names (the SQLite file in
    ``daemon.state_dir``, or the PostgreSQL database), beside the writer."""
    if config.catalogue.url is not None:
        from recd.adapters.postgres.reader import PostgresReader

        return PostgresReader(config.catalogue.url.text)
    from recd.adapters.sqlite.reader import SqliteReader

    return SqliteReader(config.daemon.state_dir / "catalog.db")


def open_copier(path: Path) -> CatalogueCopier:
    """The online backup of the catalogue at ``path`` (`recctl backup`)."""
    from recd.adapters.sqlite.reader import SqliteReader

    return SqliteReader(path)


def open_audit_log(path: Path, now: datetime, settings: AuditSettings) -> AuditLog:
    """The audit log at ``path``, locked for this process (``now``: UTC, for a rotation)."""
    from recd.adapters.auditlog.log import FileAuditLog

    return FileAuditLog.open(path, now, settings)


def directory_source(name: str, root: Path, *, exclude: tuple[Path, ...], pins: RootPins) -> Source:
    """A ``type = "directory"`` source below ``root``, skipping the directories ``exclude``."""
    from recd.adapters.local.directory import DirectorySource

    return DirectorySource(name, root, exclude=exclude, pins=pins)


def local_eraser(root: Path, *, pins: RootPins, effectiveness: bool = True) -> Eraser:
    """The eraser of a directory source's ``root``; ``effectiveness`` False (the method is
    unlink) skips the probes that only matter to an overwrite."""
    from recd.adapters.local.erase import LocalEraser

    return LocalEraser(root, pins=pins, effectiveness=effectiveness)


def s3_adapters(name: str, config: SourceConfig) -> tuple[Source, S3Eraser]:
    """A ``type = "s3"`` source's lister and eraser (also its ``ObjectStore``), sharing one
    client. The only place boto3 is imported from."""
    from recd.adapters.s3.client import make_client
    from recd.adapters.s3.eraser import S3Eraser
    from recd.adapters.s3.source import S3Source

    client = make_client(config)
    return S3Source(name, config, client), S3Eraser(name, config, client)


def tag_reader() -> TagReader:
    """Audio tags through mutagen. The only place mutagen is imported from."""
    from recd.adapters.tags import MutagenTagReader

    return MutagenTagReader()


def tree_watcher(
    name: str, root: Path, sink: Callable[[WatchEvent], None], *, exclude: Sequence[Path]
) -> Watcher:
    """inotify on a directory source's tree, handing events to ``sink`` from its thread."""
    from recd.adapters.local.watch import TreeWatcher

    return TreeWatcher(name, root, sink, exclude=exclude)
