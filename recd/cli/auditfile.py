"""`recctl audit ls|verify|head`: read an audit log directly, never through the daemon, so an
auditor can check a copy on another machine. All stream: memory does not grow with the log.

What is read (``--file``) is one file or a state directory. A directory is the whole chain: its
closed segments ``audit.log.<first>-<last>`` (``.gz`` read transparently) in order, then the live
``audit.log``; the chain must run from seq 1 through every file without a gap or a break. One
file is the chain it holds: from seq 1, or, for a segment or a live log that begins with the
``audit.rotated`` entry of a rotation, from that entry on (what comes before it is in the
earlier segments, which only the directory checks).

Every chain's lines, whoever reads them (these files, or ``recd.cli.audittable`` the audit table
of a PostgreSQL database), are verified by one function, ``check_lines``; ``verify_chain``,
``head_chain`` and ``list_chain`` print any ``Chain`` alike.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from recd.cli.render.audit import AUDIT_HEADERS, audit_json, audit_row
from recd.cli.render.text import column_widths, format_row, json_array, plural, to_json, widen
from recd.core.audit import (
    GENESIS,
    Anchor,
    AuditEntry,
    VerifyResult,
    anchor_problem,
    from_line,
    parse_anchor,
    verify,
)
from recd.core.auditsegments import GZ, ROTATED, Gap, first_gap, parse_segment, segments
from recd.core.times import parse_iso, parse_time
from recd.errors import AuditCorrupt, ExitCode, RecdError, UsageError, os_reason

LIVE = "audit.log"

#: Takes each line of a chain, as sealed (with its newline), in order: what an export writes.
Sink = Callable[[bytes], None]


def _lines(path: Path) -> Iterator[bytes]:
    """The lines of ``path`` (uncompressed), each with its newline (the last may lack it),
    read as needed."""
    try:
        with gzip.open(path, "rb") if path.name.endswith(GZ) else path.open("rb") as file:
            yield from file
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise AuditCorrupt(f"{path}: not a gzip file ({exc})") from None
        raise RecdError(f"{path}: cannot read: {os_reason(exc)}") from exc
    except (EOFError, zlib.error) as exc:
        raise AuditCorrupt(f"{path}: not a complete gzip file ({exc})") from None


def chain_files(path: Path) -> list[Path]:
    """The files ``path`` stands for, in chain order: itself, or for a directory its segments
    then ``audit.log`` (left out if absent, as in a copy of the segments alone).

    Raises ``AuditCorrupt`` naming the first entries no segment of the directory holds.
    """
    if not path.is_dir():
        return [path]
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise RecdError(f"{path}: cannot read: {os_reason(exc)}") from exc
    found = segments(LIVE, names)
    gap = first_gap(found)
    if gap is not None:
        raise AuditCorrupt(f"{path}: {gap}")
    files = [path / segment.name for segment in found]
    if LIVE in names:
        files.append(path / LIVE)
    if not files:
        raise RecdError(
            f"{path}: no audit log here (neither {LIVE} nor a segment {LIVE}.<first>-<last>)"
        )
    return files


def entries(path: Path, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
    """(number, entry) for each complete line of the chain ``path`` stands for, numbered from
    1 across its files, up to number ``limit``.

    An incomplete last line is left out: it is a write still in progress, or a torn tail that
    the daemon repairs and ``audit verify`` reports.
    """
    count = 0
    for file in chain_files(path):
        for number, line in enumerate(_lines(file), start=1):
            if not line.endswith(b"\n"):
                break
            count += 1
            if limit is not None and count > limit:
                return
            try:
                entry = from_line(line)
            except ValueError as exc:
                raise AuditCorrupt(
                    f"{file}: line {number}: {exc} (run `recctl audit verify --file {path}`)"
                ) from None
            yield count, entry


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value, UTC)
    except ValueError:
        quoted = json.dumps(value, ensure_ascii=False)
        raise UsageError(f"--since: not an ISO 8601 time: {quoted}") from None


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


@dataclass(frozen=True, slots=True)
class Checked:
    """A chain verified whole: the result, and what was read (for the summary line)."""

    result: VerifyResult
    files: int  # files read (1 unless a directory)
    directory: bool
    partial: bool  # a file that continues a chain begun in earlier segments

    def scope(self) -> str:
        """`` (...)`` after the entry count, saying what the count covers ('' for one whole
        file)."""
        r = self.result
        if self.partial:
            return (
                f" (seq {r.first_seq}-{r.last_seq}, continuing the chain of earlier segments: "
                f"checked from entry {r.first_seq} on)"
            )
        if self.directory:
            return f" (in {plural(self.files, 'file', 'files')})"
        return ""


def _starts_mid_chain(path: Path) -> bool:
    """Whether ``path`` begins with the ``audit.rotated`` entry a rotation writes."""
    for line in _lines(path):
        try:
            return from_line(line).action == ROTATED
        except ValueError:
            return False  # verify names it
    return False


def _passed(lines: Iterable[bytes], sink: Sink) -> Iterator[bytes]:
    """``lines``, each handed to ``sink`` as it is read (before it is checked)."""
    for line in lines:
        sink(line)
        yield line


class _Counted:
    """Lines passed through, remembering where the last one began in the bytes read."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = lines
        self.start = 0  # where the last line handed on began
        self._end = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self._lines:
            self.start, self._end = self._end, self._end + len(line)
            yield line


def check_lines(
    name: str,
    lines: Iterable[bytes],
    *,
    after: Anchor | None,
    watch: Collection[int] = (),
    sink: Sink | None = None,
    by_byte: bool = False,
    previous: str | None = None,
) -> VerifyResult:
    """Verify ``lines``, one stretch of a chain following ``after``: the one check the lines of
    every reader go through (a file's, a segment's, a database table's), streaming.

    ``AuditCorrupt`` names ``name``, the first bad entry's seq and where it is: its line number
    in the stretch, or with ``by_byte`` the byte where it begins (as the audit table's ``pos``
    counts them). ``previous`` names the stretch before (whose last entry is ``after``), for a
    break between the two. ``sink`` is handed every line as read, before it is checked.
    """
    counted = _Counted(lines if sink is None else _passed(lines, sink))
    result = verify(counted, watch=watch, after=after)
    if result.ok:
        return result
    reason = result.reason
    if result.bad_line == 1 and previous is not None and after is not None:
        if result.bad_seq is not None and result.bad_seq > after.seq + 1:
            reason = str(Gap(after.seq + 1, result.bad_seq - 1))
        else:
            reason = (
                f"{reason}, the last entry of {previous} (the chain is broken between the two "
                "files)"
            )
    place = f"byte {counted.start}" if by_byte else f"line {result.bad_line}"
    raise AuditCorrupt(f"{name}: entry {result.bad_seq} ({place}): {reason}")


def _check_file(
    file: Path, after: Anchor | None, watch: set[int], previous: Path | None, sink: Sink | None
) -> VerifyResult:
    """One file of the chain, following ``after``; ``AuditCorrupt`` for its first bad entry."""
    before = None if previous is None else previous.name
    result = check_lines(
        str(file), _lines(file), after=after, watch=watch, sink=sink, previous=before
    )
    segment = parse_segment(LIVE, file.name)
    if (
        segment is not None
        and result.entries
        and (result.first_seq, result.last_seq) != (segment.first, segment.last)
    ):
        raise AuditCorrupt(
            f"{file}: holds entries {result.first_seq}-{result.last_seq}, not "
            f"{segment.first}-{segment.last} as its name says"
        )
    return result


def check_whole(
    name: str, lines: Iterable[bytes], anchors: Sequence[Anchor] = (), sink: Sink | None = None
) -> Checked:
    """A whole chain held in one place that counts bytes (the audit table), from seq 1, by
    ``check_lines``; its first bad entry is named by the byte where it begins."""
    watch = {anchor.seq for anchor in anchors}
    start = Anchor(0, GENESIS)
    result = check_lines(name, lines, after=start, watch=watch, sink=sink, by_byte=True)
    return Checked(result, 1, directory=False, partial=False)


def _verified(path: Path, anchors: Sequence[Anchor] = (), sink: Sink | None = None) -> Checked:
    """The chain ``path`` stands for, verified whole; ``AuditCorrupt`` names its first bad or
    missing entry. ``sink`` is handed every line read, in chain order."""
    files = chain_files(path)
    directory = path.is_dir()
    partial = not directory and _starts_mid_chain(path)
    after: Anchor | None = None if partial else Anchor(0, GENESIS)
    watch = {anchor.seq for anchor in anchors}
    total, first = 0, None
    watched: dict[int, str] = {}
    last_hash: str | None = None
    previous: Path | None = None
    for file in files:
        result = _check_file(file, after, watch, previous, sink)
        if result.entries:
            first = result.first_seq if first is None else first
            after = Anchor(result.last_seq, result.last_hash or GENESIS)
            last_hash = result.last_hash
        total += result.entries
        watched |= result.watched
        previous = file
    result = VerifyResult(True, total, last_hash, None, None, None, watched, first or 1)
    return Checked(result, len(files), directory, partial)


def copy_chain(path: Path, sink: Sink) -> Checked:
    """Verify the chain ``path`` stands for, as ``verify_chain`` does, handing ``sink`` every
    line as read (decompressed, byte for byte as sealed) in chain order.

    ``AuditCorrupt`` names the first bad or missing entry as ``verify_chain`` does; by then
    ``sink`` has had the lines before it, and the bad one, which the caller must throw away.
    """
    return _verified(path, sink=sink)


class Chain(Protocol):
    """A chain to check or list: files (``FileChain``) or the audit table of a PostgreSQL
    database (``recd.cli.audittable``)."""

    @property
    def name(self) -> str:
        """How the output names it: the path, or the table and its database."""
        ...

    def checked(self, anchors: Sequence[Anchor] = (), sink: Sink | None = None) -> Checked:
        """The whole chain verified (``AuditCorrupt`` names its first bad or missing entry),
        watching ``anchors``, handing ``sink`` every line as read."""
        ...

    def entries(self, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
        """(number, entry) for each complete entry, numbered from 1, up to number ``limit``;
        each parsed, not verified (``AuditCorrupt`` for one that does not parse)."""
        ...


@dataclass(frozen=True, slots=True)
class FileChain:
    """The chain a state directory, a segment or a live audit.log holds."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def checked(self, anchors: Sequence[Anchor] = (), sink: Sink | None = None) -> Checked:
        return _verified(self.path, anchors, sink)

    def entries(self, limit: int | None = None) -> Iterator[tuple[int, AuditEntry]]:
        return entries(self.path, limit)


def verify_chain(chain: Chain, expect: Sequence[str] | None = None) -> ExitCode:
    """Check the whole chain; print the entry count and the last hash (to anchor elsewhere).

    With ``expect`` (``SEQ:HASH`` anchors, as ``head_chain`` prints them), the chain must also
    still hold each anchored entry with that hash: the first (lowest seq) that it does not is
    the error, as it is where a cut or rewritten tail begins to show.
    """
    anchors = _parse_anchors(expect)
    checked = chain.checked(anchors)
    result = checked.result
    for anchor in anchors:
        problem = anchor_problem(anchor, result)
        if problem is not None:
            raise AuditCorrupt(f"{chain.name}: {problem}")
    count = plural(result.entries, "entry", "entries")
    line = (
        f"{chain.name}: {count}{checked.scope()}, chain intact, last hash "
        f"{result.last_hash or GENESIS}"
    )
    if anchors:
        seqs = sorted({anchor.seq for anchor in anchors})
        held = ", ".join(str(seq) for seq in seqs)
        line += f"; {'entry' if len(seqs) == 1 else 'entries'} {held} as expected"
    print(line)
    return ExitCode.OK


def head_chain(chain: Chain, *, as_json: bool) -> ExitCode:
    """Check the whole chain; print the entry count and its head, ``SEQ:HASH``, to keep
    elsewhere.

    The head is what ``verify_chain``'s ``expect`` takes back. An empty log's head is seq 0 and
    the genesis hash.
    """
    checked = chain.checked()
    result = checked.result
    head = Anchor(result.last_seq if result.entries else 0, result.last_hash or GENESIS)
    if as_json:
        shown = {"entries": result.entries, "seq": head.seq, "hash": head.hash}
        print(to_json(shown))
        return ExitCode.OK
    count = plural(result.entries, "entry", "entries")
    print(f"{chain.name}: {count}{checked.scope()}, chain intact; head {head}")
    return ExitCode.OK


def list_chain(
    chain: Chain, since_text: str | None, actions: Sequence[str] | None, *, as_json: bool
) -> ExitCode:
    """List entries, optionally since a time and of some actions, as a table or JSON."""
    since = _parse_since(since_text)
    action_matches = _action_matcher(actions)

    def wanted(entry: AuditEntry) -> bool:
        return action_matches(entry.action) and (since is None or parse_time(entry.time) >= since)

    # Two passes keep memory flat: the first checks every line parses (so nothing is printed
    # from a damaged log) and measures the columns; the second prints. It stops at the first
    # pass's last line, as the daemon may be appending meanwhile (a table is read in one
    # snapshot: the same both times).
    widths = column_widths((), AUDIT_HEADERS)
    lines = 0
    for number, entry in chain.entries():
        lines = number
        if wanted(entry) and not as_json:
            widths = widen(widths, audit_row(entry))
    selected = (entry for _, entry in chain.entries(limit=lines) if wanted(entry))
    if as_json:
        for text in json_array(audit_json(entry) for entry in selected):
            sys.stdout.write(text)
        return ExitCode.OK
    print(format_row(AUDIT_HEADERS, widths))
    for entry in selected:
        print(format_row(audit_row(entry), widths))
    return ExitCode.OK
