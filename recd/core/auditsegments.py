"""Closed segments of the audit log: their names, their order, and what a set of them lacks.

Past ``audit.rotate_size`` the live log ``audit.log`` is closed into a segment named
``audit.log.<first-seq>-<last-seq>`` (``.gz`` when compressed) and a new ``audit.log`` continues
the chain (SPEC section 8). The chain is the segments in the order of their sequence numbers,
then the live log. A new live log starts with an ``audit.rotated`` entry naming the segment it
follows and the byte offset at which it starts in the whole chain (every earlier segment's bytes,
uncompressed): offsets into the log (``AuditLog.end_offset``) keep their meaning across
rotations.

Pure: no I/O; given the names found in a directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ROTATED = "audit.rotated"  # the first entry of every live log after a rotation
GZ = ".gz"
#: Suffixes of files a rotation or a compression makes before renaming them into place.
NEW = ".new"
PARTIAL = ".tmp"
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE = re.compile(r"([0-9]+)\s*([A-Za-z]+)")


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One closed segment: entries ``first`` to ``last``, in file ``name`` (gzip if
    ``compressed``)."""

    first: int
    last: int
    name: str
    compressed: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """Entries ``first`` to ``last`` that no segment holds."""

    first: int
    last: int

    def __str__(self) -> str:
        if self.first == self.last:
            return f"entry {self.first} is missing: no segment holds it (a segment removed?)"
        return (
            f"entries {self.first}-{self.last} are missing: no segment holds them "
            "(a segment removed?)"
        )


def segment_name(live: str, first: int, last: int) -> str:
    """The name of the segment of ``live`` (``audit.log``) holding entries first to last."""
    return f"{live}.{first}-{last}"


def parse_segment(live: str, name: str) -> Segment | None:
    """The segment ``name`` is, if it is one of ``live``'s (plain or ``.gz``); else None."""
    match = re.fullmatch(re.escape(live) + r"\.([1-9][0-9]*)-([1-9][0-9]*)(\.gz)?", name)
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    if last < first:
        return None
    return Segment(first, last, name, match[3] is not None)


def segments(live: str, names: Iterable[str]) -> list[Segment]:
    """The segments among ``names``, in chain order. Where a segment is there both plain and
    compressed (a compression that was not finished), the plain file is the one listed."""
    found: dict[tuple[int, int], Segment] = {}
    for name in names:
        segment = parse_segment(live, name)
        if segment is None:
            continue
        key = (segment.first, segment.last)
        kept = found.get(key)
        if kept is None or kept.compressed:
            found[key] = segment
    return sorted(found.values())


def first_gap(ordered: Iterable[Segment], start: int = 1) -> Gap | None:
    """The first entries the segments (in chain order) do not hold, counting from ``start``;
    overlapping segments are not a gap (reading them shows what is wrong)."""
    expected = start
    for segment in ordered:
        if segment.first > expected:
            return Gap(expected, segment.first - 1)
        expected = max(expected, segment.last + 1)
    return None


def parse_size(text: str) -> int:
    """Bytes in a size such as ``64MiB`` (units B, KiB, MiB, GiB, TiB); ``ValueError`` with
    the reason otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or match[2] not in UNITS:
        raise ValueError(f'expected a size such as "64MiB" (units {", ".join(UNITS)})')
    return int(match[1]) * UNITS[match[2]]
