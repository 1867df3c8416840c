"""recctl's text for ``delete``: the plan a request's preview shows, the confirmation asked, and the
summary of the run.

A request for a whole licence is said as such above the plan and asks for its licence id, not
``yes``. A field missing or of the wrong type raises KeyError, TypeError or ValueError, which
recctl reports as a reply it cannot read (``recd.cli.kit.rendered``).
"""

from __future__ import annotations

from collections.abc import Sequence

from recd.cli.render.replies import Executed, Item, Preview
from recd.cli.render.requests import counts_text
from recd.cli.render.text import human_size, plural, printable


def plan_header(preview: Preview) -> str:
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


def dry_run(preview: Preview) -> str:
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


def unchanged(preview: Preview, result: Executed) -> str | None:
    """What ``delete`` says when the run changed nothing: the request's certificate, audited
    before the preview, is still the one (same audit entry, same SHA-256); else None."""
    before = preview["request"]["certificate"]
    if not before:
        return None
    request = result["request"]
    after = request["certificate"]
    if before != after:
        return None
    what = "nothing left to erase"
    if request["state"] != "completed":
        what = "nothing more can be erased now"
    return printable(
        f"request {request['id']}: {what}; certificate unchanged (sha256 {after['sha256']})"
    )


def whole_licence_warning(preview: Preview) -> str:
    """The line above the plan of a request for a whole licence (``"all": true``)."""
    request = preview["request"]
    licence = request["licence"]
    return printable(
        f"WHOLE LICENCE: request {request['id']} erases every recording of licence {licence}"
        f' ("all": true), and each later run also those indexed after this one'
    )


def confirm_licence(preview: Preview) -> str:
    """The question a request for a whole licence asks: the licence id, typed."""
    request = preview["request"]
    erase = plural(preview["erase"], "recording", "recordings")
    return printable(
        f"Erase EVERY recording of licence {request['licence']} ({erase} now) for request "
        f"{request['id']}? This cannot be undone. Type the licence id to continue: "
    )


def confirm_question(preview: Preview) -> str:
    request = preview["request"]
    erase = plural(preview["erase"], "recording", "recordings")
    return printable(
        f"Erase {erase} of licence {request['licence']} for request {request['id']}? "
        "This cannot be undone. Type yes to continue: "
    )


def holds_of(items: Sequence[Item]) -> list[str]:
    """The holds that kept items back, each once, in order of first mention."""
    found = (hold for item in items if item["outcome"] == "held" for hold in item["holds"])
    return list(dict.fromkeys(found))


def executed(result: Executed) -> str:
    """``erased 3, held 1 (H-0002), failed 0, already gone 2; certificate: recctl request
    certificate REQ``."""
    request = result["request"]
    counts = counts_text(request["counts"], holds_of(result["items"]))
    return printable(f"{counts}; certificate: recctl request certificate {request['id']}")
