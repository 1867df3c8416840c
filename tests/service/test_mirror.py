"""recd.service.mirror: recd's holds mirrored as S3 object legal holds on a real S3 endpoint (moto
on loopback): only the legal holds recd set are removed, and one that cannot be mirrored is logged
and tried again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recd.core.scope import Scope
from recd.daemon.runtime import scan_all
from recd.service.holds import Holds
from recd.service.mirror import HoldMirror
from tests.service.helpers import ALICE, NEW, put, s3_estate


def test_holds_are_mirrored_as_s3_legal_holds_and_only_recds_are_removed(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any, client: Any
) -> None:
    locked = make_bucket("locked")
    e = s3_estate(tmp_path, locked, s3_endpoint, mirror_legal_holds=True)
    key, other = f"{NEW}1.wav", f"{NEW}2.wav"
    ours = put(client, locked, key, b"a", b"b")
    (theirs,) = put(client, locked, other, b"c")
    client.put_object_legal_hold(
        Bucket=locked, Key=other, VersionId=theirs, LegalHold={"Status": "ON"}
    )

    def status(k: str, v: str) -> str:
        reply = client.get_object_legal_hold(Bucket=locked, Key=k, VersionId=v)
        return str(reply.get("LegalHold", {}).get("Status") or "OFF")

    runtime = e.runtime()
    try:
        assert scan_all(runtime)
        holds = Holds(e.config, runtime.catalogue, runtime.audit, e.clock)
        mirror = HoldMirror(e.config, runtime.catalogue, runtime.audit, e.clock, runtime.stores)
        hold, held = holds.place(Scope("L1"), case="C-1", reason="litigation", until=None,
                                 actor=ALICE)  # fmt: skip
        assert held == 2
        first = mirror.run()
        assert (first.on, first.kept, first.failed) == (2, 1, 0)
        assert [status(key, v) for v in ours] == ["ON", "ON"]
        assert mirror.run().on == 0  # idempotent
        (newer,) = put(client, locked, key, b"a later take")  # the poll finds it, held too
        assert scan_all(runtime)
        assert mirror.run().on == 1 and status(key, newer) == "ON"
        holds.release(hold.id, reason="settled", actor=ALICE)
        released = mirror.run()
        assert (released.off, released.failed) == (3, 0)
        assert [status(key, v) for v in [*ours, newer]] == ["OFF", "OFF", "OFF"]
        assert status(other, theirs) == "ON", "a legal hold recd did not set stays"
    finally:
        runtime.close()
    mirrored = [x["details"] for x in e.audit() if x["action"] == "hold.mirrored"]
    assert mirrored == [
        {"on": 2, "off": 0, "already_on": 1},
        {"on": 1, "off": 0, "already_on": 0},
        {"on": 0, "off": 3, "already_on": 0},
    ]


def test_a_hold_that_cannot_be_mirrored_is_logged_and_tried_again(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any, client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    plain = make_bucket("versioned")  # no Object Lock: the store refuses object legal holds
    e = s3_estate(tmp_path, plain, s3_endpoint, mirror_legal_holds=True)
    put(client, plain, f"{NEW}1.wav", b"a")
    runtime = e.runtime()
    try:
        assert scan_all(runtime)
        Holds(e.config, runtime.catalogue, runtime.audit, e.clock).place(
            Scope("L1"), case="C", reason="r", until=None, actor=ALICE
        )
        mirror = HoldMirror(e.config, runtime.catalogue, runtime.audit, e.clock, runtime.stores)
        assert (mirror.run().failed, mirror.run().failed) == (1, 1)  # each run tries again
    finally:
        runtime.close()
    assert any(
        m.startswith(f"cannot set the S3 legal hold of {NEW}1.wav: ") for m in caplog.messages
    )
    assert not [x for x in e.audit() if x["action"] == "hold.mirrored"]  # nothing changed
