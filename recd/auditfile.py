"""`recctl audit ls|verify|head`: read an audit log file directly, never through the daemon, so
an auditor can check a copy on another machine. All stream: memory does not grow with the log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from recd import render
from recd.core.audit import (
    GENESIS,
    Anchor,
    AuditEntry,
    VerifyResult,
    anchor_problem,
    from_line,
    parse_anchor,
    parse_time,
    verify,
)
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


def _parse_anchors(texts: Sequence[str] | None) -> list[Anchor]:
    """The ``--expect`` anchors, in the order of their sequence numbers."""
    anchors: list[Anchor] = []
    for text in texts or ():
        try:
            anchors.append(parse_anchor(text))
        except ValueError as exc:
            quoted = json.dumps(text, ensure_ascii=False)
            raise UsageError(
                f"--expect: {exc}: {quoted} (give SEQ:HASH as `recctl audit head` prints it)"
            ) from None
    return sorted(anchors, key=lambda anchor: anchor.seq)


def _verified(path: Path, anchors: Sequence[Anchor] = ()) -> VerifyResult:
    """The chain of ``path``, verified whole; ``AuditCorrupt`` names its first bad entry."""
    result = verify(_lines(path), watch={anchor.seq for anchor in anchors})
    if not result.ok:
        raise AuditCorrupt(
            f"{path}: entry {result.bad_seq} (line {result.bad_line}): {result.reason}"
        )
    return result


def verify_file(path: Path, expect: Sequence[str] | None = None) -> ExitCode:
    """Check the whole chain; print the entry count and the last hash (to anchor elsewhere).

    With ``expect`` (``SEQ:HASH`` anchors, as ``head_file`` prints them), the chain must also
    still hold each anchored entry with that hash: the first (lowest seq) that it does not is
    the error, as it is where a cut or rewritten tail begins to show.
    """
    anchors = _parse_anchors(expect)
    result = _verified(path, anchors)
    for anchor in anchors:
        problem = anchor_problem(anchor, result)
        if problem is not None:
            raise AuditCorrupt(f"{path}: {problem}")
    count = render.plural(result.entries, "entry", "entries")
    line = f"{path}: {count}, chain intact, last hash {result.last_hash or GENESIS}"
    if anchors:
        seqs = sorted({anchor.seq for anchor in anchors})
        held = ", ".join(str(seq) for seq in seqs)
        line += f"; {'entry' if len(seqs) == 1 else 'entries'} {held} as expected"
    print(line)
    return ExitCode.OK


def head_file(path: Path, *, as_json: bool) -> ExitCode:
    """Check the whole chain; print the entry count and its head, ``SEQ:HASH``, to keep elsewhere.

    The head is what ``verify_file``'s ``expect`` takes back. An empty log's head is seq 0 and
    the genesis hash.
    """
    result = _verified(path)
    head = Anchor(result.entries, result.last_hash or GENESIS)
    if as_json:
        shown = {"entries": result.entries, "seq": head.seq, "hash": head.hash}
        print(render.to_json(shown))
        return ExitCode.OK
    count = render.plural(result.entries, "entry", "entries")
    print(f"{path}: {count}, chain intact; head {head}")
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
