"""recctl's text for the daemon's state and recordings: ``status``, ``ls``, ``show``, ``policy``,
``scan`` and ``breaker ls``.

Pure functions from the ``result`` of a daemon reply (fields documented in ``recd.protocol``) to
text, every line made safe for a terminal. A field missing or of the wrong type raises KeyError,
TypeError or ValueError, which recctl reports as a reply it cannot read
(``recd.cli.kit.rendered``).
"""

from __future__ import annotations

from recd.cli.render.replies import (
    Breaker,
    Field,
    Policy,
    Recording,
    RecordingDetail,
    Scan,
    Status,
)
from recd.cli.render.text import (
    cell,
    human_size,
    human_time,
    key_values,
    licence_cell,
    printable,
    table,
)

SOURCE_HEADERS = ("SOURCE", "TYPE", "WATCH", "SCAN", "LAST SCAN", "TOOK")

#: The SERVED column's text per ``served`` value; shown only when a source is not ``served``.
SERVED = {
    "served": "yes",
    "not-listed": "no: not listed for this node",
    "elsewhere": "no: served by another node (one at a time)",
    "unknown": "unknown (not asked yet)",
}


LICENCE_HEADERS = ("LICENCE", "RECORDINGS", "SIZE", "DUE")


RECORDING_HEADERS = ("ID", "LICENCE", "STARTED", "DEADLINE", "SIZE", "STATE", "LOCATION")


POLICY_HEADERS = ("LICENCE", "NAME", "RETENTION", "RULE", "RECORDINGS", "BREAKER")


BREAKER_HEADERS = ("LICENCE", "TRIPPED", "DUE", "TOTAL", "RELEASED", "BY")


#: The lines of ``status`` the catalogue answers, unknown while it cannot be reached.
_COUNTED = ("recordings", "unclassified", "overdue", "next deadline", "breakers")


def status_lines(status: Status) -> list[str]:
    """``recctl status``: the daemon's state, then its sources and licences as tables."""
    guard = status["clock_guard"]
    breakers: list[str] = status["breaker"]
    summary = [
        (
            "version",
            f"{status['version']} (pid {status['pid']}, up since {human_time(status['started'])})",
        ),
        ("mode", str(status["mode"])),
        ("recordings", f"{status['recordings']} ({human_size(status['bytes'])})"),
        ("unclassified", str(status["unclassified"])),
        ("overdue", str(status["overdue"])),
        ("next deadline", human_time(status["next_deadline"], "none")),
        (
            "clock guard",
            ("paused: " + (guard["reason"] or "see the log")) if guard["paused"] else "ok",
        ),
        (
            "breakers",
            f"tripped for {', '.join(breakers)} (see `recctl breaker ls`)" if breakers else "none",
        ),
    ]
    audit = status.get("audit_log")  # absent from an older daemon's reply
    if audit is not None and not audit["writable"]:  # shown only during an outage
        summary.insert(6, ("audit log", f"erasing paused: {audit['problem']}"))
    check = status.get("audit_check")  # absent from an older daemon's reply
    if check is not None and check["paused"]:  # shown only until `recctl audit acknowledge`
        summary.insert(6, ("audit log check", f"erasing paused: {check['problem']}"))
    catalogue = status.get("catalogue")  # only while its database cannot be reached
    if catalogue is not None and not catalogue["reachable"]:
        unknown = "unknown: the catalogue cannot be reached"
        summary = [(k, unknown if k in _COUNTED else v) for k, v in summary if k != "audit log"]
        summary.insert(2, ("catalogue", f"erasing paused: {catalogue['problem']}; retrying"))
    if "node" in status:  # absent from an older daemon's reply
        summary.insert(1, ("node", status["node"]))
    sources = [
        [
            source["name"],
            source["type"],
            source["watch"],
            "running" if source["scanning"] else "idle",
            human_time(source["last_scan"], "never"),
            "-" if source["scan_seconds"] is None else f"{source['scan_seconds']:.1f} s",
            SERVED.get(served := source.get("served", "served"), served),
        ]
        for source in status["sources"]
    ]
    headers: tuple[str, ...] = (*SOURCE_HEADERS, "SERVED")
    if all(source.get("served", "served") == "served" for source in status["sources"]):
        headers, sources = SOURCE_HEADERS, [row[:-1] for row in sources]  # one host: as ever
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
        table(sources, headers),
        "",
        table(licences, LICENCE_HEADERS),
    ]


def recording_state(recording: Recording) -> str:
    """``present``, ``erased`` or ``missing``, with ``held`` and ``skipped`` when they apply."""
    marks = [str(recording["state"])]
    if recording["held"]:
        marks.append("held")
    if recording.get("skip_reason"):
        marks.append("skipped")
    return ", ".join(marks)


def recording_row(recording: Recording) -> list[str]:
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


def _deadline(recording: RecordingDetail) -> list[tuple[str, str]]:
    """The deadline and how it was reached (``started + 3mo, by <rule>``), or that a legal
    hold's release deferred it past that; then the floor that release set, if any."""
    retention = recording.get("retention")
    deadline, not_before = recording["deadline"], recording.get("not_before")
    text = human_time(deadline, "never")
    if retention is not None:
        period = retention["period"]
        why = f"retention {period}" if deadline is None else f"started + {period}"
        by_retention = retention.get("deadline")
        deferred = not_before is not None and deadline == not_before
        if deferred and by_retention not in (None, deadline):
            why = f"deferred by a legal hold's release; {why} is {human_time(by_retention)}"
        text += f" ({why}, by {retention['rule']})"
    pairs = [("deadline", text)]
    if not_before is not None:
        why = "released from a legal hold: release + holds.release_grace"
        pairs.append(("not before", f"{human_time(not_before)} ({why})"))
    return pairs


def _provenance(name: str, field: Field) -> str:
    """A classified value and where it came from: ``1700 (from pattern)``; a time to the
    second."""
    found = field.get("from")
    value = human_time(field["value"]) if name == "started" else cell(field["value"])
    return f"{value} (from {found})" if found else value


def show_lines(recording: RecordingDetail) -> list[str]:
    """``recctl show``: one recording, each classified field with where it came from, and how
    its deadline was reached."""
    fields = recording.get("fields") or {}
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
    skipped = recording.get("skip_reason")
    if skipped:
        pairs.append(("skipped", skipped))
    pairs += [
        ("first seen", human_time(recording.get("first_seen"))),
        ("mtime", human_time(recording.get("mtime"))),
    ]
    if recording.get("dev") is not None and recording.get("ino") is not None:
        pairs.append(("inode", f"{recording['ino']} on device {recording['dev']}"))
    return key_values(pairs)


def policy_row(policy: Policy) -> list[str]:
    """The cells of one ``policy`` entry under ``POLICY_HEADERS``."""
    return [
        licence_cell(policy["licence"]),
        cell(policy["name"]),
        cell(policy["retention"]),
        cell(policy["rule"]),
        str(policy["recordings"]),
        "tripped" if policy["breaker"] else "-",
    ]


def scan_line(scan: Scan) -> str:
    """``pbx1: 12034 files, 12 new, 3 changed, 1 missing, 4.2 s``."""
    files = scan["files"]
    return printable(
        f"{scan['source']}: {files} {'file' if files == 1 else 'files'}, {scan['new']} new, "
        f"{scan['changed']} changed, {scan['missing']} missing, {scan['seconds']:.1f} s"
    )


def breaker_row(breaker: Breaker) -> list[str]:
    """The cells of one ``breaker ls`` entry under ``BREAKER_HEADERS``."""
    return [
        licence_cell(breaker["licence"]),
        human_time(breaker["tripped_at"]),
        str(breaker["due"]),
        str(breaker["total"]),
        human_time(breaker["released_at"]),
        cell(breaker["released_by"]),
    ]
