"""``SourceOwners`` of one host (the SQLite catalogue): this node serves every source."""

from __future__ import annotations


class SoleNode:
    """The only node there is: it serves every source, and nothing is held or released."""

    def serve(self, source: str) -> bool:
        return True

    def release(self, source: str) -> None:
        return None

    def close(self) -> None:
        return None
