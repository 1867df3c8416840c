"""The one erase planner: open and check a batch of recordings, decide each, describe its erase.

Sweeps and request runs both plan through ``plan_batch``: each eraser opens its recordings at
once (S3 lists the keys in one walk), ``recd.core.erasure.decide`` judges each opened file, and
what may be erased becomes a ``Plan`` whose details are what its ``erase.intent`` and
``erase.done`` entries will say. Nothing is touched and nothing is audited here: a recording
that is not planned comes back as an ``Unplanned`` with why, in the order it was opened, and
the caller words and audits it by its own rules. The only write is the catalogue's mark of a
recording found gone. Every opened file that is not planned is closed before this returns.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recd.config.load import Config
from recd.core.audit import location_details
from recd.core.erasure import Action, decide
from recd.core.model import Recording
from recd.core.times import format_time
from recd.errors import os_reason
from recd.ports.eraser import Changed, EraseError, Eraser, EraseTarget, Gone, PreparedErase
from recd.ports.sweeping import SweepCatalogue
from recd.service import EraseUseCase
from recd.service.batch import Plan, by_eraser, method_details


class Setback(enum.StrEnum):
    """Why a candidate was not planned."""

    GONE = "gone"  # no longer there: marked missing
    CHANGED = "changed"  # another file at the name now: to be indexed again, never erased
    REFUSED = "refused"  # the eraser refused it (a link, another root...)
    UNLISTED = "unlisted"  # the eraser could not look (an S3 listing failed)
    WAIT = "wait"  # the erase rules say not yet (``Action.SKIP``)
    REFUSE = "refuse"  # the erase rules refuse it (``Action.REFUSE``)
    UNHASHED = "unhashed"  # its SHA-256 could not be read (request runs only)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A recording to plan: its eraser, its licence label and the reason it is erased."""

    rec: Recording
    label: str  # the licence, for reports
    reason: str  # "retention" or "request:<id>", as the audit entries say
    eraser: Eraser


@dataclass(frozen=True, slots=True)
class Unplanned:
    candidate: Candidate
    setback: Setback
    why: str  # one line: the eraser's reason, the rule's reason or the system error

    @property
    def rec(self) -> Recording:
        return self.candidate.rec

    @property
    def label(self) -> str:
        return self.candidate.label


def plan_batch(
    uc: EraseUseCase[SweepCatalogue],
    candidates: Sequence[Candidate],
    now: datetime,
    roots: Mapping[str, str],
    *,
    digest: bool = False,
) -> list[Plan | Unplanned]:
    """Each candidate planned or not, eraser by eraser; ``digest``: read each file's SHA-256
    first (its ``sha256`` detail), as a request's certificate needs."""
    out: list[Plan | Unplanned] = []
    for eraser, group in by_eraser(candidates, lambda c: c.eraser):
        targets = [
            EraseTarget(c.rec.relpath, c.rec.dev, c.rec.ino, c.rec.size, c.rec.stamps)
            for c in group
        ]
        for c, opened in zip(group, eraser.prepare_many(targets), strict=True):
            out.append(_plan(uc, c, opened, now, roots, digest))
    return out


def _plan(
    uc: EraseUseCase[SweepCatalogue],
    c: Candidate,
    opened: PreparedErase | EraseError | OSError,
    now: datetime,
    roots: Mapping[str, str],
    digest: bool,
) -> Plan | Unplanned:
    if isinstance(opened, Gone):
        uc.catalogue.mark_missing([c.rec.id])
        return Unplanned(c, Setback.GONE, opened.reason)
    if isinstance(opened, EraseError):
        setback = Setback.CHANGED if isinstance(opened, Changed) else Setback.REFUSED
        return Unplanned(c, setback, opened.reason)
    if isinstance(opened, OSError):
        return Unplanned(c, Setback.UNLISTED, os_reason(opened))
    decision = decide(opened.facts, uc.config.erase, now)
    if decision.action is not Action.ERASE:
        opened.close()
        setback = Setback.REFUSE if decision.action is Action.REFUSE else Setback.WAIT
        return Unplanned(c, setback, decision.reason or str(decision.action))
    details = erase_details(roots, c.rec, c.reason)
    if digest:
        try:
            details["sha256"] = c.eraser.digest(opened)
        except (EraseError, OSError) as exc:
            opened.close()
            return Unplanned(c, Setback.UNHASHED, why(exc))
    details |= method_details(str(decision.method), decision.effective, decision.reason)
    details |= opened.details  # S3: the versions, each with its SHA-256
    return Plan(c.rec, c.label, c.eraser, opened, decision, details)


def why(exc: EraseError | OSError) -> str:
    """One line for an erase that did not happen: the eraser's reason, or the system's."""
    return exc.reason if isinstance(exc, EraseError) else os_reason(exc)


def source_roots(config: Config) -> dict[str, str]:
    """Each source's root, as text, for ``location_of``: a directory, or ``s3://bucket``
    (an S3 recording's relpath is its whole key)."""
    roots = {s.name: str(s.path).rstrip("/") for s in config.sources if s.path is not None}
    roots |= {s.name: f"s3://{s.bucket}" for s in config.sources if s.bucket is not None}
    return roots


def location_of(roots: Mapping[str, str], rec: Recording) -> str:
    """Where a recording is, for people: the full path (``source:key`` where no path)."""
    root = roots.get(rec.source)
    return f"{rec.source}:{rec.relpath}" if root is None else f"{root}/{rec.relpath}"


def erase_details(roots: Mapping[str, str], rec: Recording, reason: str) -> dict[str, Any]:
    """The audit details every erase entry of ``rec`` carries (SPEC section 8)."""
    details: dict[str, Any] = {
        **location_details(location_of(roots, rec)),
        "licence": rec.classification.licence,
        "size": rec.size,
        "reason": reason,
    }
    if rec.deadline is not None:
        details["deadline"] = format_time(rec.deadline)
    return details
