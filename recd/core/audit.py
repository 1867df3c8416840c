"""Audit entries: canonical form, hash chaining and chain verification (SPEC section 8).

An entry's ``hash`` is the SHA-256 (hex) of the canonical JSON of the entry without ``hash``;
``prev`` is the previous entry's ``hash`` (``GENESIS`` for the first); ``seq`` counts from 1 with
no gaps. Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, non-ASCII kept as is,
NaN and infinities refused. One entry is one line of ``audit.log``: its canonical JSON (with
``hash``) and ``\\n``. A line is accepted only if it is byte for byte what ``to_line`` writes, so
two different files can never verify with the same hashes.

What the chain proves, and what it cannot: any change to an entry, any removed, inserted,
duplicated or reordered entry and a torn last line are found by ``verify``, at the first entry
that no longer fits. An entry that is rewritten with a recomputed hash is found at the entry after
it (whose ``prev`` no longer matches). Removing or forging the *last* entries leaves a shorter or
different chain that is valid in itself; only a last hash kept elsewhere can show that: an
``Anchor`` (``SEQ:HASH``, as ``recctl audit head`` prints it, written down or shipped off the host)
that ``anchor_problem`` later checks the chain against (``recctl audit verify --expect``).

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from recd.core.times import TIME_EXAMPLE, format_time, parse_time

GENESIS = "0" * 64

FIELDS = ("seq", "time", "actor", "action", "subject", "details", "prev", "hash")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An entry before it is sealed into the chain: what happened, to what, by whom."""

    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    actor: str = "recd"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A sealed audit entry, exactly as one line of audit.log holds it."""

    seq: int
    time: str  # ISO 8601 UTC, e.g. 2026-11-23T13:43:09.123456Z
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of ``verify``.

    ``entries`` counts the entries that verified (all of them when ``ok``); as a chain counts
    from 1, it is also the last verified ``seq``. ``last_hash`` is the hash of the last of those
    (None when there are none). For a bad entry, ``bad_line`` is its 1-based line number and
    ``bad_seq`` its sequence number: the entry's own ``seq`` when the entry is intact but does
    not link to the one before, else the number it should have had. ``watched`` maps each
    verified ``seq`` that ``verify`` was asked to watch to its entry's hash.
    """

    ok: bool
    entries: int
    last_hash: str | None
    bad_seq: int | None
    bad_line: int | None
    reason: str | None
    watched: Mapping[int, str] = field(default_factory=dict)
    first_seq: int = 1  # the seq of the first entry (a segment's, when verified on its own)

    @property
    def last_seq(self) -> int:
        """The seq of the last verified entry (``first_seq - 1`` when none verified)."""
        return self.first_seq + self.entries - 1


@dataclass(frozen=True, slots=True)
class Anchor:
    """An entry's ``seq`` and ``hash``, kept off the host to check the log against later.

    Written ``SEQ:HASH`` (``str`` gives it, ``parse_anchor`` reads it). Seq 0 with the genesis
    hash is the head of an empty chain, which every chain holds.
    """

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def canonical_json(obj: object) -> bytes:
    """``obj`` as canonical JSON bytes.

    Raises ``ValueError`` for NaN, infinities and text that is not valid Unicode (lone
    surrogates), ``TypeError`` for values JSON has no form for.
    """
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def location_details(location: str) -> dict[str, str]:
    """How an entry (or a certificate) records where a file is (SPEC section 8).

    ``location`` is the path as text. A path that is not UTF-8 (its undecodable bytes are lone
    surrogates, as ``os.fsdecode`` gives them) cannot be JSON text as it is: ``location`` then
    shows each such byte as ``\\xHH`` and ``location_bytes`` holds the exact path, every byte
    as two lower-case hex digits. ``location_bytes`` is present only then, so a ``location``
    without it is the path exactly.
    """
    try:
        location.encode("utf-8")
    except UnicodeEncodeError:
        raw = location.encode("utf-8", "surrogateescape")
        return {
            "location": raw.decode("utf-8", "backslashreplace"),
            "location_bytes": raw.hex(),
        }
    return {"location": location}


def _body(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "details": dict(entry.details),
        "prev": entry.prev,
    }


def _digest(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical_json(_body(entry))).hexdigest()


def seal(draft: AuditDraft, *, seq: int, prev: str, time: datetime) -> AuditEntry:
    """The entry ``draft`` becomes as number ``seq`` after the entry whose hash is ``prev``.

    ``details`` are normalised through JSON (tuples become lists, keys become text), so the
    sealed entry equals what ``from_line`` reads back. Raises ``ValueError``/``TypeError`` for
    details canonical JSON cannot hold, and ``ValueError`` for a ``seq`` below 1.
    """
    return seal_line(draft, seq=seq, prev=prev, time=time)[0]


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')


def _text(value: str) -> str:
    """``value`` as a JSON string, as ``canonical_json`` writes it (plain ASCII without
    quotes, backslashes or control characters needs no escaping: the common case, cheaply)."""
    if _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def seal_line(
    draft: AuditDraft, *, seq: int, prev: str, time: datetime
) -> tuple[AuditEntry, bytes]:
    """``seal`` and ``to_line`` at once, encoding the details a single time.

    The canonical form of an entry is an object with seven fixed keys around the details, so
    it is assembled from the details' canonical bytes rather than encoded again (twice per
    erased file in a sweep). ``to_line`` of the entry gives the same bytes.
    """
    if seq < 1:
        raise ValueError(f"sequence numbers start at 1, not {seq}")
    details_json = canonical_json(dict(draft.details)).decode("utf-8")
    stamp = format_time(time)
    head = f'{{"action":{_text(draft.action)},"actor":{_text(draft.actor)},"details":{details_json}'
    tail = (
        f'"prev":{_text(prev)},"seq":{seq},"subject":{_text(draft.subject)},"time":{_text(stamp)}}}'
    )
    digest = hashlib.sha256(f"{head},{tail}".encode()).hexdigest()
    details = json.loads(details_json)
    entry = AuditEntry(seq, stamp, draft.actor, draft.action, draft.subject, details, prev, digest)
    line = f'{head},"hash":"{digest}",{tail}\n'.encode()
    return entry, line


def to_line(entry: AuditEntry) -> bytes:
    """The line of audit.log that holds ``entry``: canonical JSON and a newline."""
    return canonical_json(_body(entry) | {"hash": entry.hash}) + b"\n"


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def _is_text(value: object) -> bool:
    return isinstance(value, str)


_CHECKS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("seq", lambda v: type(v) is int and v >= 1, "is not a positive integer"),
    ("time", _is_time, f"is not a UTC time like {TIME_EXAMPLE}"),
    ("actor", _is_text, "is not a string"),
    ("action", _is_text, "is not a string"),
    ("subject", _is_text, "is not a string"),
    ("details", lambda v: isinstance(v, dict), "is not a JSON object"),
    ("prev", _is_digest, "is not a SHA-256 hex digest"),
    ("hash", _is_digest, "is not a SHA-256 hex digest"),
)


def _field_problem(obj: dict[str, Any]) -> str | None:
    missing = [name for name in FIELDS if name not in obj]
    if missing:
        return f'missing field "{missing[0]}"'
    extra = sorted(set(obj) - set(FIELDS))
    if extra:
        return f'unexpected field "{extra[0]}"'
    for name, valid, problem in _CHECKS:
        if not valid(obj[name]):
            return f'field "{name}" {problem}'
    return None


def from_line(line: bytes) -> AuditEntry:
    """Parse one line (with or without its newline) into an entry; no hash or chain checks.

    Raises ``ValueError`` whose message is the reason, e.g. ``not valid JSON``.
    """
    body = line.removesuffix(b"\n")
    if not body:
        raise ValueError("empty line")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        # ValueError also covers NaN/Infinity and integers too long to convert.
        raise ValueError("not valid JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    problem = _field_problem(obj)
    if problem is not None:
        raise ValueError(problem)
    return AuditEntry(**{name: obj[name] for name in FIELDS})


def parse_sealed(line: bytes) -> AuditEntry:
    """Parse a line and check it is exactly what ``seal`` and ``to_line`` write.

    Checks the entry's own hash and its canonical form, not its place in the chain. Raises
    ``ValueError`` with the reason.
    """
    entry = from_line(line)
    try:
        digest = _digest(entry)
    except ValueError:
        # json.loads accepts escapes of lone surrogates, which no sealed entry contains.
        raise ValueError("text is not valid Unicode") from None
    if digest != entry.hash:
        raise ValueError("hash does not match the entry's content")
    if to_line(entry) != line.removesuffix(b"\n") + b"\n":
        # Same content in another spelling (e.g. \u001F for \u001f): not what recd wrote.
        raise ValueError("not in canonical JSON form")
    return entry


def link_problem(entry: AuditEntry, verified: int, prev: str) -> str | None:
    """Why an intact entry does not follow entry ``verified`` (whose hash is ``prev``), if it
    does not."""
    if entry.seq != verified + 1:
        if verified == 0:
            return f"sequence starts at {entry.seq}, not 1 (entries removed from the start?)"
        if entry.seq > verified + 1:
            return f"sequence jumps from {verified} to {entry.seq} (entries removed or reordered?)"
        return f"sequence number {entry.seq} follows {verified} (entries duplicated or reordered?)"
    if entry.prev != prev:
        if verified == 0:
            return "first entry's prev is not the genesis hash (entries removed from the start?)"
        return f"prev does not match the hash of entry {verified}"
    return None


def verify(
    lines: Iterable[bytes], watch: Collection[int] = (), after: Anchor | None = Anchor(0, GENESIS)
) -> VerifyResult:
    """Check a whole chain, line by line as a binary file iterates, and find the first bad entry.

    Streams: holds one line at a time (and the hashes of the ``watch``ed sequence numbers, for
    ``anchor_problem``). Every line must end with a newline; one that does not can only be the
    file's last, cut short (a torn write or a truncated copy). The first entry must follow
    ``after`` (the start of the chain by default; the last entry of the segment before, for a
    later segment); with ``after=None`` it may follow anything (a segment checked on its own).
    """
    last_seq = -1 if after is None else after.seq
    prev = "" if after is None else after.hash
    first_seq = last_seq + 1
    last_hash: str | None = None
    watched: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        entry: AuditEntry | None = None
        if not line.endswith(b"\n"):
            reason: str | None = "last line is incomplete (truncated file?)"
        else:
            try:
                entry = parse_sealed(line)
            except ValueError as exc:
                reason = str(exc)
            else:
                if last_seq < 0:
                    last_seq, prev, first_seq = entry.seq - 1, entry.prev, entry.seq
                reason = link_problem(entry, last_seq, prev)
        if reason is not None:
            bad_seq = max(last_seq + 1, 1) if entry is None else entry.seq
            return VerifyResult(
                False, number - 1, last_hash, bad_seq, number, reason, watched, max(first_seq, 1)
            )
        assert entry is not None
        last_seq = entry.seq
        prev = last_hash = entry.hash
        if entry.seq in watch:
            watched[entry.seq] = entry.hash
    entries = max(last_seq + 1 - first_seq, 0)
    return VerifyResult(True, entries, last_hash, None, None, None, watched, max(first_seq, 1))


def parse_anchor(text: str) -> Anchor:
    """The anchor written ``SEQ:HASH`` (as ``recctl audit head`` prints it).

    The hash may be in upper case (it is kept in lower case). Raises ``ValueError`` with the
    reason, which does not repeat ``text``.
    """
    seq_text, colon, digest = text.partition(":")
    if not colon:
        raise ValueError("not SEQ:HASH (no colon)")
    if not (seq_text.isascii() and seq_text.isdigit()):
        raise ValueError("SEQ is not a sequence number (0, 1, 2, ...)")
    digest = digest.lower()
    if not _is_digest(digest):
        raise ValueError("HASH is not a SHA-256 hash (64 hex digits)")
    seq = int(seq_text)
    if seq == 0 and digest != GENESIS:
        raise ValueError("seq 0 is the start of the chain, whose hash is 64 zeros")
    return Anchor(seq, digest)


def anchor_problem(anchor: Anchor, result: VerifyResult) -> str | None:
    """Why the chain ``result`` verified does not hold ``anchor`` (None when it does).

    ``result`` must be ``ok`` and have watched ``anchor.seq``. A chain that ends before the
    anchored entry lost its tail; one with another hash there was rewritten at or before it
    (entries after a changed one are re-sealed for the chain to verify).
    """
    if anchor.seq == 0:
        return None  # parse_anchor allows only the genesis hash, the start of every chain
    if anchor.seq > result.last_seq:
        return (
            f"the log ends at seq {result.last_seq}, before the expected entry {anchor.seq}: "
            "its tail was cut"
        )
    if anchor.seq < result.first_seq:
        return (
            f"entry {anchor.seq} comes before seq {result.first_seq}, where this part of the "
            "chain begins: check the whole chain (give the state directory) to test it"
        )
    found = result.watched[anchor.seq]
    if found != anchor.hash:
        return (
            f"entry {anchor.seq} has hash {found}, not the expected {anchor.hash}: "
            "the log was rewritten at or before it"
        )
    return None
