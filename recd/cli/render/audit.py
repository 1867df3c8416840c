"""recctl's text for audit log entries: ``recctl audit ls`` rows, their JSON, details in brief.

Entries come from the audit file (``recd.cli.auditfile``), not from the daemon. Times are shown
to the second, in the details too; the details a person scans for first lead, cut to a width (a
batch's ``erase.intent`` in brief: how many recordings, under which directory; ``--json`` has
them all).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from recd.cli.render.text import human_time
from recd.core.audit import FIELDS, AuditEntry
from recd.core.intents import batch_summary
from recd.core.times import format_human_time, parse_time

AUDIT_HEADERS = ("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS")


SUMMARY_LIMIT = 80


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


#: Details an operator scans for first; the rest follow alphabetically. A batch's
#: ``erase.intent`` shows how many ``recordings`` it announces and the directory they are ``under``.
LEADING_DETAILS = (
    "recordings",
    "under",
    "location",
    "licence",
    "reason",
    "method",
    "effective",
    "ineffective_reason",
    "error",
    "skipped",
    "size",
)


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
        details_summary(batch_summary(entry.details) or entry.details, action=entry.action),
    ]


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """``entry`` as a JSON object with the audit.log fields, in the SPEC's order."""
    return {name: getattr(entry, name) for name in FIELDS} | {"details": dict(entry.details)}
