"""``recd.cli.render.scope``: the scope of a hold or a request, summed up for a table and spelt
out for ``show``."""

from __future__ import annotations

import pytest

from recd.cli.render.scope import scope_pairs, scope_summary


def _scope(**fields: object) -> dict[str, object]:
    empty: dict[str, object] = {
        "recordings": [], "call_ids": [], "party": None, "from": None, "to": None,
    }  # fmt: skip
    return {"scope": empty | fields}


@pytest.mark.parametrize(
    ("subject", "summary", "pairs"),
    [
        (_scope(), "whole licence", []),
        (
            _scope(recordings=["8a47373e7a113408a3a4"]),
            "1 recording",
            [("recordings", "8a47373e7a113408a3a4")],
        ),
        (_scope(call_ids=["1", "2", "3"]), "3 calls", [("call ids", "1, 2, 3")]),
        (_scope(party="+44 1234"), "party +44 1234", [("party", "+44 1234")]),
        (
            _scope(to="2026-11-15T12:30:00+01:00"),
            "..2026-11-15T11:30:00Z",
            [("started before", "2026-11-15T11:30:00Z")],
        ),
        (
            _scope(**{"from": "2026-11-01T00:00:00Z"}),
            "2026-11-01..",
            [("started from", "2026-11-01T00:00:00Z")],
        ),
        (
            _scope(party="+44 1234") | {"whole_licence": True},
            "whole licence",
            [("scope", "whole licence: every recording of it, present and future")],
        ),
    ],
)
def test_scopes_are_summed_up_for_tables_and_spelt_out_for_show(subject, summary, pairs):
    assert scope_summary(subject) == summary
    assert scope_pairs(subject) == pairs
