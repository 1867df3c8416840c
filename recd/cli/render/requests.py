"""recctl's text for early-deletion requests: ``request ls`` rows, ``request show`` with its
recordings, and what ``request add``, ``approve`` and ``reject`` say.

Pure functions from the ``result`` of a daemon reply (fields documented in ``recd.protocol``) to
text, every line made safe for a terminal. A field missing or of the wrong type raises KeyError,
TypeError or ValueError, which recctl reports as a reply it cannot read
(``recd.cli.kit.rendered``).
"""

from __future__ import annotations

from collections.abc import Sequence

from recd.cli.render.replies import (
    Certificate,
    Counts,
    Item,
    Person,
    Request,
    RequestDetail,
    Signer,
)
from recd.cli.render.scope import scope_pairs
from recd.cli.render.text import cell, human_size, human_time, key_values, printable, table, when_by

REQUEST_HEADERS = (
    "REQUEST",
    "LICENCE",
    "STATE",
    "RECEIVED",
    "REQUESTER",
    "VERIFIED-BY",
    "ERASED",
    "HELD",
)


ITEM_HEADERS = ("ID", "LOCATION", "SIZE", "OUTCOME", "HOLDS", "NOTE")


def _verifier(request: Request) -> str:
    if request["approved_by"]:
        return str(request["approved_by"])
    if request["signed_by"]:
        return f"{request['signed_by']['name']} (signature)"
    return "-"


def request_row(request: Request) -> list[str]:
    """The cells of one ``request ls`` entry under ``REQUEST_HEADERS``."""
    counts = request["counts"]
    return [
        request["id"],
        request["licence"],
        request["state"],
        human_time(request["received"]),
        # A request rebuilt from an older audit log has no document, so no requester (``?``,
        # as ``request show`` says it); ``request show`` tells how to give its file again.
        (request["requested_by"] or UNKNOWN)["name"],
        _verifier(request),
        str(counts["erased"]),
        str(counts["held"]),
    ]


def person(person: Person | Signer) -> str:
    return f"{person['name']} <{person['email']}>"


def counts_text(counts: Counts, holds: Sequence[str] = ()) -> str:
    """``erased 3, held 1 (H-0002), failed 0, already gone 2`` (and pending when some are)."""
    held = f"held {counts['held']}" + (f" ({', '.join(holds)})" if holds else "")
    parts = [f"erased {counts['erased']}", held, f"failed {counts['failed']}"]
    parts.append(f"already gone {counts['gone']}")
    if counts["pending"]:
        parts.append(f"pending {counts['pending']}")
    return ", ".join(parts)


def item_row(item: Item) -> list[str]:
    """The cells of one recording of a request under ``ITEM_HEADERS``."""
    return [
        item["id"],
        cell(item["location"]),
        "-" if item["size"] is None else human_size(item["size"]),
        item["outcome"],
        ", ".join(item["holds"]) or "-",
        cell(item["note"]),
    ]


def items_table(items: Sequence[Item]) -> str:
    return table([item_row(item) for item in items], ITEM_HEADERS)


#: The requester of a request whose document the daemon does not have.
UNKNOWN: Person = {"name": "?", "email": "?", "role": "?"}


def request_lines(request: Request, items: Sequence[Item]) -> list[str]:
    """``recctl request show``: the request as ``key: value`` lines, then its recordings."""
    requester = request["requested_by"] or UNKNOWN
    pairs = [
        ("request", str(request["id"])),
        ("licence", str(request["licence"])),
        ("state", str(request["state"])),
    ]
    if request.get("document_missing"):
        note = "not in the audit log (an older recd's): it does not run until its file is "
        pairs.append(("document", note + "registered again (recctl request add --file)"))
    pairs += [
        ("requested by", f"{person(requester)}, {requester['role']}"),
        ("received", human_time(request["received"])),
        ("reason", str(request["reason"])),
        ("evidence", str(request["evidence"])),
        *scope_pairs(request),
        ("verification", str(request["verification"])),
        ("registered", when_by(request["registered_at"], request["registered_by"])),
    ]
    if request["approved_at"]:
        pairs.append(("approved", when_by(request["approved_at"], request["approved_by"])))
    if request["signed_by"]:
        signer = request["signed_by"]
        pairs.append(("signed by", f"{person(signer)} ({signer['key']})"))
    if request["rejected_at"]:
        why = request["rejected_reason"]
        pairs.append(("rejected", when_by(request["rejected_at"], request["rejected_by"], why)))
    if request["executed_at"]:
        pairs.append(("executed", human_time(request["executed_at"])))
    pairs.append(("outcome", counts_text(request["counts"])))
    if request["certificate"]:
        pairs.append(("certificate", certificate_text(request["certificate"])))
    lines = key_values(pairs)
    return [*lines, "", items_table(items)] if items else lines


def request_detail_lines(request: RequestDetail) -> list[str]:
    """``recctl request show``: ``request_lines`` of a request and the recordings it holds."""
    return request_lines(request, request["items"])


def certificate_text(certificate: Certificate) -> str:
    """``PATH (sha256 HEX, audit entry #SEQ)``."""
    return (
        f"{certificate['path']} (sha256 {certificate['sha256']}, audit entry #{certificate['seq']})"
    )


def request_added(request: Request) -> str:
    """The line ``request add`` prints."""
    rid, state = request["id"], request["state"]
    if request.get("existing"):
        return printable(f"request {rid} was already registered with this content (state: {state})")
    line = f"request {rid} registered for licence {request['licence']}: {state}"
    if state == "received":
        line += f"; a second administrator must run `recctl request approve {rid}`"
    elif request["signed_by"]:
        line += f": signed by {person(request['signed_by'])}"
    return printable(line)


def request_approved(request: Request) -> str:
    """The line ``request approve`` prints."""
    rid = request["id"]
    return printable(
        f"request {rid} {request['state']}: approved by {request['approved_by']}; "
        f"erase with `recctl delete --request-id {rid}`"
    )


def request_rejected(request: Request) -> str:
    """The line ``request reject`` prints."""
    return printable(
        f"request {request['id']} rejected by {request['rejected_by']}: nothing is erased for it"
    )
