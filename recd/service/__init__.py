"""Use cases, the only writer of the catalogue and the audit log.

Lives here: ``indexing`` (scan and classify a source), ``policies`` (deadlines in step with
retention), ``sweep`` (erase what is due), ``plan`` (the one erase planner of sweeps and
request runs) and ``batch`` (one audited batch of erasures), ``recovery`` (interrupted erases
at start), ``holds``, ``requests``, ``requestruns`` and ``certificates`` (early-deletion
requests), ``breakers``, ``mirror`` (holds mirrored as S3 legal holds), and the start-up checks
against the audit log: ``logcheck``, ``segcheck``, ``rebuild`` and ``rebuildrequests``;
``duty`` says which sources this node serves (scans and sweeps leave the others alone).
``EraseUseCase`` below is what every use case that erases is given.

Invariants: an intent is durable (catalogue and audit log) before every irreversible erase;
nothing is erased without an audit entry. May import ``recd.ports``, ``recd.config``,
``recd.core`` and ``recd.errors``; never an adapter: each use case is given the port roles it
uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from recd.config.load import Config
from recd.ports.audit import AuditLog
from recd.ports.clock import NO_TELEMETRY, Clock, Telemetry
from recd.ports.eraser import Eraser
from recd.ports.sweeping import SweepCatalogue

#: The catalogue role a use case erases through: the sweep's, or a wider one (request runs).
C_co = TypeVar("C_co", bound=SweepCatalogue, covariant=True)


class EraseUseCase(Generic[C_co]):
    """What the use cases that erase (sweep, recovery, request runs) are given: the
    configuration and ports, the catalogue as the role ``C_co`` the use case needs."""

    def __init__(  # noqa: PLR0913 (serves: keyword-only, the shared catalogue's)
        self,
        config: Config,
        catalogue: C_co,
        audit: AuditLog,
        clock: Clock,
        erasers: Mapping[str, Eraser],
        telemetry: Telemetry = NO_TELEMETRY,
        reindex: Callable[[str, str], object] | None = None,
        *,
        serves: Callable[[str], bool] | None = None,
    ) -> None:
        self.config = config
        self.catalogue = catalogue
        self.audit = audit
        self.clock = clock
        self.erasers = erasers
        self.telemetry = telemetry
        #: Index one file (source, relpath) again, whatever the catalogue holds: called when a
        #: prepare finds the file changed (``Changed``); None: the next scan does it.
        self.reindex = reindex
        #: Whether this node serves a source now (``duty.Duty.serves``): the sweep claims no
        #: recording of a source it does not serve. None: every source.
        self.serves = serves
