"""The catalogue against the audit log at start (SPEC section 8: the log is the record).

The catalogue keeps an audit mark: the last entry (seq and hash) whose decisions it reflects.
Every entry after the mark may be applied again by a replay, which is idempotent. At start:

- the mark's entry is in the log with the same hash and the log goes on: the catalogue is
  *behind* (restored from a backup, or stopped before its mark moved); the entries after the
  mark are replayed over it;
- the mark is past the log's last entry (the log lost its tail, was deleted or replaced), or
  the log's entry at the mark's seq has another hash (rewritten, or another host's log), or the
  chain does not verify: a *problem*; nothing is erased until an administrator acknowledges it.

Pure: given what was read; no I/O, no clock reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Kinds of problem (``Finding.kind``; the ``audit.problem`` and ``audit.acknowledged`` details).
CHAIN = "chain"  # an entry changed, removed, reordered or damaged
CUT = "cut"  # the log is shorter than what recd checked before (or deleted)
AHEAD = "ahead"  # the catalogue reflects entries the log does not have
OTHER = "other-log"  # the log's entry at the mark's seq has another hash
SEGMENT = "segment"  # a closed segment changed, gone, or not linked to its neighbours


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem between the catalogue and the audit log: ``text`` is one line for an
    operator, ``details`` what the audit entries record."""

    kind: str
    text: str
    details: dict[str, Any] = field(default_factory=dict)


def _short(digest: str | None) -> str:
    return "none" if digest is None else digest[:12]


def cut_finding(path: str, end: int, seq: int, offset: int) -> Finding:
    """The log ends (``end`` bytes) before the entry ``seq`` that ended at ``offset`` when
    recd checked it."""
    if end == 0:
        text = (
            f"{path} is empty, but recd checked it up to entry {seq} before: "
            "it was deleted, emptied or replaced"
        )
    else:
        text = (
            f"{path} ends at byte {end}, before entry {seq} (byte {offset}) that recd checked "
            "before: entries were removed from its end, or it was replaced"
        )
    return Finding(CUT, text, {"log_bytes": end, "checked_seq": seq, "checked_offset": offset})


def chain_finding(path: str, seq: int, reason: str) -> Finding:
    """The chain breaks at entry ``seq`` (the one that should be there)."""
    return Finding(
        CHAIN,
        f"{path}: entry {seq} does not verify ({reason}): an entry was changed, removed or "
        f"reordered; `recctl audit verify --file {path}` shows it",
        {"bad_seq": seq, "fault": reason},
    )


def rewritten_finding(path: str, seq: int) -> Finding:
    """The bytes up to entry ``seq`` changed since recd checked them, yet the chain verifies:
    the entries were rewritten and sealed again."""
    return Finding(
        CHAIN,
        f"{path}: the entries up to {seq} changed since recd checked them, and were sealed "
        "again to verify: the log was rewritten, or replaced by another",
        {"bad_seq": seq, "fault": "rewritten before the checkpoint"},
    )


def mark_finding(
    path: str, mark_seq: int, mark_hash: str | None, last_seq: int, found_hash: str | None
) -> Finding | None:
    """The catalogue's mark (``mark_seq``, ``mark_hash``) against a log that ends at
    ``last_seq`` and holds ``found_hash`` at ``mark_seq`` (None if not found). None when the
    log holds the marked entry (the catalogue is up to date or behind)."""
    details = {"mark_seq": mark_seq, "mark_hash": mark_hash, "log_last_seq": last_seq}
    if mark_seq > last_seq:
        return Finding(
            AHEAD,
            f"the catalogue reflects audit entry {mark_seq}, but {path} ends at entry "
            f"{last_seq}: the log lost entries or was replaced (or the catalogue is another "
            "host's)",
            details,
        )
    if mark_seq == 0 or found_hash == mark_hash:
        return None
    return Finding(
        OTHER,
        f"the catalogue reflects audit entry {mark_seq} with hash {_short(mark_hash)}, but "
        f"that entry of {path} has hash {_short(found_hash)}: the log was rewritten, or the "
        "catalogue belongs to another log",
        details | {"found_hash": found_hash},
    )
