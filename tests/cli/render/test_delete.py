"""``recd.cli.render.delete``: the holds a run's items name, each once, in order."""

from __future__ import annotations

from recd.cli.render.delete import holds_of
from recd.cli.render.replies import Item


def _item(outcome: str, holds: list[str]) -> Item:
    return {"id": "r", "location": None, "licence": "L", "size": None, "outcome": outcome,
            "holds": holds, "note": None}  # fmt: skip


def test_holds_of_lists_each_hold_once_in_order():
    items = [_item("held", ["H-2", "H-1"]), _item("erased", ["H-9"]), _item("held", ["H-1", "H-3"])]
    assert holds_of(items) == ["H-2", "H-1", "H-3"]
