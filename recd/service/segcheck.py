"""At start: did a closed segment of the audit log change since recd checked it?

The live log is checked from the catalogue's checkpoint (``recd.service.logcheck``); the closed
segments beside it from the prints the catalogue keeps (``recd.core.segcheck``): a segment
whose file did not change is trusted without being read, so a start reads only the segments
closed (or compressed) since the last one, and any segment changed since. The prints are kept
after a check that found nothing, and after an administrator acknowledges a problem.
"""

from __future__ import annotations

import logging
import os.path
from collections.abc import Callable
from dataclasses import dataclass, replace

from recd.core.audit import AuditEntry, link_problem
from recd.core.logcheck import Finding
from recd.core.segcheck import (
    ORIGIN,
    Ends,
    Print,
    Prints,
    Stat,
    entry_problem,
    gone,
    link_between,
    unchanged,
)
from recd.errors import AuditCorrupt
from recd.ports.audit import AuditLog

logger = logging.getLogger(__name__)

PROGRESS = 64  # segments read between two progress reports


@dataclass(frozen=True, slots=True)
class SegmentState:
    """What the check found: the first problem (erase nothing), the prints of the segments
    there now (to keep once nothing is wrong), and how many segments were read."""

    problem: Finding | None
    prints: Prints
    verified: int


def check_segments(
    path: str,
    audit: AuditLog,
    known: Prints | None,
    progress: Callable[[str], None] = lambda status: None,
) -> SegmentState:
    """Check the closed segments beside the live log ``path`` against ``known`` (None: every
    segment is read). ``progress`` is told (a ``STATUS=`` line) before segments are read,
    and again every ``PROGRESS`` of them."""
    where = os.path.dirname(path) or "."
    found = audit.segment_files()
    problems = gone(where, found, known)
    kept = {} if known is None else known.segments
    reread = {s.name for s in found if not unchanged(s, kept.get(s.name))}
    files: list[tuple[Stat, Ends, bool]] = []  # each segment, its ends, read again or not
    verified = 0
    for stat in found:
        if stat.name not in reread:
            files.append((stat, kept[stat.name].ends, False))
            continue
        if verified % PROGRESS == 0:
            progress(
                f"checking the audit log: {verified} of {len(reread)} closed segments "
                "read (new or changed since the last check)"
            )
        verified += 1
        ends, fault = _verify(audit, stat, os.path.join(where, stat.name))
        problems += _some(fault)
        files.append((stat, ends, True))
    live = _live(audit)
    seen = None if live is None else (live.seq, live.prev, audit.live_start())
    if seen is not None:  # the live log continues the last segment
        changed = known is None or known.live != seen
        files.append(
            (Stat(os.path.basename(path), seen[0], 0, 0, 0, 0), Ends(*seen, 0, "", 0), changed)
        )
    problems += _links(where, files)
    prints = {stat.name: Print(stat, ends) for stat, ends, _ in files[: len(found)]}
    if verified:
        logger.info(
            "audit log: %d of %d closed segments read (new or changed since the last check)",
            verified,
            len(found),
        )
    return SegmentState(problems[0] if problems else None, Prints(prints, seen), verified)


def _links(where: str, files: list[tuple[Stat, Ends, bool]]) -> list[Finding]:
    """Whether each file continues the one before it, checked where one of the two was read
    again (named after that one). A link that does not hold is recorded as the later file
    sees it, so that once acknowledged it is not found again when a neighbour is read."""
    problems = []
    before: tuple[Stat | None, Ends, bool] = (None, ORIGIN, False)
    for i, (stat, ends, fresh) in enumerate(files):
        if fresh or before[2]:
            named = stat if fresh or before[0] is None else before[0]
            problem = link_between(before[1], ends, os.path.join(where, named.name))
            if problem is not None and i:
                files[i - 1] = (
                    files[i - 1][0],
                    replace(before[1], last=ends.first - 1, hash=ends.prev, end=ends.start),
                    before[2],
                )
            problems += _some(problem)
        before = (stat, ends, fresh)
    return problems


def _some(problem: Finding | None) -> list[Finding]:
    return [] if problem is None else [problem]


def _live(audit: AuditLog) -> AuditEntry | None:
    """The live log's first intact entry (None for an empty log)."""
    try:
        return next(audit.read_from(audit.live_start(), skip_damaged=True), None)
    except (ValueError, AuditCorrupt):
        return None  # the live log's own check says what is wrong with it


def _verify(audit: AuditLog, stat: Stat, name: str) -> tuple[Ends, Finding | None]:
    """Read segment ``stat`` entry by entry: its range, each entry's seal and link. Its ends
    (as far as they could be read) and the first problem."""
    first: AuditEntry | None = None
    last: AuditEntry | None = None
    size = 0
    fault: Finding | None = None
    try:
        for entry, read in audit.read_segment(stat.name):
            first, size = first or entry, read
            reason = None if last is None else link_problem(entry, last.seq, last.hash)
            if fault is None and reason is not None:
                fault = entry_problem(name, entry.seq if last is None else last.seq + 1, reason)
            last = entry
    except (AuditCorrupt, OSError) as exc:
        seq = stat.first if last is None else last.seq + 1
        fault = fault or entry_problem(name, seq, str(exc).removeprefix(f"{name}: "))
    if first is None or last is None:
        fault = fault or entry_problem(name, stat.first, "the segment holds no entry")
        return Ends(stat.first, "", -1, stat.last, "", -1), fault
    start = 0 if first.seq == 1 else _offset(first)
    ends = Ends(first.seq, first.prev, start, last.seq, last.hash, start + size)
    if fault is None and (first.seq, last.seq) != (stat.first, stat.last):
        fault = entry_problem(
            name,
            stat.first if first.seq != stat.first else last.seq,
            f"it holds entries {first.seq}-{last.seq}, its name says {stat.first}-{stat.last}",
        )
    return ends, fault


def _offset(first: AuditEntry) -> int:
    """Where a segment after the first starts in the chain (its ``audit.rotated`` entry)."""
    offset = first.details.get("offset")
    return offset if type(offset) is int else -1
