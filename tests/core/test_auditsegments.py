"""recd.core.auditsegments: segment names, chain order, gaps, sizes; and verify() of a chain
that starts in a segment (recd.core.audit)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recd.core.audit import (
    GENESIS,
    Anchor,
    AuditDraft,
    AuditEntry,
    anchor_problem,
    seal,
    to_line,
    verify,
)
from recd.core.auditsegments import Gap, Segment, first_gap, parse_segment, parse_size, segments

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("audit.log.1-56", Segment(1, 56, "audit.log.1-56")),
        ("audit.log.57-57.gz", Segment(57, 57, "audit.log.57-57.gz", compressed=True)),
        ("audit.log.9-3", None),
        ("audit.log.0-3", None),
        ("audit.log.01-3", None),
        ("audit.log.1-3.gz.tmp", None),
        ("audit.log.new", None),
        ("audit.log", None),
        ("other.log.1-3", None),
    ],
)
def test_parse_segment(name: str, segment: Segment | None) -> None:
    assert parse_segment("audit.log", name) == segment


def test_segments_are_in_chain_order_and_a_plain_copy_wins() -> None:
    found = segments(
        "audit.log",
        ["audit.log.57-113.gz", "audit.log", "audit.log.114-170", "audit.log.1-56.gz",
         "audit.log.1-56", "x"],
    )  # fmt: skip
    assert [s.name for s in found] == ["audit.log.1-56", "audit.log.57-113.gz", "audit.log.114-170"]


def test_first_gap() -> None:
    assert first_gap([Segment(1, 5, "a"), Segment(6, 9, "b")]) is None
    assert first_gap([Segment(1, 5, "a"), Segment(8, 9, "b")]) == Gap(6, 7)
    assert first_gap([Segment(3, 5, "a")]) == Gap(1, 2)
    assert first_gap([]) is None
    assert str(Gap(6, 7)) == "entries 6-7 are missing: no segment holds them (a segment removed?)"
    assert str(Gap(6, 6)) == "entry 6 is missing: no segment holds it (a segment removed?)"


@pytest.mark.parametrize(
    ("text", "size"), [("64KiB", 65536), ("64MiB", 64 << 20), ("1 GiB", 1 << 30), ("10B", 10)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["64MB", "64", "MiB", "-1KiB", "1.5GiB", "64 kib"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_size(text)
    assert str(exc.value) == 'expected a size such as "64MiB" (units B, KiB, MiB, GiB, TiB)'


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        prev = entries[-1].hash if entries else GENESIS
        entries.append(seal(AuditDraft("x", str(i)), seq=i + 1, prev=prev, time=NOW))
    return entries


def test_a_segment_verifies_from_its_first_entry_and_anchors_before_it_are_refused() -> None:
    entries = chain(10)
    lines = [to_line(e) for e in entries[4:]]
    assert not verify(lines).ok  # as a whole chain: it does not start at 1
    result = verify(lines, watch={7}, after=None)
    assert (result.ok, result.entries, result.first_seq, result.last_seq) == (True, 6, 5, 10)
    assert anchor_problem(Anchor(7, entries[6].hash), result) is None
    assert anchor_problem(Anchor(3, entries[2].hash), result) == (
        "entry 3 comes before seq 5, where this part of the chain begins: check the whole "
        "chain (give the state directory) to test it"
    )
    follows = verify(lines, after=Anchor(4, entries[3].hash))
    assert (follows.ok, follows.last_seq, follows.last_hash) == (True, 10, entries[-1].hash)
    broken = verify(lines, after=Anchor(4, entries[2].hash))
    assert (broken.ok, broken.bad_line, broken.reason) == (
        False,
        1,
        "prev does not match the hash of entry 4",
    )
