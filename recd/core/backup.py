"""A backup of recd's state: which files it holds, its manifest, and what a copy must match
(SPEC section 8, issue 14 point 4).

A backup directory holds ``catalog.db`` (SQLite's online backup of the catalogue), every closed
audit segment (``audit.log.<first>-<last>``, or ``.gz``), ``audit.log`` (the live log cut at a
whole entry, never before the entry the backed-up catalogue's audit mark names) and
``MANIFEST.json``, written last: each file with its size and SHA-256, the audit chain's entry
count and head (``SEQ:HASH``, the last entry of the copy) and the catalogue's mark. The manifest
and the copied chain can be checked offline (``recctl backup verify``).

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from recd.core.audit import GENESIS

MANIFEST = "MANIFEST.json"
CATALOGUE = "catalog.db"
LIVE_LOG = "audit.log"
FORMAT = 1
#: As in the state directory: the catalogue is recd's alone (caller numbers are in paths), the
#: audit log is for the admin group to read.
CATALOGUE_MODE = 0o600
SHARED_MODE = 0o640

_SEGMENT = re.compile(r"audit\.log\.([0-9]{1,20})-([0-9]{1,20})(\.gz)?")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def segment_range(name: str) -> tuple[int, int] | None:
    """``(first, last)`` seq of a closed segment's file name, None for any other name."""
    found = _SEGMENT.fullmatch(name)
    if found is None:
        return None
    first, last = int(found[1]), int(found[2])
    return (first, last) if 0 < first <= last else None


def audit_order(names: Iterable[str]) -> list[str]:
    """The audit files among ``names`` in chain order: segments by first seq, then the live
    log. A segment kept both plain and compressed counts once (the plain one)."""
    by_range: dict[tuple[int, int], str] = {}
    for name in names:
        span = segment_range(name)
        if span is not None and (span not in by_range or not name.endswith(".gz")):
            by_range[span] = name
    ordered = [by_range[span] for span in sorted(by_range)]
    return [*ordered, LIVE_LOG] if LIVE_LOG in names else ordered


def file_mode(name: str) -> int:
    return CATALOGUE_MODE if name == CATALOGUE else SHARED_MODE


@dataclass(frozen=True, slots=True)
class BackupFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``MANIFEST.json`` says. ``entries`` is the audit entry count of the copied chain,
    ``seq``/``hash`` its last entry (0 and None for an empty log); ``mark_seq``/``mark_hash``
    the audit entry the backed-up catalogue says it reflects (None: it has no mark)."""

    recd_version: str
    created: str  # ISO 8601 UTC
    state_dir: str
    files: tuple[BackupFile, ...]
    entries: int
    seq: int
    hash: str | None
    mark_seq: int | None
    mark_hash: str | None

    @property
    def head(self) -> str:
        """``SEQ:HASH``, as ``recctl audit head`` prints it."""
        return f"{self.seq}:{self.hash or GENESIS}"


def manifest_json(manifest: Manifest) -> bytes:
    doc = {
        "format": FORMAT,
        "recd_version": manifest.recd_version,
        "created": manifest.created,
        "state_dir": manifest.state_dir,
        "files": [asdict(f) for f in manifest.files],
        "audit": {"entries": manifest.entries, "seq": manifest.seq, "hash": manifest.hash},
        "catalogue_mark": {"seq": manifest.mark_seq, "hash": manifest.mark_hash},
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``; ``ValueError`` saying what is wrong with it."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}, this recctl reads {FORMAT}")
    audit, mark, files = doc.get("audit"), doc.get("catalogue_mark"), doc.get("files")
    if not isinstance(audit, dict) or not isinstance(mark, dict) or not isinstance(files, list):
        raise ValueError("audit, catalogue_mark or files missing")
    return Manifest(
        recd_version=_text(doc, "recd_version"),
        created=_text(doc, "created"),
        state_dir=_text(doc, "state_dir"),
        files=tuple(_file(f, i) for i, f in enumerate(files)),
        entries=_count(audit, "audit.entries"),
        seq=_count(audit, "audit.seq"),
        hash=_digest(audit.get("hash"), "audit.hash", optional=True),
        mark_seq=None if mark.get("seq") is None else _count(mark, "catalogue_mark.seq"),
        mark_hash=_digest(mark.get("hash"), "catalogue_mark.hash", optional=True),
    )


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key}: text expected")
    return value


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key.rpartition(".")[2])
    if type(value) is not int or value < 0:
        raise ValueError(f"{key}: a whole number expected, not {value!r}")
    return value


def _digest(value: object, key: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise ValueError(f"{key}: a SHA-256 in hex expected, not {value!r}")
    return value


def _file(obj: object, index: int) -> BackupFile:
    where = f"files[{index}]"
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: an object expected")
    name = obj.get("name")
    if name not in (CATALOGUE, LIVE_LOG) and (
        not isinstance(name, str) or segment_range(name) is None
    ):
        raise ValueError(f"{where}.name: not a file a backup holds: {name!r}")
    assert isinstance(name, str)
    digest = _digest(obj.get("sha256"), f"{where}.sha256")
    assert digest is not None
    return BackupFile(name, _count(obj, f"{where}.size"), digest)


def manifest_problems(manifest: Manifest) -> list[str]:
    """What makes a manifest inconsistent in itself (before any file is read)."""
    problems = []
    names = [f.name for f in manifest.files]
    if len(set(names)) != len(names):
        problems.append("a file is listed twice")
    if CATALOGUE not in names:
        problems.append(f"{CATALOGUE} is not listed")
    if manifest.entries != manifest.seq:
        problems.append(f"audit.entries {manifest.entries} but the head is seq {manifest.seq}")
    if (manifest.seq == 0) != (manifest.hash is None):
        problems.append(f"head {manifest.head} is not an entry")
    if manifest.mark_seq is not None and manifest.mark_seq > manifest.seq:
        problems.append(
            f"the catalogue's mark (seq {manifest.mark_seq}) is after the copied log's head "
            f"(seq {manifest.seq})"
        )
    return problems


def file_problems(
    manifest: Manifest, found: Mapping[str, tuple[int, str] | str], present: Iterable[str]
) -> list[str]:
    """Each listed file whose copy differs, and each file present that is not listed.

    ``found`` maps a listed name to its copy's ``(size, sha256)``, or to why it could not be
    read; ``present`` names every entry of the backup directory.
    """
    problems = []
    for f in manifest.files:
        got = found.get(f.name, "missing")
        if isinstance(got, str):
            problems.append(f"{f.name}: {got}")
        elif got[0] != f.size:
            problems.append(f"{f.name}: {got[0]} bytes, the manifest says {f.size}")
        elif got[1] != f.sha256:
            problems.append(f"{f.name}: SHA-256 {got[1]}, the manifest says {f.sha256}")
    listed = {f.name for f in manifest.files} | {MANIFEST}
    problems += [f"{name}: not in the manifest" for name in sorted(set(present) - listed)]
    return problems
