"""``recd.cli.render.audit``: an audit entry's details in brief, cut to a width, the details a
person scans for first leading, times shown to the second."""

from __future__ import annotations

import pytest

from recd.cli.render.audit import SUMMARY_LIMIT, details_summary


@pytest.mark.parametrize(
    ("details", "summary"),
    [
        ({}, ""),
        ({"b": 1, "a": "x"}, "a=x b=1"),
        (
            {"s": "two words", "e": "", "q": 'say "hi"', "c": "a,b", "k": "k=v"},
            ('c="a,b" e="" k="k=v" q="say \\"hi\\"" s="two words"'),
        ),
        (
            {"n": None, "t": True, "f": 1.5, "l": [1, "a"], "d": {"x": 1}},
            ('d={"x":1} f=1.5 l=[1,"a"] n=null t=true'),
        ),
        ({"long": "x" * 100}, "long=" + "x" * 74 + "…"),
        ({"fits": "x" * 75}, "fits=" + "x" * 75),
    ],
)
def test_details_summary(details, summary):
    assert details_summary(details) == summary
    assert len(details_summary(details)) <= SUMMARY_LIMIT


SHA = "ca05ff1d12292cb5dc13b3fe8b6987a6be22bf917c78898d16db9ae4bc4bbfd5"


CERTIFIED = {
    "erased": 2, "failed": 0, "gone": 0, "held": 0,
    "path": "/var/lib/recd/certificates/REQ-2026-0042.json", "sha256": SHA,
    "state": "completed",
}  # fmt: skip


def test_a_certificate_entry_shows_its_sha256_first():
    """The digest an auditor compares the customer's copy with, whole, before the 80
    characters run out; other actions keep their order (an erase shows its location first)."""
    assert details_summary(CERTIFIED, action="request.certificate") == (f"sha256={SHA} erased=…")
    done = {"sha256": SHA, "location": "/srv/a.wav", "size": 7}
    assert details_summary(done, limit=200, action="erase.done") == (
        f"location=/srv/a.wav size=7 sha256={SHA}"
    )


def test_audit_times_in_details_are_shown_to_the_second():
    details = {
        "due_from": "2026-11-30T19:08:36.923241Z",
        "reason": "expired: held until 2026-11-23T19:12:00.000000Z",  # prose stays as written
        "scope": {"from": "2026-11-01T00:00:00.000000Z", "recordings": ["2026-11-01"]},
        "until": None,
        "when": "2026-11-30T19:08:36Z",  # not the audit log's form: as it is
    }
    assert details_summary(details, limit=200) == (
        'reason="expired: held until 2026-11-23T19:12:00.000000Z" '
        "due_from=2026-11-30T19:08:36Z "
        'scope={"from":"2026-11-01T00:00:00Z","recordings":["2026-11-01"]} until=null '
        "when=2026-11-30T19:08:36Z"
    )
