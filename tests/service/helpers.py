"""Shared by tests/service: recording ids and states read from the catalogue; for the request
tests (requests, requestruns, certificates, plan, batch) their estate (``keyed_estate``: L3
verified by signature, L2 listing a key), the actors, request documents, audit-entry filters, and
``meanwhile``, which acts once just before a run's eraser step (a race no timing shows reliably);
for the S3 tests, ``s3_estate`` (one bucket as its only source) and ``put``; for the start-up
checks, ``started`` (a few `recd --once` runs) and ``check`` (a runtime and its rebuild)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.adapters.sqlite.catalogue import SqliteCatalogue
from recd.config.load import Licence, SourceConfig
from recd.config.types import Agent
from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import State, recording_id
from recd.core.periods import parse_period
from recd.daemon.runtime import Runtime, rebuilder
from recd.ports.records import Actor
from recd.service.rebuild import Rebuild
from recd.service.requests import Requests
from tests.estate import PATTERN, Estate
from tests.fakes import FakeClock
from tests.intentshape import per_recording
from tests.keys import raw


def rid(relpath: str) -> str:
    return recording_id("pbx", relpath)


def states(estate: Estate) -> dict[str, State]:
    cat = SqliteCatalogue(estate.config.daemon.state_dir / "catalog.db")
    try:
        return {r.relpath: r.state for r in cat.all()}
    finally:
        cat.close()


ALICE = Actor("alice", 1001, admin=True)
BOB = Actor("bob", 1002, admin=True)
EVE = Actor("eve", 1003, admin=False)


def requests(estate: Estate, rt: Runtime) -> Requests:
    return Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)


def approved(estate: Estate, rt: Runtime) -> Requests:
    """The use cases, with REQ-1 (``document()``) registered by alice and approved by bob."""
    desk = requests(estate, rt)
    desk.register(document(), ALICE)
    desk.approve("REQ-1", BOB)
    return desk


def document(request_id: str = "REQ-1", licence: str = "L1", **scope: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "licence": licence,
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z",
        "reason": "Erasure requested by the data subject",
        "evidence": "letter 77",
        "scope": scope or {"all": True},
    }


def refusals(estate: Estate) -> list[dict[str, Any]]:
    return [e for e in estate.audit() if e["action"] == "request.refused"]


def certificates(estate: Estate) -> list[dict[str, Any]]:
    return [e for e in estate.audit() if e["action"] == "request.certificate"]


def erase_entries(estate: Estate) -> list[dict[str, Any]]:
    """The ``erase.*`` entries; a batch ``erase.intent`` once per recording."""
    return [e for e in per_recording(estate.audit()) if e["action"].startswith("erase.")]


def appended(path: Path) -> None:
    """What a writer does to a recording while recd works on it."""
    with path.open("ab") as f:
        f.write(b"+more")


def meanwhile(
    monkeypatch: pytest.MonkeyPatch, rt: Runtime, step: str, action: Callable[[], None]
) -> None:
    """Do ``action`` (what another process or an administrator does while a run is under way)
    once, just before the run's first call of the real eraser's ``step``: a race no real
    timing could show reliably."""
    eraser = rt.erasers["pbx"]
    real = getattr(eraser, step)
    todo = [action]

    def step_after(*args: Any, **kwargs: Any) -> Any:
        while todo:
            todo.pop()()
        return real(*args, **kwargs)

    monkeypatch.setattr(eraser, step, step_after)


def keyed_estate(
    tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]
) -> Estate:
    """The request tests' estate: L3 verified by Jane's signature, L2 listing Mallory's key."""
    e = Estate(tmp_path, fake_clock)
    licences = dict(e.config.licences)
    licences["L3"] = Licence(
        "L3", "Three", parse_period("30d"), tmp_path / "l3.toml", "signature",
        (Agent("Jane Doe", "dpo@three.example", raw(keys["jane"])),),
    )  # fmt: skip
    licences["L2"] = replace(
        licences["L2"], agents=(Agent("Mal Lory", "m@two.example", raw(keys["mallory"])),)
    )
    e.configure(licences=licences)
    return e


NEW = "L1/20261120120000_"  # not due before 2026-12-20


def s3_estate(tmp_path: Path, bucket: str, endpoint: str, **source: Any) -> Estate:
    """An estate whose one source is ``bucket`` (keys named like the estate's files); its
    clock is the real time a little ahead (the store stamps LastModified with the real one),
    and nothing waits to settle."""
    e = Estate(tmp_path, FakeClock(datetime.now(UTC) + timedelta(seconds=5)))
    config = SourceConfig(
        "archive", "s3",
        ClassifyRule(timezone=UTC, pattern=PATTERN, started_format="%Y%m%d%H%M%S"),
        bucket=bucket, endpoint_url=endpoint, region="us-east-1", **source,
    )  # fmt: skip
    e.configure(sources=(config,), erase=EraseSettings(settle=timedelta(0)))
    e.bucket = bucket  # type: ignore[attr-defined]
    return e


def put(client: Any, bucket: str, key: str, *bodies: bytes) -> list[str]:
    return [client.put_object(Bucket=bucket, Key=key, Body=b)["VersionId"] for b in bodies]


def started(estate: Estate, runs: int = 3) -> None:
    """``runs`` runs of `recd --once`: a log of a few entries, checked and marked."""
    for _ in range(runs):
        code, _ = estate.once()
        assert code == 0


def check(estate: Estate) -> tuple[Runtime, Rebuild]:
    rt = estate.runtime()
    rebuilding = rebuilder(rt)
    rebuilding.restore()
    return rt, rebuilding
