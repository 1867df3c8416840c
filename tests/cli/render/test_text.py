"""recd.cli.render: aligned tables safe for a terminal, JSON, and the cells of recctl's listings.

Pure functions, so plain table-driven cases; what recctl prints with them is asserted word for
word in tests/cli/test_main.py and tests/cli/commands/test_legal.py.
"""

from __future__ import annotations

import pytest

from recd.cli.render.audit import SUMMARY_LIMIT, details_summary
from recd.cli.render.delete import holds_of
from recd.cli.render.replies import Item
from recd.cli.render.requests import counts_text
from recd.cli.render.scope import scope_pairs, scope_summary
from recd.cli.render.text import cell, human_size, human_time, json_array, printable, table, to_json


def test_table_aligns_columns_without_trailing_blanks():
    assert table([["1", "a", ""], ["22", "bbbb", "x"]], ["N", "NAME", "NOTE"]) == (
        "N   NAME  NOTE\n1   a\n22  bbbb  x"
    )
    assert table([], ["A", "B"]) == "A  B"


def test_table_cells_cannot_break_lines_or_reach_the_terminal():
    assert table([["a\nb", "\x1b[2J", "\u2028ä"]], ["X", "Y", "Z"]) == (
        "X     Y        Z\na\\nb  \\x1b[2J  \\u2028ä"
    )


def test_rows_must_have_one_cell_per_column():
    with pytest.raises(ValueError):
        table([["1", "2"]], ["A"])


def test_to_json_is_indented():
    assert to_json({"b": [1], "a": "ä"}) == '{\n  "b": [\n    1\n  ],\n  "a": "ä"\n}'


def test_json_keeps_text_but_escapes_lone_surrogates():
    # A file name's undecodable byte 0xe9 arrives as U+DCE9; printed raw it would not be UTF-8.
    assert to_json({"p": "café\udce9"}) == '{\n  "p": "café\\udce9"\n}'
    assert "".join(json_array(["\udce9"])) == '[\n"\\udce9"\n]\n'
    assert printable("a\udce9") == "a\\xe9"


def test_json_array_yields_one_element_per_line():
    assert "".join(json_array(iter([{"a": 1}, [2], "ä"]))) == '[\n{"a": 1},\n[2],\n"ä"\n]\n'
    assert "".join(json_array([])) == "[]\n"


@pytest.mark.parametrize(
    ("details", "summary"),
    [
        ({}, ""),
        ({"b": 1, "a": "x"}, "a=x b=1"),
        (
            {"s": "two words", "e": "", "q": 'say "hi"', "c": "a,b", "k": "k=v"},
            ('c="a,b" e="" k="k=v" q="say \\"hi\\"" s="two words"'),
        ),
        (
            {"n": None, "t": True, "f": 1.5, "l": [1, "a"], "d": {"x": 1}},
            ('d={"x":1} f=1.5 l=[1,"a"] n=null t=true'),
        ),
        ({"long": "x" * 100}, "long=" + "x" * 74 + "…"),
        ({"fits": "x" * 75}, "fits=" + "x" * 75),
    ],
)
def test_details_summary(details, summary):
    assert details_summary(details) == summary
    assert len(details_summary(details)) <= SUMMARY_LIMIT


SHA = "ca05ff1d12292cb5dc13b3fe8b6987a6be22bf917c78898d16db9ae4bc4bbfd5"
CERTIFIED = {
    "erased": 2, "failed": 0, "gone": 0, "held": 0,
    "path": "/var/lib/recd/certificates/REQ-2026-0042.json", "sha256": SHA,
    "state": "completed",
}  # fmt: skip


def test_a_certificate_entry_shows_its_sha256_first():
    """The digest an auditor compares the customer's copy with, whole, before the 80
    characters run out; other actions keep their order (an erase shows its location first)."""
    assert details_summary(CERTIFIED, action="request.certificate") == (f"sha256={SHA} erased=…")
    done = {"sha256": SHA, "location": "/srv/a.wav", "size": 7}
    assert details_summary(done, limit=200, action="erase.done") == (
        f"location=/srv/a.wav size=7 sha256={SHA}"
    )


def test_audit_times_in_details_are_shown_to_the_second():
    details = {
        "due_from": "2026-11-30T19:08:36.923241Z",
        "reason": "expired: held until 2026-11-23T19:12:00.000000Z",  # prose stays as written
        "scope": {"from": "2026-11-01T00:00:00.000000Z", "recordings": ["2026-11-01"]},
        "until": None,
        "when": "2026-11-30T19:08:36Z",  # not the audit log's form: as it is
    }
    assert details_summary(details, limit=200) == (
        'reason="expired: held until 2026-11-23T19:12:00.000000Z" '
        "due_from=2026-11-30T19:08:36Z "
        'scope={"from":"2026-11-01T00:00:00Z","recordings":["2026-11-01"]} until=null '
        "when=2026-11-30T19:08:36Z"
    )


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1234567, "1.2 MB"),
        (99_949_999, "99.9 MB"),
        (99_950_000, "100 MB"),
        (999_499_999, "999 MB"),
        (999_500_000, "1.0 GB"),
        (340 * 10**9, "340 GB"),
        (10**18, "1.0 EB"),
        (10**24, "1000000 EB"),
    ],
)
def test_human_size_is_decimal(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ("2026-11-23T13:43:09.999999Z", "2026-11-23T13:43:09Z"),  # cut, never rounded up
        ("2026-11-23T13:43:09.5+00:00", "2026-11-23T13:43:09Z"),
        ("2026-11-23T13:43:09+01:00", "2026-11-23T12:43:09Z"),
        ("2026-11-23T13:43:09", "2026-11-23T13:43:09Z"),  # no offset: UTC
        ("2026-11-23", "2026-11-23T00:00:00Z"),
        ("soon", "soon"),  # shown as it came
    ],
)
def test_human_time_is_utc_to_the_second(value, text):
    assert human_time(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (True, "yes"), (False, "no"), ("a b", "a b"), (3, "3"), ([1, "ä"], '[1,"ä"]')],
)
def test_cell(value, text):
    assert cell(value) == text


def _scope(**fields: object) -> dict[str, object]:
    empty: dict[str, object] = {
        "recordings": [], "call_ids": [], "party": None, "from": None, "to": None,
    }  # fmt: skip
    return {"scope": empty | fields}


@pytest.mark.parametrize(
    ("subject", "summary", "pairs"),
    [
        (_scope(), "whole licence", []),
        (
            _scope(recordings=["8a47373e7a113408a3a4"]),
            "1 recording",
            [("recordings", "8a47373e7a113408a3a4")],
        ),
        (_scope(call_ids=["1", "2", "3"]), "3 calls", [("call ids", "1, 2, 3")]),
        (_scope(party="+44 1234"), "party +44 1234", [("party", "+44 1234")]),
        (
            _scope(to="2026-11-15T12:30:00+01:00"),
            "..2026-11-15T11:30:00Z",
            [("started before", "2026-11-15T11:30:00Z")],
        ),
        (
            _scope(**{"from": "2026-11-01T00:00:00Z"}),
            "2026-11-01..",
            [("started from", "2026-11-01T00:00:00Z")],
        ),
        (
            _scope(party="+44 1234") | {"whole_licence": True},
            "whole licence",
            [("scope", "whole licence: every recording of it, present and future")],
        ),
    ],
)
def test_scopes_are_summed_up_for_tables_and_spelt_out_for_show(subject, summary, pairs):
    assert scope_summary(subject) == summary
    assert scope_pairs(subject) == pairs


@pytest.mark.parametrize(
    ("counts", "holds", "text"),
    [
        ({}, [], "erased 0, held 0, failed 0, already gone 0"),
        ({"held": 2}, ["H-1", "H-2"], "erased 0, held 2 (H-1, H-2), failed 0, already gone 0"),
        ({"pending": 5}, [], "erased 0, held 0, failed 0, already gone 0, pending 5"),
    ],
)
def test_counts_text(counts, holds, text):
    zero = {"erased": 0, "held": 0, "failed": 0, "gone": 0, "pending": 0}
    assert counts_text(zero | counts, holds) == text


def _item(outcome: str, holds: list[str]) -> Item:
    return {"id": "r", "location": None, "licence": "L", "size": None, "outcome": outcome,
            "holds": holds, "note": None}  # fmt: skip


def test_holds_of_lists_each_hold_once_in_order():
    items = [_item("held", ["H-2", "H-1"]), _item("erased", ["H-9"]), _item("held", ["H-1", "H-3"])]
    assert holds_of(items) == ["H-2", "H-1", "H-3"]
