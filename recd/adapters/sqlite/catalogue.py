"""The catalogue on SQLite: WAL, synchronous=FULL, one writer connection, versioned schema.

Times are stored as integer microseconds since the Unix epoch (UTC); a NULL deadline means the
recording has none (retention ``never``, or unclassified and kept). The service is the only
writer; readers (``recd.adapters.sqlite.reader``) open their own read-only connections, which
WAL allows.

This module opens, checks and migrates the file; the methods live with their role in the
mixins ``indexing``, ``sweeping``, ``holding``, ``auditmarks``, ``requesting`` and
``mirroring``, over the shared ``store``.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from recd.adapters._rows import from_us, to_us
from recd.adapters.sqlite.auditmarks import AuditMarks
from recd.adapters.sqlite.corrupt import FAILURES, check, corruption, guarded, move_aside
from recd.adapters.sqlite.holding import Holding
from recd.adapters.sqlite.indexing import Indexing
from recd.adapters.sqlite.mirroring import Mirroring
from recd.adapters.sqlite.queries import register_functions
from recd.adapters.sqlite.requesting import Requesting
from recd.adapters.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from recd.adapters.sqlite.sweeping import Sweeping
from recd.errors import CatalogueCorrupt, StateError

__all__ = ["SCHEMA_VERSION", "SqliteCatalogue", "from_us", "move_aside", "to_us"]

logger = logging.getLogger(__name__)


@guarded
class SqliteCatalogue(Indexing, Sweeping, Holding, AuditMarks, Requesting, Mirroring):
    """The catalogue in ``<state_dir>/catalog.db``.

    Opening it checks it (``recd.adapters.sqlite.corrupt``): a corrupt file raises
    ``CatalogueCorrupt``, as does any method that meets a corrupt page or row later.
    ``quick_check``: run ``PRAGMA quick_check`` at open (cheap next to a start's scan).
    Its methods are grouped by role in the mixins it is made of.
    """

    def __init__(self, path: Path, *, quick_check: bool = True) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: cannot open the catalogue: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            # 32 MiB of page cache: ids are hashes, so inserts land all over the B-tree.
            self._db.execute("PRAGMA cache_size=-32768")
            check(self._db, path, quick_check=quick_check)
            self._migrate()
            if built := self.build_indexes():  # a first index was interrupted: finish it
                logger.warning("catalogue %s: built the missing indexes %s", path, built)
            register_functions(self._db)
            self._load_holds()
            self.audit_mark()  # a mark that does not decode is found now, not mid-start
        except FAILURES as exc:
            problem = corruption(path, exc, self._db)
            self._db.close()
            if problem is not None:
                raise CatalogueCorrupt(str(path), problem) from exc
            raise StateError(f"{path}: cannot open the catalogue: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: catalogue schema {version} is newer than this recd "
                f"understands ({SCHEMA_VERSION}); upgrade recd"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits any open transaction first, so the script carries its own.
            self._db.executescript(
                f"BEGIN IMMEDIATE;{MIGRATIONS[target]}PRAGMA user_version={target};COMMIT;"
            )
