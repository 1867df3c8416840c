"""The catalogue's row codecs (recd.adapters._rows): times stored as integer
microseconds convert back exactly. The codecs' refusal of a row that does not decode is
in test_corrupt.py; the codecs round-trip every record through the contract suites.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from recd.adapters._rows import fields_json, from_us, to_us
from recd.core.model import Classification, Provenance


def test_time_conversion_is_exact() -> None:
    when = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def _dumps(c: Classification) -> str:
    """What ``fields_json`` wrote before it was written by hand (``json.dumps``)."""
    data = {
        "call_id": c.call_id,
        "extension": c.extension,
        "caller": c.caller,
        "callee": c.callee,
        "duration": c.duration,
        "format": c.format,
        "provenance": {k: str(v) for k, v in c.provenance.items()},
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


TEXT = st.one_of(st.none(), st.text(), st.sampled_from(["0770090001", 'a"b\\c', "é\u2028\udcff"]))


@given(
    call_id=TEXT,
    extension=TEXT,
    caller=TEXT,
    callee=TEXT,
    duration=st.one_of(st.none(), st.floats(), st.floats(min_value=0, max_value=1e6)),
    fmt=TEXT,
    provenance=st.dictionaries(
        st.sampled_from(["licence", "started", "call_id", "caller", "format", "x\u00e9"]),
        st.sampled_from(list(Provenance)),
    ),
)
def test_fields_json_is_json_dumps(
    call_id: str | None,
    extension: str | None,
    caller: str | None,
    callee: str | None,
    duration: float | None,
    fmt: str | None,
    provenance: dict[str, Provenance],
) -> None:
    c = Classification(
        licence="L1",
        started=datetime(2026, 1, 1, tzinfo=UTC),
        call_id=call_id,
        extension=extension,
        caller=caller,
        callee=callee,
        duration=duration,
        format=fmt,
        provenance=provenance,
    )
    assert fields_json(c) == _dumps(c)
    assert fields_json(c) == _dumps(c)  # the second time from the provenance cache
