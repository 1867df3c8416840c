"""``recd.cli.render.text``: aligned tables safe for a terminal, JSON, sizes, times and cells.

Pure functions, so plain table-driven cases; what recctl prints with them is asserted word for
word in the command tests (tests/cli/commands/). The other render modules' functions are tested
beside them (tests/cli/render/test_<module>.py).
"""

from __future__ import annotations

import pytest

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
