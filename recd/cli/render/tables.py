"""recctl output: aligned tables for people, JSON for ``--json``.

Invariants: rendering never reads files or the clock and never prints; it turns values into
text and recctl writes it. Table cells are made safe for a terminal: control characters (a
newline or an escape sequence in a file name) are shown escaped, so one row stays one line.
Large listings stream: widths can be gathered row by row (``widen``) in a first pass and rows
formatted one at a time (``format_row``) in a second, and ``json_array`` yields its text piece by
piece, one element per line.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC
from typing import Any

from recd.core.audit import FIELDS, AuditEntry
from recd.core.text import UNCLASSIFIED
from recd.core.text import plural as plural  # noqa: PLC0414 (re-exported for the CLI)
from recd.core.text import printable as printable  # noqa: PLC0414 (re-exported for the CLI)
from recd.core.times import format_human_time, parse_iso, parse_time

GAP = "  "
AUDIT_HEADERS = ("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS")
SUMMARY_LIMIT = 80


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


def _shown(value: Any) -> Any:
    """``value`` with every time in the audit log's form (in lists and objects too) cut to the
    second, like every other time a person reads."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return format_human_time(parse_time(value))
    elif isinstance(value, list):
        return [_shown(item) for item in value]
    elif isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    return value


def _value(value: Any) -> str:
    value = _shown(value)
    if isinstance(value, str) and value and not any(c in value for c in ' ="\\,'):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: Details an operator scans for first; the rest follow alphabetically.
LEADING_DETAILS = (
    "location", "licence", "reason", "method", "effective", "ineffective_reason", "error",
    "skipped", "size",
)  # fmt: skip
#: Details that go before those for one action: what an auditor compares a copy with.
ACTION_DETAILS = {"request.certificate": ("sha256",)}


def details_summary(
    details: Mapping[str, Any], limit: int = SUMMARY_LIMIT, action: str = ""
) -> str:
    """``key=value`` pairs, the telling ones first (``action``'s own first of all), cut to
    ``limit`` characters with an ellipsis; times to the second."""
    leading = (*ACTION_DETAILS.get(action, ()), *LEADING_DETAILS)

    def order(key: str) -> tuple[int, str]:
        return (leading.index(key) if key in leading else len(leading)), key

    text = " ".join(f"{key}={_value(details[key])}" for key in sorted(details, key=order))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_row(entry: AuditEntry) -> list[str]:
    """The cells of ``entry`` under ``AUDIT_HEADERS``; times to the second."""
    return [
        str(entry.seq),
        human_time(entry.time),
        entry.actor,
        entry.action,
        entry.subject,
        details_summary(entry.details, action=entry.action),
    ]


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """``entry`` as a JSON object with the audit.log fields, in the SPEC's order."""
    return {name: getattr(entry, name) for name in FIELDS} | {"details": dict(entry.details)}


# --- daemon replies ------------------------------------------------------------------------------
# The functions below take the ``result`` of a daemon reply (see ``recd.protocol`` for the
# fields of each command). A field missing or of the wrong type raises KeyError, TypeError or
# ValueError; recctl reports that as a reply it cannot read.

SOURCE_HEADERS = ("SOURCE", "TYPE", "WATCH", "SCAN", "LAST SCAN", "TOOK")
LICENCE_HEADERS = ("LICENCE", "RECORDINGS", "SIZE", "DUE")
RECORDING_HEADERS = ("ID", "LICENCE", "STARTED", "DEADLINE", "SIZE", "STATE", "LOCATION")
POLICY_HEADERS = ("LICENCE", "NAME", "RETENTION", "RULE", "RECORDINGS", "BREAKER")
BREAKER_HEADERS = ("LICENCE", "TRIPPED", "DUE", "TOTAL", "RELEASED", "BY")
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


def cell(value: Any) -> str:
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


def status_lines(status: Mapping[str, Any]) -> list[str]:
    """``recctl status``: the daemon's state, then its sources and licences as tables."""
    guard = status["clock_guard"]
    breakers: list[str] = status["breaker"]
    summary = [
        ("version", f"{status['version']} (pid {status['pid']}, "
                    f"up since {human_time(status['started'])})"),
        ("mode", str(status["mode"])),
        ("recordings", f"{status['recordings']} ({human_size(status['bytes'])})"),
        ("unclassified", str(status["unclassified"])),
        ("overdue", str(status["overdue"])),
        ("next deadline", human_time(status["next_deadline"], "none")),
        ("clock guard", ("paused: " + (guard["reason"] or "see the log")) if guard["paused"]
                        else "ok"),
        ("breakers", f"tripped for {', '.join(breakers)} (see `recctl breaker ls`)"
                     if breakers else "none"),
    ]  # fmt: skip
    audit = status.get("audit_log")  # absent from an older daemon's reply
    if audit is not None and not audit["writable"]:  # shown only during an outage
        summary.insert(6, ("audit log", f"erasing paused: {audit['problem']}"))
    check = status.get("audit_check")  # absent from an older daemon's reply
    if check is not None and check["paused"]:  # shown only until `recctl audit acknowledge`
        summary.insert(6, ("audit log check", f"erasing paused: {check['problem']}"))
    sources = [
        [
            source["name"],
            source["type"],
            source["watch"],
            "running" if source["scanning"] else "idle",
            human_time(source["last_scan"], "never"),
            "-" if source["scan_seconds"] is None else f"{source['scan_seconds']:.1f} s",
        ]
        for source in status["sources"]
    ]
    licences = [
        [
            licence_cell(row["licence"]),
            str(row["recordings"]),
            human_size(row["bytes"]),
            str(row["due"]),
        ]
        for row in status["licences"]
    ]
    return [
        *key_values(summary),
        "",
        table(sources, SOURCE_HEADERS),
        "",
        table(licences, LICENCE_HEADERS),
    ]


def recording_state(recording: Mapping[str, Any]) -> str:
    """``present``, ``erased`` or ``missing``, with ``held`` and ``skipped`` when they apply."""
    marks = [str(recording["state"])]
    if recording["held"]:
        marks.append("held")
    if recording.get("skip_reason"):
        marks.append("skipped")
    return ", ".join(marks)


def recording_row(recording: Mapping[str, Any]) -> list[str]:
    """The cells of one ``ls`` recording under ``RECORDING_HEADERS``."""
    return [
        recording["id"],
        licence_cell(recording["licence"]),
        human_time(recording["started"]),
        human_time(recording["deadline"], "never"),
        human_size(recording["size"]),
        recording_state(recording),
        recording["location"],
    ]


def _deadline(recording: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The deadline and how it was reached (``started + 3mo, by <rule>``), or that a legal
    hold's release deferred it past that; then the floor that release set, if any."""
    retention = recording.get("retention")
    deadline, not_before = recording["deadline"], recording.get("not_before")
    text = human_time(deadline, "never")
    if retention is not None:
        why = f"retention {retention['period']}" if deadline is None else (
            f"started + {retention['period']}"
        )  # fmt: skip
        by_retention = retention.get("deadline")
        if not_before is not None and deadline == not_before and by_retention not in (
            None, deadline,
        ):  # fmt: skip
            why = f"deferred by a legal hold's release; {why} is {human_time(by_retention)}"
        text += f" ({why}, by {retention['rule']})"
    pairs = [("deadline", text)]
    if not_before is not None:
        why = "released from a legal hold: release + holds.release_grace"
        pairs.append(("not before", f"{human_time(not_before)} ({why})"))
    return pairs


def _provenance(name: str, field: Mapping[str, Any]) -> str:
    """A classified value and where it came from: ``1700 (from pattern)``; a time to the
    second."""
    found = field.get("from")
    value = human_time(field["value"]) if name == "started" else cell(field["value"])
    return f"{value} (from {found})" if found else value


def show_lines(recording: Mapping[str, Any]) -> list[str]:
    """``recctl show``: one recording, each classified field with where it came from, and how
    its deadline was reached."""
    fields: Mapping[str, Mapping[str, Any]] = recording.get("fields") or {}
    values = {name: _provenance(name, field) for name, field in fields.items()}
    values.setdefault("licence", licence_cell(recording["licence"]))
    values.setdefault("started", human_time(recording["started"]))
    first = ("licence", "started")
    classified = [(name, values[name]) for name in first]
    classified += [(name, value) for name, value in values.items() if name not in first]
    pairs = [
        ("id", recording["id"]),
        ("source", recording["source"]),
        ("location", recording["location"]),
        ("state", str(recording["state"])),
        ("size", f"{human_size(recording['size'])} ({recording['size']} bytes)"),
        *classified,
        *_deadline(recording),
        ("held", cell(recording["held"])),
    ]
    if recording.get("skip_reason"):
        pairs.append(("skipped", recording["skip_reason"]))
    pairs += [
        ("first seen", human_time(recording.get("first_seen"))),
        ("mtime", human_time(recording.get("mtime"))),
    ]
    if recording.get("dev") is not None and recording.get("ino") is not None:
        pairs.append(("inode", f"{recording['ino']} on device {recording['dev']}"))
    return key_values(pairs)


def policy_row(policy: Mapping[str, Any]) -> list[str]:
    """The cells of one ``policy`` entry under ``POLICY_HEADERS``."""
    return [
        licence_cell(policy["licence"]),
        cell(policy["name"]),
        cell(policy["retention"]),
        cell(policy["rule"]),
        str(policy["recordings"]),
        "tripped" if policy["breaker"] else "-",
    ]


def scan_line(scan: Mapping[str, Any]) -> str:
    """``pbx1: 12034 files, 12 new, 3 changed, 1 missing, 4.2 s``."""
    files = scan["files"]
    return printable(
        f"{scan['source']}: {files} {'file' if files == 1 else 'files'}, {scan['new']} new, "
        f"{scan['changed']} changed, {scan['missing']} missing, {scan['seconds']:.1f} s"
    )


def breaker_row(breaker: Mapping[str, Any]) -> list[str]:
    """The cells of one ``breaker ls`` entry under ``BREAKER_HEADERS``."""
    return [
        licence_cell(breaker["licence"]),
        human_time(breaker["tripped_at"]),
        str(breaker["due"]),
        str(breaker["total"]),
        human_time(breaker["released_at"]),
        cell(breaker["released_by"]),
    ]
