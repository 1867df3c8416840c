"""`recctl audit ls|verify`: read an audit log file directly, never through the daemon, so an
auditor can check a copy on another machine. Both stream: memory does not grow with the log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from recd import render
from recd.core.audit import GENESIS, AuditEntry, from_line, parse_time, verify
from recd.errors import AuditCorrupt, ExitCode, RecdError, UsageError


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of ``path``, each with its newline (the last may lack it), read as needed."""
    try:
        with path.open("rb") as file:
            yield from file
    except OSError as exc:
        raise RecdError(f"{path}: cannot read: {exc.strerror}") from exc


def entries(path: Path, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
    """(line number, entry) for each complete line, up to line ``limit``.

    An incomplete last line is left out: it is a write still in progress, or a torn tail that
    the daemon repairs and ``audit verify`` reports.
    """
    for number, line in enumerate(_lines(path), start=1):
        if (limit is not None and number > limit) or not line.endswith(b"\n"):
            return
        try:
            entry = from_line(line)
        except ValueError as exc:
            raise AuditCorrupt(
                f"{path}: line {number}: {exc} (run `recctl audit verify --file {path}`)"
            ) from None
        yield number, entry


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        quoted = json.dumps(value, ensure_ascii=False)
        raise UsageError(f"--since: not an ISO 8601 time: {quoted}") from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


def _action_matcher(patterns: Sequence[str] | None) -> Callable[[str], bool]:
    """Exact actions and ``family.*`` prefixes; no patterns match everything."""
    if not patterns:
        return lambda action: True
    for pattern in patterns:
        if "*" in pattern.removesuffix(".*") or pattern == ".*":
            quoted = json.dumps(pattern, ensure_ascii=False)
            raise UsageError(
                f"--action: use an action such as erase.done or a family such as erase.*, "
                f"not {quoted}"
            )
    exact = frozenset(p for p in patterns if not p.endswith(".*"))
    prefixes = tuple(p.removesuffix("*") for p in patterns if p.endswith(".*"))
    return lambda action: action in exact or action.startswith(prefixes)


def verify_file(path: Path) -> ExitCode:
    """Check the whole chain; print the entry count and the last hash (to anchor elsewhere)."""
    result = verify(_lines(path))
    if not result.ok:
        raise AuditCorrupt(
            f"{path}: entry {result.bad_seq} (line {result.bad_line}): {result.reason}"
        )
    count = render.plural(result.entries, "entry", "entries")
    print(f"{path}: {count}, chain intact, last hash {result.last_hash or GENESIS}")
    return ExitCode.OK


def list_file(
    path: Path, since_text: str | None, actions: Sequence[str] | None, *, as_json: bool
) -> ExitCode:
    """List entries, optionally since a time and of some actions, as a table or JSON."""
    since = _parse_since(since_text)
    action_matches = _action_matcher(actions)

    def wanted(entry: AuditEntry) -> bool:
        return action_matches(entry.action) and (since is None or parse_time(entry.time) >= since)

    # Two passes keep memory flat: the first checks every line parses (so nothing is printed
    # from a damaged log) and measures the columns; the second prints. It stops at the first
    # pass's last line, as the daemon may be appending meanwhile.
    widths = render.column_widths((), render.AUDIT_HEADERS)
    lines = 0
    for number, entry in entries(path):
        lines = number
        if wanted(entry) and not as_json:
            widths = render.widen(widths, render.audit_row(entry))
    selected = (entry for _, entry in entries(path, limit=lines) if wanted(entry))
    if as_json:
        for text in render.json_array(render.audit_json(entry) for entry in selected):
            sys.stdout.write(text)
        return ExitCode.OK
    print(render.format_row(render.AUDIT_HEADERS, widths))
    for entry in selected:
        print(render.format_row(render.audit_row(entry), widths))
    return ExitCode.OK
