"""Audit entries as one entry per recording: a batch's ``erase.intent`` read as the per-recording
intents it stands for (SPEC section 7), so that checks of the form "every ``erase.done`` follows
its own ``erase.intent``" read old and new logs alike.

Written apart from ``recd.core.intents`` on purpose: the tests check recd's reader, not use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def per_recording(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with each batch ``erase.intent`` replaced by one entry per recording it
    lists (same seq, time and hash; subject the recording's id; details the batch's shared
    ones, the recording's own and ``batch``); every other entry as it is."""
    out: list[dict[str, Any]] = []
    for e in entries:
        d = e["details"]
        if e["action"] != "erase.intent" or "recordings" not in d:
            out.append(e)
            continue
        shared = {k: v for k, v in d.items() if k != "recordings"}
        for item in d["recordings"]:
            own = {k: v for k, v in item.items() if k != "id"}
            out.append(e | {"subject": item["id"], "details": shared | own})
    return out
