"""recd.core.text: what a person is shown of hostile text."""

from __future__ import annotations

import pytest

from recd.core.text import printable, printable_lines


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2026/L1/call.wav", "2026/L1/call.wav"),
        ("café-Ωμέγα-通话.wav", "café-Ωμέγα-通话.wav"),  # letters of any script stay
        ("a\nERROR forged", "a\\nERROR forged"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x7f\x9b", "\\x7f\\x9b"),  # DEL and the 8-bit CSI
        ("evil\u202ewav.exe", "evil\\u202ewav.exe"),  # a bidi override
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
        ("caf\udce9.wav", "caf\\xe9.wav"),  # an undecodable byte: shown as the byte
        ("\udc80\udcff", "\\x80\\xff"),
        ("\ud800", "\\ud800"),  # a lone surrogate that is not an escaped byte
        ("back\\slash", "back\\slash"),
    ],
)
def test_printable_escapes_what_could_forge_or_hide(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_printable_lines_keeps_line_breaks_and_escapes_within_lines() -> None:
    assert printable_lines("Traceback:\n  File \x1b[2J\nOSError: a\rb", "| ") == (
        "| Traceback:\n|   File \\x1b[2J\n| OSError: a\\rb"
    )
