"""``Together``: a catalogue's change and its audit entry, committed as one or not at all.

A use case that records one decision changes the catalogue and appends the entry that audits
it (a hold placed and ``hold.placed``). On one host (SQLite) the audit log is a file beside
the catalogue and each commits on its own, as before: ``together`` does nothing there. On a
shared PostgreSQL catalogue the audit log writes through the catalogue's connection, and
``together`` is one transaction around both, so a crash, a lost connection or a failed append
leaves neither: no change without its entry, no entry without its change. Nothing slow (an
erase, a request to S3) runs inside: an append holds the chain's lock until the commit, and
every host waits for it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Together(Protocol):
    """A catalogue that commits a block of writes, and the audit entries appended through it,
    together."""

    def together(self) -> AbstractContextManager[None]:
        """What is written inside, to this catalogue and to an audit log that writes through
        it, commits as one transaction when the block ends, or not at all when it raises (the
        exception then propagates unchanged). A block inside another is part of it (undoing
        only its own writes when it raises). A catalogue whose audit log is kept apart
        (SQLite: a file) commits each write as it returns."""
