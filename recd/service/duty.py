"""Which configured sources this node serves now: the one question every scan and sweep asks
before it touches a source (issue 18).

A source whose ``nodes`` does not list this node (``daemon.node``) is never served here: it is
not scanned, watched, indexed or swept, and none of its recordings is claimed (another node
erases them; on one host nobody does, and recd says so at start). A one-at-a-time source (S3,
or a ``shared`` directory) is served while this node holds it (``SourceOwners``); a source
that is neither is served by every node it lists. A name no source has is "served": what is
done with a recording of a source no longer configured is the caller's business (the sweep
keeps it, saying why).
"""

from __future__ import annotations

from collections.abc import Iterable

from recd.config.types import Config
from recd.ports.owners import SourceOwners


class Duty:
    """This node's duty among the sources of ``config``, ``owners`` deciding the shared ones."""

    def __init__(self, config: Config, owners: SourceOwners) -> None:
        self.node = config.daemon.node
        self.owners = owners
        self._sources = {s.name: s for s in config.sources}

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
        return not source.one_at_a_time or self.owners.serve(name)

    def served(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` this node serves now, in their order."""
        return [name for name in names if self.serves(name)]
