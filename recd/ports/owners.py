"""Which node serves a source that only one node may serve at a time (issue 18).

An S3 source, and a directory source marked ``shared`` (an NFS export several nodes see), is
scanned, watched and swept by one node at a time among those its ``nodes`` list, so that two
nodes never list one bucket or walk one export together. ``SourceOwners`` is that choice, as
this node sees it. On one host (the SQLite catalogue) this node serves every source. On a
shared catalogue a node serves a source while it holds that source's lock in the database; the
lock goes with the node's session, so when a node dies or loses the database another takes
the source over at its next ``serve``.

Which sources a node may serve at all (``source.nodes``) is configuration, not this port: see
``SourceConfig.on_node``.
"""

from __future__ import annotations

from typing import Protocol


class SourceOwners(Protocol):
    """This node's share of the one-at-a-time sources."""

    def serve(self, source: str) -> bool:
        """Whether this node serves ``source`` now: True while it holds the source, else an
        attempt to take it, which fails while another node holds it. Cheap enough to ask every
        scan cycle and before every sweep; False when the database cannot be reached.
        Raises ``NodeInUse`` when this node's session was lost and, opened again, finds
        another recd holding this node's name (the daemon then waits as for the server)."""

    def release(self, source: str) -> None:
        """Let another node take ``source`` (this node stops serving it, or the source was
        removed from the configuration). Nothing when this node does not hold it."""

    def close(self) -> None:
        """Release every source this node holds."""
