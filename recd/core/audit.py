"""Audit entries: canonical form, hash chaining and chain verification (SPEC section 8).

An entry's ``hash`` is the SHA-256 (hex) of the canonical JSON of the entry without ``hash``;
``prev`` is the previous entry's ``hash`` (``GENESIS`` for the first). Canonical JSON: keys
sorted, no insignificant whitespace, UTF-8, non-ASCII kept as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64


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
