"""recctl output: aligned tables for people, JSON for ``--json``.

Invariants: rendering never reads files or the clock and never prints; it turns values into
text and recctl writes it. Table cells are made safe for a terminal: control characters (a
newline or an escape sequence in a file name) are shown escaped, so one row stays one line.
Large listings stream: widths can be gathered row by row (``widen``) in a first pass and rows
formatted one at a time (``format_row``) in a second, and ``json_array`` yields its text piece by
piece, one element per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from recd.core.audit import FIELDS, AuditEntry

GAP = "  "
AUDIT_HEADERS = ("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS")
SUMMARY_LIMIT = 80


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def widen(widths: Sequence[int], cells: Sequence[str]) -> list[int]:
    """Column widths that fit both ``widths`` and the row ``cells``."""
    return [max(w, len(_printable(c))) for w, c in zip(widths, cells, strict=True)]


def column_widths(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> list[int]:
    """The width of each column: its widest cell or header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = widen(widths, row)
    return widths


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One table line: cells left-aligned to ``widths``, two spaces apart, no trailing blanks."""
    padded = [_printable(c).ljust(w) for c, w in zip(cells, widths, strict=True)]
    return GAP.join(padded).rstrip()


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """An aligned table with a header line (no trailing newline)."""
    widths = column_widths(rows, headers)
    return "\n".join(format_row(row, widths) for row in [headers, *rows])


def to_json(obj: object) -> str:
    """``obj`` as indented JSON for ``--json`` output of one object (no trailing newline)."""
    return json.dumps(obj, indent=2, ensure_ascii=False)


def json_array(items: Iterable[object]) -> Iterator[str]:
    """A JSON array of ``items``, one compact element per line, yielded piece by piece."""
    opening = "[\n"
    for item in items:
        yield opening + json.dumps(item, ensure_ascii=False)
        opening = ",\n"
    yield "[]\n" if opening == "[\n" else "\n]\n"


def _value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c in value for c in ' ="\\,'):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: Details an operator scans for first; the rest follow alphabetically.
LEADING_DETAILS = (
    "location", "licence", "reason", "method", "effective", "ineffective_reason", "error",
    "skipped", "size",
)  # fmt: skip


def _detail_order(key: str) -> tuple[int, str]:
    try:
        return LEADING_DETAILS.index(key), key
    except ValueError:
        return len(LEADING_DETAILS), key


def details_summary(details: Mapping[str, Any], limit: int = SUMMARY_LIMIT) -> str:
    """``key=value`` pairs, the telling ones first, cut to ``limit`` characters with an
    ellipsis."""
    text = " ".join(f"{key}={_value(details[key])}" for key in sorted(details, key=_detail_order))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_row(entry: AuditEntry) -> list[str]:
    """The cells of ``entry`` under ``AUDIT_HEADERS``; time to the second."""
    return [
        str(entry.seq),
        entry.time[:19] + "Z",
        entry.actor,
        entry.action,
        entry.subject,
        details_summary(entry.details),
    ]


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """``entry`` as a JSON object with the audit.log fields, in the SPEC's order."""
    return {name: getattr(entry, name) for name in FIELDS} | {"details": dict(entry.details)}
