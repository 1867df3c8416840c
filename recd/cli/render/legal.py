"""recctl output for legal holds, early-deletion requests and their execution.

Like ``render``: pure functions from the ``result`` of a daemon reply (fields documented in
``recd.protocol``) to text, every line made safe for a terminal. A field missing or of the wrong
type raises KeyError, TypeError or ValueError, which recctl reports as a reply it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recd.cli.render.tables import (
    cell,
    human_size,
    human_time,
    key_values,
    plural,
    printable,
    table,
)

HOLD_HEADERS = ("HOLD", "LICENCE", "CASE", "STATE", "HELD", "PLACED", "BY", "UNTIL", "SCOPE")
REQUEST_HEADERS = (
    "REQUEST", "LICENCE", "STATE", "RECEIVED", "REQUESTER", "VERIFIED-BY", "ERASED", "HELD",
)  # fmt: skip
ITEM_HEADERS = ("ID", "LOCATION", "SIZE", "OUTCOME", "HOLDS", "NOTE")
WHOLE_LICENCE = "whole licence"
SCOPE_FLAGS = "--recording, --call-id, --party, --from or --to"


def _day(value: str) -> str:
    """A scope bound: the date alone at midnight UTC, else the time to the second."""
    text = human_time(value)
    return text.removesuffix("T00:00:00Z")


def _scope(subject: Mapping[str, Any]) -> dict[str, Any]:
    """The scope's five fields; a request's scope is the file's, which may leave some out."""
    scope: Mapping[str, Any] = subject["scope"]
    return {key: scope.get(key) for key in ("recordings", "call_ids", "party", "from", "to")}


def scope_summary(subject: Mapping[str, Any]) -> str:
    """A hold's or request's scope in a few words: ``2 recordings, call 1712, party +4412,
    2026-11-01..2026-11-15``, or ``whole licence``."""
    scope = _scope(subject)
    parts = []
    if scope["recordings"]:
        parts.append(plural(len(scope["recordings"]), "recording", "recordings"))
    calls: Sequence[str] = scope["call_ids"] or ()
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


def scope_pairs(subject: Mapping[str, Any]) -> list[tuple[str, str]]:
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


def _when_by(when: str | None, who: str | None, why: str | None = None) -> str:
    text = f"{human_time(when)} by {cell(who)}"
    return f"{text}: {why}" if why else text


# --- holds ---------------------------------------------------------------------------------------


def hold_row(hold: Mapping[str, Any]) -> list[str]:
    """The cells of one ``hold ls`` entry under ``HOLD_HEADERS``."""
    return [
        hold["id"],
        hold["licence"],
        hold["case"],
        hold["state"],
        str(hold["held"]),
        human_time(hold["placed_at"]),
        hold["placed_by"],
        human_time(hold["until"]),
        scope_summary(hold),
    ]


def hold_lines(hold: Mapping[str, Any]) -> list[str]:
    """``recctl hold show``: one hold as ``key: value`` lines."""
    pairs = [
        ("hold", str(hold["id"])),
        ("licence", str(hold["licence"])),
        ("case", str(hold["case"])),
        ("reason", str(hold["reason"])),
        ("state", str(hold["state"])),
        *scope_pairs(hold),
        ("held now", plural(hold["held"], "recording", "recordings")),
        ("placed", _when_by(hold["placed_at"], hold["placed_by"])),
        ("until", human_time(hold["until"], "none (held until released)")),
    ]
    if hold["released_at"]:
        why = hold["release_reason"]
        pairs.append(("released", _when_by(hold["released_at"], hold["released_by"], why)))
    return key_values(pairs)


def hold_placed(hold: Mapping[str, Any]) -> str:
    """The line ``hold place`` says on stderr."""
    licence = hold["licence"]
    head = f"hold {hold['id']} placed on licence {licence} (case {hold['case']})"
    if hold["until"]:
        head += f" until {human_time(hold['until'])}"
    if hold["whole_licence"]:
        return printable(
            f"{head}: covers every recording of licence {licence}, present and future "
            f"(no {SCOPE_FLAGS} given)"
        )
    held = plural(hold["held"], "recording", "recordings")
    return printable(f"{head}: {held} held now; recordings indexed later that match are held too")


def hold_released(result: Mapping[str, Any]) -> str:
    """The line ``hold release`` prints."""
    head = f"hold {result['id']} released"
    released: int = result["released"]
    if not released:
        return printable(f"{head}: no recording was held by it alone, so none falls due")
    return printable(
        f"{head}: {plural(released, 'recording', 'recordings')} no longer held; none is erased "
        f"before {human_time(result['due_from'])} (holds.release_grace)"
    )


# --- requests ------------------------------------------------------------------------------------


def _verifier(request: Mapping[str, Any]) -> str:
    if request["approved_by"]:
        return str(request["approved_by"])
    if request["signed_by"]:
        return f"{request['signed_by']['name']} (signature)"
    return "-"


def request_row(request: Mapping[str, Any]) -> list[str]:
    """The cells of one ``request ls`` entry under ``REQUEST_HEADERS``."""
    counts = request["counts"]
    return [
        request["id"],
        request["licence"],
        request["state"],
        human_time(request["received"]),
        request["requested_by"]["name"],
        _verifier(request),
        str(counts["erased"]),
        str(counts["held"]),
    ]


def _person(person: Mapping[str, Any]) -> str:
    return f"{person['name']} <{person['email']}>"


def counts_text(counts: Mapping[str, Any], holds: Sequence[str] = ()) -> str:
    """``erased 3, held 1 (H-0002), failed 0, already gone 2`` (and pending when some are)."""
    held = f"held {counts['held']}" + (f" ({', '.join(holds)})" if holds else "")
    parts = [f"erased {counts['erased']}", held, f"failed {counts['failed']}"]
    parts.append(f"already gone {counts['gone']}")
    if counts["pending"]:
        parts.append(f"pending {counts['pending']}")
    return ", ".join(parts)


def item_row(item: Mapping[str, Any]) -> list[str]:
    """The cells of one recording of a request under ``ITEM_HEADERS``."""
    return [
        item["id"],
        cell(item["location"]),
        "-" if item["size"] is None else human_size(item["size"]),
        item["outcome"],
        ", ".join(item["holds"]) or "-",
        cell(item["note"]),
    ]


def items_table(items: Sequence[Mapping[str, Any]]) -> str:
    return table([item_row(item) for item in items], ITEM_HEADERS)


def request_lines(request: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[str]:
    """``recctl request show``: the request as ``key: value`` lines, then its recordings."""
    requester = request["requested_by"] or {"name": "?", "email": "?", "role": "?"}
    pairs = [
        ("request", str(request["id"])),
        ("licence", str(request["licence"])),
        ("state", str(request["state"])),
    ]
    if request.get("document_missing"):
        why = "not in the audit log (an older recd's): it does not run until its file is "
        pairs.append(("document", why + "registered again (recctl request add --file)"))
    pairs += [
        ("requested by", f"{_person(requester)}, {requester['role']}"),
        ("received", human_time(request["received"])),
        ("reason", str(request["reason"])),
        ("evidence", str(request["evidence"])),
        *scope_pairs(request),
        ("verification", str(request["verification"])),
        ("registered", _when_by(request["registered_at"], request["registered_by"])),
    ]
    if request["approved_at"]:
        pairs.append(("approved", _when_by(request["approved_at"], request["approved_by"])))
    if request["signed_by"]:
        signer = request["signed_by"]
        pairs.append(("signed by", f"{_person(signer)} ({signer['key']})"))
    if request["rejected_at"]:
        why = request["rejected_reason"]
        pairs.append(("rejected", _when_by(request["rejected_at"], request["rejected_by"], why)))
    if request["executed_at"]:
        pairs.append(("executed", human_time(request["executed_at"])))
    pairs.append(("outcome", counts_text(request["counts"])))
    if request["certificate"]:
        pairs.append(("certificate", certificate_text(request["certificate"])))
    lines = key_values(pairs)
    return [*lines, "", items_table(items)] if items else lines


def certificate_text(certificate: Mapping[str, Any]) -> str:
    """``PATH (sha256 HEX, audit entry #SEQ)``."""
    return (
        f"{certificate['path']} (sha256 {certificate['sha256']}, audit entry #{certificate['seq']})"
    )


def request_added(request: Mapping[str, Any]) -> str:
    """The line ``request add`` prints."""
    rid, state = request["id"], request["state"]
    if request.get("existing"):
        return printable(f"request {rid} was already registered with this content (state: {state})")
    line = f"request {rid} registered for licence {request['licence']}: {state}"
    if state == "received":
        line += f"; a second administrator must run `recctl request approve {rid}`"
    elif request["signed_by"]:
        line += f": signed by {_person(request['signed_by'])}"
    return printable(line)


def request_approved(request: Mapping[str, Any]) -> str:
    """The line ``request approve`` prints."""
    rid = request["id"]
    return printable(
        f"request {rid} {request['state']}: approved by {request['approved_by']}; "
        f"erase with `recctl delete --request-id {rid}`"
    )


def request_rejected(request: Mapping[str, Any]) -> str:
    """The line ``request reject`` prints."""
    return printable(
        f"request {request['id']} rejected by {request['rejected_by']}: nothing is erased for it"
    )


# --- delete --------------------------------------------------------------------------------------


def plan_header(preview: Mapping[str, Any]) -> str:
    """``request REQ for licence acme: 3 recordings to erase (1.2 MB), 1 held, 2 already gone``;
    for a request not approved yet, ``..., not verified yet: 3 recordings to erase once
    approved (...``."""
    request = preview["request"]
    erase = plural(preview["erase"], "recording", "recordings")
    head = f"request {request['id']} for licence {request['licence']}"
    if request["state"] == "received":
        head, erase = f"{head}, not verified yet", f"{erase} to erase once approved"
    else:
        erase += " to erase"
    return printable(
        f"{head}: {erase} ({human_size(preview['bytes'])}), {preview['held']} held, "
        f"{preview['gone']} already gone"
    )


def dry_run(preview: Mapping[str, Any]) -> str:
    """The line a dry run ends with; for a request not approved yet, that nothing can be
    erased until it is."""
    request = preview["request"]
    if request["state"] != "received":
        return "dry run: nothing erased"
    rid = request["id"]
    return printable(
        f"dry run: nothing erased; request {rid} is not verified yet: nothing can be erased "
        f"until a second administrator runs `recctl request approve {rid}`"
    )


def unchanged(preview: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
    """What ``delete`` says when the run changed nothing: the request's certificate, audited
    before the preview, is still the one (same audit entry, same SHA-256); else None."""
    before = preview["request"]["certificate"]
    if not before:
        return None
    request = result["request"]
    after = request["certificate"]
    if before != after:
        return None
    what = "nothing left to erase" if request["state"] == "completed" else (
        "nothing more can be erased now"
    )  # fmt: skip
    return printable(
        f"request {request['id']}: {what}; certificate unchanged (sha256 {after['sha256']})"
    )


def whole_licence_warning(preview: Mapping[str, Any]) -> str:
    """The line above the plan of a request for a whole licence (``"all": true``)."""
    request = preview["request"]
    licence = request["licence"]
    return printable(
        f"WHOLE LICENCE: request {request['id']} erases every recording of licence {licence}"
        f' ("all": true), and each later run also those indexed after this one'
    )


def confirm_licence(preview: Mapping[str, Any]) -> str:
    """The question a request for a whole licence asks: the licence id, typed."""
    request = preview["request"]
    erase = plural(preview["erase"], "recording", "recordings")
    return printable(
        f"Erase EVERY recording of licence {request['licence']} ({erase} now) for request "
        f"{request['id']}? This cannot be undone. Type the licence id to continue: "
    )


def confirm_question(preview: Mapping[str, Any]) -> str:
    request = preview["request"]
    erase = plural(preview["erase"], "recording", "recordings")
    return printable(
        f"Erase {erase} of licence {request['licence']} for request {request['id']}? "
        "This cannot be undone. Type yes to continue: "
    )


def holds_of(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The holds that kept items back, each once, in order of first mention."""
    found = (hold for item in items if item["outcome"] == "held" for hold in item["holds"])
    return list(dict.fromkeys(found))


def executed(result: Mapping[str, Any]) -> str:
    """``erased 3, held 1 (H-0002), failed 0, already gone 2; certificate: recctl request
    certificate REQ``."""
    request = result["request"]
    counts = counts_text(request["counts"], holds_of(result["items"]))
    return printable(f"{counts}; certificate: recctl request certificate {request['id']}")
