"""Which closed audit segments to trust, and what is wrong between them (issue 14 points 2-3)."""

from __future__ import annotations

import pytest

from recd.core.audit import GENESIS
from recd.core.segcheck import ORIGIN, Ends, Print, Prints, Stat, gone, link_between, unchanged

A, B = "a" * 64, "b" * 64
FIRST = Ends(1, GENESIS, 0, 9, A, 900)
STAT = Stat("audit.log.1-9", 1, 9, 7, 900, 1_000)


def test_a_file_is_trusted_only_as_printed() -> None:
    assert unchanged(STAT, Print(STAT, FIRST))
    assert not unchanged(STAT, None)
    for changed in (
        Stat("audit.log.1-9", 1, 9, 8, 900, 1_000),  # another inode
        Stat("audit.log.1-9", 1, 9, 7, 901, 1_000),  # another size
        Stat("audit.log.1-9", 1, 9, 7, 900, 1_001),  # written, chmod-ed, renamed
        Stat("audit.log.1-9.gz", 1, 9, 7, 900, 1_000),  # compressed since
    ):
        assert not unchanged(changed, Print(STAT, FIRST))


def test_a_print_round_trips_through_json() -> None:
    assert Print.from_json(STAT.name, Print(STAT, FIRST).to_json()) == Print(STAT, FIRST)
    with pytest.raises(ValueError, match="not integers"):
        Print.from_json(STAT.name, {"file": ["7", 900, 1], "ends": [1, GENESIS, 0, 9, A, 9]})


@pytest.mark.parametrize(
    ("after", "fault", "text"),
    [
        (Ends(10, A, 900, 20, B, 2000), None, ""),
        (Ends(12, A, 900, 20, B, 2000), "gap", "entries 10-11 are missing: no file holds them"),
        (Ends(11, A, 900, 20, B, 2000), "gap", "entry 10 is missing: no file holds it"),
        (Ends(9, A, 900, 20, B, 2000), "overlap", "begins at entry 9, but the file before"),
        (Ends(10, B, 900, 20, B, 2000), "prev", "entry 10 does not follow entry 9"),
        (Ends(10, A, 901, 20, B, 2000), "offset", "begins at chain byte 901, but the file"),
    ],
)
def test_a_file_continues_the_one_before(after: Ends, fault: str | None, text: str) -> None:
    found = link_between(FIRST, after, "/s/audit.log.10-20")
    assert (None if found is None else found.details["fault"]) == fault
    if found is not None:
        assert found.kind == "segment"
        assert found.text.startswith(f"/s/audit.log.10-20: {text}")
        assert found.text.endswith("`recctl audit verify --file /s` shows it")


def test_the_first_segment_starts_the_chain() -> None:
    assert link_between(ORIGIN, FIRST, "/s/audit.log.1-9") is None
    late = link_between(ORIGIN, Ends(5, A, 10, 9, A, 900), "/s/audit.log.5-9")
    assert late is not None and late.details["fault"] == "gap"


def test_a_segment_checked_before_is_gone_unless_compressed() -> None:
    known = Prints({STAT.name: Print(STAT, FIRST)})
    packed = Stat("audit.log.1-9.gz", 1, 9, 8, 300, 2_000)
    assert gone("/s", [packed], known) == []
    assert gone("/s", [], None) == []
    (found,) = gone("/s", [], known)
    assert found.kind == "segment" and found.details["fault"] == "gone"
    assert found.text == (
        "/s/audit.log.1-9 (entries 1-9) is gone, but recd checked it before: a closed part of "
        "the audit log was deleted or renamed; restore it from a backup, or check the rest with "
        "`recctl audit verify --file /s`"
    )
