"""recctl's text for legal holds: ``hold ls`` rows, ``hold show``, and what ``hold place`` and
``hold release`` say.

Pure functions from the ``result`` of a daemon reply (fields documented in ``recd.protocol``) to
text, every line made safe for a terminal. A field missing or of the wrong type raises KeyError,
TypeError or ValueError, which recctl reports as a reply it cannot read
(``recd.cli.kit.rendered``).
"""

from __future__ import annotations

from recd.cli.render.replies import Hold, HoldReleased
from recd.cli.render.scope import SCOPE_FLAGS, scope_pairs, scope_summary
from recd.cli.render.text import human_time, key_values, plural, printable, when_by

HOLD_HEADERS = ("HOLD", "LICENCE", "CASE", "STATE", "HELD", "PLACED", "BY", "UNTIL", "SCOPE")


def hold_row(hold: Hold) -> list[str]:
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


def hold_lines(hold: Hold) -> list[str]:
    """``recctl hold show``: one hold as ``key: value`` lines."""
    pairs = [
        ("hold", str(hold["id"])),
        ("licence", str(hold["licence"])),
        ("case", str(hold["case"])),
        ("reason", str(hold["reason"])),
        ("state", str(hold["state"])),
        *scope_pairs(hold),
        ("held now", plural(hold["held"], "recording", "recordings")),
        ("placed", when_by(hold["placed_at"], hold["placed_by"])),
        ("until", human_time(hold["until"], "none (held until released)")),
    ]
    if hold["released_at"]:
        why = hold["release_reason"]
        pairs.append(("released", when_by(hold["released_at"], hold["released_by"], why)))
    return key_values(pairs)


def hold_placed(hold: Hold) -> str:
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


def hold_released(result: HoldReleased) -> str:
    """The line ``hold release`` prints."""
    head = f"hold {result['id']} released"
    released: int = result["released"]
    if not released:
        return printable(f"{head}: no recording was held by it alone, so none falls due")
    return printable(
        f"{head}: {plural(released, 'recording', 'recordings')} no longer held; none is erased "
        f"before {human_time(result['due_from'])} (holds.release_grace)"
    )
