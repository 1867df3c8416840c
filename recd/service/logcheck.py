"""At start: does the audit log verify, and where does the catalogue stand in it?

The chain is checked from the catalogue's checkpoint (``AuditCheckpoint``): the entries after
it are parsed and linked (``recd.core.audit.link_problem``); the bytes before it are only
hashed, in the same pass that hashes the whole file for the next checkpoint, and compared with
the digest kept. So a change anywhere before the checkpoint is still found (then the whole
chain is verified to name the first bad entry), for the price of a SHA-256 over the file
rather than a JSON parse of every entry. A catalogue without a checkpoint (lost, older) has
the whole log verified. The checkpoint moves to the log's end after a check that found nothing.

Then the catalogue's audit mark is looked up in the log (``recd.core.logcheck``): ahead of the
log, or at an entry with another hash, is a problem; behind it, the entries after the mark are
to be replayed (``recd.service.rebuild``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from recd.core.audit import GENESIS, AuditEntry, link_problem
from recd.core.logcheck import Finding, chain_finding, cut_finding, mark_finding, rewritten_finding
from recd.errors import AuditCorrupt
from recd.ports.audit import AuditLog
from recd.ports.records import AuditCheckpoint, AuditMark

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogState:
    """What the check found: a problem (erase nothing), or where to replay from."""

    problem: Finding | None
    checkpoint: AuditCheckpoint | None  # the log's end, to keep when there is no problem
    checked: int  # entries parsed and linked (the rest only hashed)


def check_chain(path: str, audit: AuditLog, checkpoint: AuditCheckpoint | None) -> LogState:
    """Verify the log from ``checkpoint`` (the whole log without one)."""
    end = audit.end_offset()
    if checkpoint is not None and checkpoint.offset > end:
        return LogState(cut_finding(path, end, checkpoint.seq, checkpoint.offset), None, 0)
    base = audit.live_start()
    if checkpoint is not None and checkpoint.start != base:
        # Rotated since: the checkpoint lies in a closed segment (checked when it was live).
        # Parse from it through the rest of that segment and the live log.
        return _verify(
            path,
            audit,
            (checkpoint.seq, checkpoint.hash, checkpoint.offset),
            audit.digests([end])[-1],
        )
    ends = [end] if checkpoint is None else [checkpoint.offset, end]
    start = (0, GENESIS, 0)
    digests = audit.digests(ends)
    if checkpoint is not None:
        if digests[0] == checkpoint.digest:
            start = (checkpoint.seq, checkpoint.hash, checkpoint.offset)
        else:
            whole = _verify(path, audit, (0, GENESIS, 0))
            problem = whole.problem or rewritten_finding(path, checkpoint.seq)
            return LogState(problem, None, whole.checked)
    return _verify(path, audit, start, digests[-1])


def _verify(
    path: str, audit: AuditLog, start: tuple[int, str, int], digest: str | None = None
) -> LogState:
    seq, prev, offset = start
    checked = 0
    try:
        for entry in audit.read_from(offset):
            reason = link_problem(entry, seq, prev)
            if reason is not None:
                return LogState(chain_finding(path, seq + 1, reason), None, checked)
            seq, prev = entry.seq, entry.hash
            checked += 1
    except AuditCorrupt as exc:
        return LogState(chain_finding(path, seq + 1, _reason(str(exc), path)), None, checked)
    end = audit.end_offset()
    last = (
        None
        if seq == 0 or digest is None
        else AuditCheckpoint(seq, prev, end, digest, audit.live_start())
    )
    return LogState(None, last, checked)


def _reason(message: str, path: str) -> str:
    return message.removeprefix(f"{path}: ")


def find_mark(path: str, audit: AuditLog, mark: AuditMark) -> Finding | None:
    """Whether the log holds the catalogue's marked entry (None: it does, or the mark is an
    older recd's, with no position)."""
    if mark.seq is None:
        return None
    last = audit.last()
    last_seq = 0 if last is None else last.seq
    found = None
    if 0 < mark.seq <= last_seq:
        found = _hash_at(audit, mark.seq, mark.offset)
    return mark_finding(path, mark.seq, mark.hash, last_seq, found)


def _hash_at(audit: AuditLog, seq: int, offset: int | None) -> str | None:
    """The hash of entry ``seq`` (``offset``: where the entry after it begins, if known)."""
    last = audit.last()
    if last is not None and last.seq == seq:
        return last.hash
    if offset is not None:
        try:
            first = next(audit.read_from(offset, skip_damaged=True), None)
        except ValueError:
            first = None
        if first is not None and first.seq == seq + 1:
            return first.prev
    for entry in audit.read_from(0, skip_damaged=True):
        if entry.seq == seq:
            return entry.hash
    return None


def after_mark(audit: AuditLog, mark: AuditMark | None) -> Iterator[tuple[AuditEntry, bool]]:
    """The entries after ``mark`` (all of them without one), in order, each with whether the
    chain from the mark holds up to it. Damaged entries are left out; from the first entry
    that does not link (one changed, removed, reordered or damaged before it) on, every entry
    comes with False: intact in itself, but not vouched for by the chain."""
    seq = 0 if mark is None or mark.seq is None else mark.seq
    prev = GENESIS if mark is None or not seq or mark.hash is None else mark.hash
    offset = 0
    if mark is not None and mark.offset is not None and seq:
        offset = mark.offset
        try:
            first = next(audit.read_from(offset, skip_damaged=True), None)
        except ValueError:
            first = None
        if first is None or first.seq != seq + 1:
            offset = 0
    linked = True
    for entry in audit.read_from(offset, skip_damaged=True):
        if linked and entry.seq <= seq:
            continue  # read from the start: up to the mark
        linked = linked and link_problem(entry, seq, prev) is None
        seq, prev = max(seq, entry.seq), entry.hash
        yield entry, linked
