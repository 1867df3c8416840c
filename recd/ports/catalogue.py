"""``Catalogue``: every catalogue role in one, for the composition root.

The index of every recording (facts, classification, deadline, state), the intents, breakers,
holds, requests, S3 mirrors and audit marks. Only ``recd.daemon`` (which opens it and hands each
use case its role) names this whole Protocol; a use case annotates with the role it uses
(``recd.ports.scanning``, ``sweeping``, ``legal``, ``marks``), so a second implementation
(PostgreSQL) is held to each role by the contract suites in ``tests/contracts``.
"""

from __future__ import annotations

from typing import Protocol

from recd.ports.legal import HoldCatalogue, MirrorCatalogue, RequestCatalogue
from recd.ports.marks import RebuildCatalogue
from recd.ports.scanning import IndexingCatalogue, PolicyCatalogue
from recd.ports.sweeping import SweepCatalogue


class Catalogue(
    IndexingCatalogue,
    PolicyCatalogue,
    SweepCatalogue,
    HoldCatalogue,
    RequestCatalogue,
    MirrorCatalogue,
    RebuildCatalogue,
    Protocol,
):
    """The writer's catalogue: every role; writes are durable when the call returns."""

    def close(self) -> None:
        """Release the catalogue file (its connection); nothing may be called after."""
