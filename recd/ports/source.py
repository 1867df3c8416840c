"""Where recordings come from: ``Source`` (a directory tree or an S3 bucket), its ``Watcher``,
the ``TagReader`` of audio tags and the ``ObjectStore`` settings of an S3 bucket.

A source never changes anything: it lists, stats and opens read-only, never following a
symlink or leaving its root's filesystem. ``relpath`` is '/'-separated and relative to the
root (an S3 source's full object key). Times in ``FileFacts`` are nanoseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal, Protocol, runtime_checkable

from recd.core.model import FileFacts

if TYPE_CHECKING:
    from recd.core.objects import BucketState


@dataclass(frozen=True, slots=True)
class ScanTotals:
    """What the last completed full scan listed: keys with data (recordings), their data
    versions and bytes, and every delete marker under the prefix."""

    objects: int = 0
    versions: int = 0
    delete_markers: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class DirStamp:
    """A directory as a full listing found it (the updatedb idea): while its device, inode,
    mtime and ctime are unchanged it has the same names, so a rescan takes its files from the
    catalogue instead of listing and stat-ing them. ``subdirs``: the names that were
    directories (still entered, and checked, one by one); ``files``/``bytes``: what it held."""

    dev: int
    ino: int
    mtime_ns: int
    ctime_ns: int
    subdirs: tuple[str, ...]
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class DirListing:
    """One directory of a ``DirWalk``: its regular files, or None when it was trusted
    unchanged (``stamp`` is then the stored one); ``stamp`` for a listed directory is the one
    to store, or None when it may not be trusted next time (modified too recently)."""

    relpath: str
    files: list[FileFacts] | None
    stamp: DirStamp | None


@runtime_checkable
class DirWalk(Protocol):
    """A source that can skip directories unchanged since a stamped listing."""

    def scan_dirs(
        self, under: str, known: Callable[[str], DirStamp | None]
    ) -> Iterator[DirListing]:
        """Every directory the walk enters, each with its files (see ``DirListing``), parents
        before children. ``known(relpath)``: the stamp stored for a directory, if any."""


class ScanReport(Protocol):
    """What a finished scan could not see; files below these directories are not 'missing'."""

    @property
    def unreadable_dirs(self) -> Sequence[str]:
        """Relative paths of directories that could not be listed."""


class Source(Protocol):
    """A local directory tree, walked without following symlinks or crossing filesystems, or
    an S3 bucket (and prefix), listed version by version (``relpath`` is then the key)."""

    name: str

    def scan(self, under: str = "") -> Iterator[FileFacts]:
        """Yield every regular file below the root (or below its subdirectory ``under``);
        after exhaustion ``report`` is final.

        The files of one directory are yielded one after another (the indexer reconciles
        each directory against the catalogue as soon as its last file has gone by).
        """

    @property
    def report(self) -> ScanReport:
        """Problems met by the last ``scan`` (unreadable directories)."""

    @property
    def last_scan(self) -> ScanTotals | None:
        """What the last completed full scan of an S3 bucket listed; None before one, after a
        partial one, and always for a directory (which counts nothing)."""

    def facts(self, relpath: str) -> FileFacts | None:
        """The facts of one regular file, or None if it is gone or not one (never follows a
        symlink, never leaves the root's filesystem)."""

    def open_read(self, relpath: str, dev: int, ino: int) -> IO[bytes]:
        """Open the indexed file read-only without following symlinks.

        Raises ``FileNotFoundError`` if the file is gone or is no longer the same inode.
        """

    def metadata(self, relpath: str) -> Mapping[str, str]:
        """S3: the object's ``x-amz-meta-*`` metadata (prefix removed) and object tags, names
        lower-cased, metadata winning a clash; empty for files. Raises ``OSError``."""


class TagReader(Protocol):
    """Audio tags of recordings (``rule.tags``), read through a file the source opened."""

    def read(self, fileobj: IO[bytes], name: str) -> Mapping[str, str]:
        """Audio tags and stream facts of an open file: lower-cased tag names to text values.

        Stream facts use the keys ``duration`` (seconds, as text) and ``format`` (e.g. ``wav``).
        An unreadable or untagged file gives an empty mapping, never an exception.
        """


WatchKind = Literal["changed", "deleted", "dir", "overflow"]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What a watcher saw: a file closed after writing or moved in (``changed``), removed or
    moved away (``deleted``), a directory that appeared or vanished (``dir``: reconcile that
    subtree), or lost events (``overflow``: reconcile the whole source)."""

    source: str
    relpath: str  # relative to the root, '/'-separated; "" for the root / overflow
    kind: WatchKind
    at: float  # time.time() when the event was received (for the indexing-lag metric)


class Watcher(Protocol):
    """Watches one source's tree and hands ``WatchEvent``s to a sink, from its own thread."""

    def start(self) -> bool:
        """True when the whole tree is watched; False when watching is degraded."""

    @property
    def degraded(self) -> str | None:
        """None while watching; else why not (the tree is then scanned periodically)."""

    def stop(self) -> None:
        """Stop watching and join its threads; idempotent, and never called from the sink."""


class ObjectStore(Protocol):
    """What an S3 source offers beside erasing: its bucket's settings and object legal holds."""

    def bucket_state(self) -> BucketState:
        """Versioning and Object Lock defaults. Raises ``OSError`` (``S3Error``)."""

    def legal_holds(self, key: str) -> list[tuple[str, bool]]:
        """Every data version of exactly ``key`` and whether its S3 legal hold is ON."""

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        """Put the S3 legal hold of one version ON or OFF. Raises ``OSError``."""
