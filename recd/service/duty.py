"""Which configured sources this node serves now: the one question every scan and sweep asks
before it touches a source (issue 18).

A source whose ``nodes`` does not list this node (``daemon.node``) is never served here: it is
not scanned, watched, indexed or swept, and none of its recordings is claimed (another node
erases them; on one host nobody does, and recd says so at start). A one-at-a-time source (S3,
or a ``shared`` directory) is served while this node holds it (``SourceOwners``); a source
that is neither is served by every node it lists. A name no source has is "served": what is
done with a recording of a source no longer configured is the caller's business (the sweep
keeps it, saying why).

``erases`` is what the sweep and the takeover of dead nodes' erases ask: an S3 source is
listed by one node at a time but erased by every node it lists, each due key by the node that
claims it (a key is the same object seen from any host, so the work divides); a ``shared``
directory is erased only by the node that serves it (another host's view of an NFS file has
another device number, so the identity checks of an erase would refuse it there).

``serving`` says, for status and metrics, what the last ``serves`` found (``Serving``) without
asking ``owners`` again: asking may take a source, which only the loop does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from recd.config.types import Config
from recd.ports.owners import SourceOwners


class Serving(enum.StrEnum):
    """Whether this node serves a source, as ``recctl status`` and the metrics show it."""

    SERVED = "served"
    NOT_LISTED = "not-listed"  # its nodes leave this node out
    ELSEWHERE = "elsewhere"  # one at a time: another node holds it (or the database is gone)
    UNKNOWN = "unknown"  # one at a time, not asked about yet


class Duty:
    """This node's duty among the sources of ``config``, ``owners`` deciding the shared ones."""

    def __init__(self, config: Config, owners: SourceOwners) -> None:
        self.node = config.daemon.node
        self.owners = owners
        self._sources = {s.name: s for s in config.sources}
        self._answers: dict[str, bool] = {}  # one-at-a-time source -> the last serve's answer

    def listed(self, name: str) -> bool:
        """Whether this node may serve source ``name`` at all (its ``nodes`` lists the node)."""
        source = self._sources.get(name)
        return source is None or source.on_node(self.node)

    def serves(self, name: str) -> bool:
        """Whether this node serves source ``name`` now (asks ``owners`` for a shared one)."""
        source = self._sources.get(name)
        if source is None:
            return True
        if not source.on_node(self.node):
            return False
        if not source.one_at_a_time:
            return True
        served = self._answers[name] = self.owners.serve(name)
        return served

    def erases(self, name: str) -> bool:
        """Whether this node erases due recordings of source ``name`` now (see the module)."""
        source = self._sources.get(name)
        if source is not None and source.type == "s3" and source.on_node(self.node):
            return True
        return self.serves(name)

    def serving(self, name: str) -> Serving:
        """Whether this node serves source ``name``, as the last ``serves`` found for a
        one-at-a-time source (``UNKNOWN`` before it was asked); ``owners`` is not asked."""
        source = self._sources.get(name)
        if source is None:
            return Serving.SERVED
        if not source.on_node(self.node):
            return Serving.NOT_LISTED
        if not source.one_at_a_time:
            return Serving.SERVED
        answer = self._answers.get(name)
        if answer is None:
            return Serving.UNKNOWN
        return Serving.SERVED if answer else Serving.ELSEWHERE

    def served(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` this node serves now, in their order."""
        return [name for name in names if self.serves(name)]
