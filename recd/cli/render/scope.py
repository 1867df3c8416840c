"""recctl's text for the scope of a legal hold or an early-deletion request.

A scope is a rule (recordings, call ids, party, a span of start times, combined with AND); with
none of them, or ``"all": true``, it is the whole licence. A field missing or of the wrong type
raises KeyError, TypeError or ValueError, which recctl reports as a reply it cannot read
(``recd.cli.kit.rendered``).
"""

from __future__ import annotations

from recd.cli.render.replies import Hold, Request, Scope
from recd.cli.render.text import human_time, plural

WHOLE_LICENCE = "whole licence"
SCOPE_FLAGS = "--recording, --call-id, --party, --from or --to"


def _day(value: str) -> str:
    """A scope bound: the date alone at midnight UTC, else the time to the second."""
    text = human_time(value)
    return text.removesuffix("T00:00:00Z")


def _scope(subject: Hold | Request) -> Scope:
    """The scope's five fields; a request's scope is the file's, which may leave some out."""
    scope = subject["scope"]
    return {
        "recordings": scope.get("recordings") or [],
        "call_ids": scope.get("call_ids") or [],
        "party": scope.get("party"),
        "from": scope.get("from"),
        "to": scope.get("to"),
    }


def scope_summary(subject: Hold | Request) -> str:
    """A hold's or request's scope in a few words: ``2 recordings, call 1712, party +4412,
    2026-11-01..2026-11-15``, or ``whole licence``."""
    scope = _scope(subject)
    parts = []
    if scope["recordings"]:
        parts.append(plural(len(scope["recordings"]), "recording", "recordings"))
    calls = scope["call_ids"]
    if calls:
        parts.append(f"call {calls[0]}" if len(calls) == 1 else f"{len(calls)} calls")
    if scope["party"]:
        parts.append(f"party {scope['party']}")
    if scope["from"] or scope["to"]:
        start = _day(scope["from"]) if scope["from"] else ""
        parts.append(f"{start}..{_day(scope['to']) if scope['to'] else ''}")
    if subject.get("whole_licence") or not parts:
        return WHOLE_LICENCE
    return ", ".join(parts)


def scope_pairs(subject: Hold | Request) -> list[tuple[str, str]]:
    """The scope as ``key: value`` pairs, one per field given."""
    if subject.get("whole_licence"):
        return [("scope", "whole licence: every recording of it, present and future")]
    scope = _scope(subject)
    pairs = []
    if scope["recordings"]:
        pairs.append(("recordings", ", ".join(scope["recordings"])))
    if scope["call_ids"]:
        pairs.append(("call ids", ", ".join(scope["call_ids"])))
    if scope["party"]:
        pairs.append(("party", str(scope["party"])))
    if scope["from"]:
        pairs.append(("started from", human_time(scope["from"])))
    if scope["to"]:
        pairs.append(("started before", human_time(scope["to"])))
    return pairs
