"""The closed segments of the audit log at start: which to trust, which to read again, and what
is wrong between them (issue 14: a change in a closed segment stops erasing).

The catalogue keeps a print of every closed segment it has checked: the file's inode, size
and ctime (any write, chmod or rename changes the ctime, and a user cannot set it back), and
the segment's place in the chain (its first entry's seq, prev and chain offset; its last
entry's seq and hash, and the chain offset after it). At start a segment whose file still
matches its print is trusted without reading it; one that is new (a rotation, compressed since,
or no prints at all: the first start after an upgrade) or whose file changed is verified entry
by entry and printed again. A segment checked before that is gone (under its name and, for a
compression, under its ``.gz`` name) is a problem. Links between neighbours (seq, prev, chain
offset) are checked wherever one side was read again: two files that did not change still
link as they did when checked (or when an administrator acknowledged them).

Pure: given what was listed and read; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recd.core.audit import GENESIS
from recd.core.logcheck import SEGMENT, Finding


@dataclass(frozen=True, slots=True)
class Ends:
    """Where a file lies in the chain: its first entry (``first``, the ``prev`` it names, the
    chain offset it starts at) and its last (``last``, ``hash``, the chain offset after it)."""

    first: int
    prev: str
    start: int
    last: int
    hash: str
    end: int


#: The chain before its first entry: a first segment links to it.
ORIGIN = Ends(0, GENESIS, 0, 0, GENESIS, 0)


@dataclass(frozen=True, slots=True)
class Stat:
    """A closed segment's file as listed now: its name, range and ``stat``."""

    name: str
    first: int
    last: int
    inode: int
    size: int
    ctime_ns: int


@dataclass(frozen=True, slots=True)
class Print:
    """A segment checked: its file as it was (``stat``) and its place in the chain."""

    stat: Stat
    ends: Ends

    def to_json(self) -> dict[str, Any]:
        s, e = self.stat, self.ends
        return {
            "file": [s.inode, s.size, s.ctime_ns],
            "ends": [e.first, e.prev, e.start, e.last, e.hash, e.end],
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Print:
        """``ValueError``/``TypeError``/``KeyError`` for a row of another shape."""
        inode, size, ctime_ns = data["file"]
        first, prev, start, last, digest, end = data["ends"]
        ints = (inode, size, ctime_ns, first, start, last, end)
        if any(type(v) is not int for v in ints) or not isinstance(prev, str):
            raise ValueError(f"segment print of {name}: not integers")
        if not isinstance(digest, str):
            raise ValueError(f"segment print of {name}: no hash")
        return cls(
            Stat(name, first, last, inode, size, ctime_ns),
            Ends(first, prev, start, last, digest, end),
        )


@dataclass(frozen=True, slots=True)
class Prints:
    """Every closed segment checked (by name), and the live log's first entry (seq, prev,
    chain offset) as it was linked to the last of them."""

    segments: Mapping[str, Print]
    live: tuple[int, str, int] | None = None


def unchanged(stat: Stat, known: Print | None) -> bool:
    """Whether ``stat`` is the file ``known`` printed: same name, range, inode, size, ctime."""
    return known is not None and known.stat == stat


def gone(where: str, found: Sequence[Stat], known: Prints | None) -> list[Finding]:
    """A problem for each segment checked before that is not there any more in directory
    ``where``, under its name or compressed (same range, ``.gz``)."""
    if known is None:
        return []
    ranges = {(s.first, s.last) for s in found}
    names = {s.name for s in found}
    return [
        Finding(
            SEGMENT,
            f"{where}/{name} (entries {p.stat.first}-{p.stat.last}) "
            "is gone, but recd checked it before: a closed part of the audit log was deleted "
            f"or renamed; restore it from a backup, or check the rest with `recctl audit verify "
            f"--file {where}`",
            {"segment": name, "first": p.stat.first, "last": p.stat.last, "fault": "gone"},
        )
        for name, p in known.segments.items()
        if name not in names and (p.stat.first, p.stat.last) not in ranges
    ]


def link_between(before: Ends, after: Ends, name: str) -> Finding | None:
    """Whether the file ``name`` (``after``) continues the one before it (``before``): the
    next seq, the last hash, the chain offset after it."""
    if after.first > before.last + 1:
        gap = f"entries {before.last + 1}-{after.first - 1} are missing: no file holds them"
        if after.first == before.last + 2:
            gap = f"entry {before.last + 1} is missing: no file holds it"
        return _segment(name, after.first, f"{gap} (a segment removed?)", "gap")
    if after.first != before.last + 1:
        return _segment(
            name,
            after.first,
            f"begins at entry {after.first}, but the file before it ends at entry {before.last}",
            "overlap",
        )
    if after.prev != before.hash:
        return _segment(
            name,
            after.first,
            f"entry {after.first} does not follow entry {before.last} (prev "
            f"{after.prev[:12]}, expected {before.hash[:12]})",
            "prev",
        )
    if after.start != before.end:
        return _segment(
            name,
            after.first,
            f"begins at chain byte {after.start}, but the file before it ends at byte {before.end}",
            "offset",
        )
    return None


def entry_problem(name: str, seq: int, reason: str) -> Finding:
    """Entry ``seq`` of segment ``name`` does not verify (or the file does not read)."""
    return _segment(name, seq, f"entry {seq} does not verify ({reason})", "chain")


def _segment(name: str, seq: int, what: str, fault: str) -> Finding:
    return Finding(
        SEGMENT,
        f"{name}: {what}: a closed segment of the audit log was changed, removed or replaced; "
        f"`recctl audit verify --file {directory(name)}` shows it",
        {"segment": name, "bad_seq": seq, "fault": fault},
    )


def directory(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else "."
