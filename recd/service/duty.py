"""Which configured sources this node serves now: the one question every scan and sweep asks
before it touches a source (issue 18).

A source whose ``nodes`` does not list this node (``daemon.node``) is never served here: it is
not scanned, watched, indexed or swept, and none of its recordings is claimed (another node
erases them; on one host nobody does, and recd says so at start). A one-at-a-time source (S3,
or a ``shared`` directory) is served while this node holds it (``SourceOwners``); a source
that is neither is served by every node it lists. A name no source has is "served" on one
host: what is done with a recording of a source no longer configured is the caller's business
(the sweep keeps it, saying why). On a shared catalogue it is not: a source this host's
recd.toml does not have is another host's (each host may list only its own), so its
recordings are left to the hosts that serve it, neither claimed nor kept with a reason here.

``erases`` is what the sweep and the takeover of dead nodes' erases ask: an S3 source is
listed by one node at a time but erased by every node it lists, each due key by the node that
claims it (a key is the same object seen from any host, so the work divides); a ``shared``
directory is erased only by the node that serves it (another host's view of an NFS file has
another device number, so the identity checks of an erase would refuse it there).

On a shared catalogue every source is held, even a directory source that is not ``shared``
(which the configuration check limits to one node): that one is this host's own disks, so its
lock is free unless another host's recd.toml lists the same source name for another node, or
this node's own recd before a crash still holds it until the database notices. Without the
lock, two hosts would index one source name from two different disks, and each full scan would
mark the other's recordings missing, never to be erased; with it, the second host leaves the
source alone and says why.

``serving`` says, for status and metrics, what the last ``serves`` found (``Serving``) without
asking ``owners`` again: asking may take a source, which only the loop does.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable

from recd.config.types import Config, SourceConfig
from recd.ports.owners import SourceOwners

logger = logging.getLogger(__name__)


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
        self._held_all = config.catalogue.shared  # shared catalogue: hold every source
        self._answers: dict[str, bool] = {}  # held source -> the last serve's answer

    def _held(self, source: SourceConfig) -> bool:
        """Whether ``source`` is served only while this node holds it (``owners``)."""
        return source.one_at_a_time or self._held_all

    def listed(self, name: str) -> bool:
        """Whether this node may serve source ``name`` at all (its ``nodes`` lists the node)."""
        source = self._sources.get(name)
        return source is None or source.on_node(self.node)

    def serves(self, name: str) -> bool:
        """Whether this node serves source ``name`` now (asks ``owners`` for a shared one)."""
        source = self._sources.get(name)
        if source is None:
            return not self._held_all
        if not source.on_node(self.node):
            return False
        if not self._held(source):
            return True
        served = self.owners.serve(name)
        if not (served or source.one_at_a_time or self._answers.get(name) is False):
            logger.warning(
                "source %s: this node (%s) leaves it alone while another recd session holds "
                "it or the database cannot be reached: another host's recd.toml may give this "
                "source to another node (give each host's source its own name), or this "
                "node's recd before a restart still holds it until the database notices it gone",
                name,
                self.node,
            )
        self._answers[name] = served
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
        if not self._held(source):
            return Serving.SERVED
        answer = self._answers.get(name)
        if answer is None:
            return Serving.UNKNOWN
        return Serving.SERVED if answer else Serving.ELSEWHERE

    def served(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` this node serves now, in their order."""
        return [name for name in names if self.serves(name)]
