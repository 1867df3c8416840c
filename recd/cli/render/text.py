"""recctl's text for people and JSON for ``--json``: aligned tables, cells, sizes and times.

Invariants: rendering never reads files or the clock and never prints; it turns values into
text and recctl writes it. Table cells are made safe for a terminal: control characters (a
newline or an escape sequence in a file name) are shown escaped, so one row stays one line.
Large listings stream: widths can be gathered row by row (``widen``) in a first pass and rows
formatted one at a time (``format_row``) in a second, and ``json_array`` yields its text piece by
piece, one element per line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC

from recd.core.text import UNCLASSIFIED
from recd.core.text import plural as plural  # noqa: PLC0414 (re-exported for the CLI)
from recd.core.text import printable as printable  # noqa: PLC0414 (re-exported for the CLI)
from recd.core.times import format_human_time, parse_iso

GAP = "  "


def widen(widths: Sequence[int], cells: Sequence[str]) -> list[int]:
    """Column widths that fit both ``widths`` and the row ``cells``."""
    return [max(w, len(printable(c))) for w, c in zip(widths, cells, strict=True)]


def column_widths(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> list[int]:
    """The width of each column: its widest cell or header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = widen(widths, row)
    return widths


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One table line: cells left-aligned to ``widths``, two spaces apart, no trailing blanks."""
    padded = [printable(c).ljust(w) for c, w in zip(cells, widths, strict=True)]
    return GAP.join(padded).rstrip()


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """An aligned table with a header line (no trailing newline)."""
    widths = column_widths(rows, headers)
    return "\n".join(format_row(row, widths) for row in [headers, *rows])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(obj: object, indent: int | None = None) -> str:
    """JSON with non-ASCII text as itself, except lone surrogates (a file name's undecodable
    bytes), which are written as ``\\udcXX`` escapes so the output stays valid UTF-8."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def to_json(obj: object) -> str:
    """``obj`` as indented JSON for ``--json`` output of one object (no trailing newline)."""
    return _dumps(obj, indent=2)


def json_array(items: Iterable[object]) -> Iterator[str]:
    """A JSON array of ``items``, one compact element per line, yielded piece by piece."""
    opening = "[\n"
    for item in items:
        yield opening + _dumps(item)
        opening = ",\n"
    yield "[]\n" if opening == "[\n" else "\n]\n"


_UNITS = ("kB", "MB", "GB", "TB", "PB", "EB")


def human_size(size: int) -> str:
    """``size`` bytes in decimal units, a decimal place below 100: 512 B, 1.2 MB, 340 GB."""
    if size < 1000:
        return f"{size} B"
    value, power = size / 1000, 0
    while value >= 999.5 and power < len(_UNITS) - 1:
        value, power = value / 1000, power + 1
    unit = _UNITS[power]
    return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"


def human_time(value: str | None, none: str = "-") -> str:
    """An ISO 8601 time from the daemon as UTC to the second (``2026-11-23T13:43:09Z``);
    ``none`` when there is none. A value that does not parse is shown as it came."""
    if value is None:
        return none
    try:
        when = parse_iso(value, UTC)
    except ValueError:
        return value
    return format_human_time(when)


def cell(value: object) -> str:
    """A plain value as table text: ``-`` for none, ``yes``/``no``, strings as they are, the
    rest as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def licence_cell(licence: str | None) -> str:
    return UNCLASSIFIED if licence is None else licence


def key_values(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``key: value`` lines with the values aligned, made safe for a terminal."""
    width = max((len(key) for key, _ in pairs), default=0) + 3
    return [printable(f"{key}:".ljust(width) + value).rstrip() for key, value in pairs]


def when_by(when: str | None, who: str | None, why: str | None = None) -> str:
    """``2026-11-23T13:43:09Z by alice``, and ``: why`` when there is a why."""
    text = f"{human_time(when)} by {cell(who)}"
    return f"{text}: {why}" if why else text
