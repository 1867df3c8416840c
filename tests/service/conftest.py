"""Fixtures of tests/service: the plain estate (real files, SQLite, audit log, a fake clock), its
runtime, and two agents' keys for the request tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.daemon.runtime import Runtime
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.s3server import s3_client


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock) -> Estate:
    return Estate(tmp_path, fake_clock)


@pytest.fixture
def keys() -> dict[str, Ed25519PrivateKey]:
    return {"jane": Ed25519PrivateKey.generate(), "mallory": Ed25519PrivateKey.generate()}


@pytest.fixture
def rt(estate: Estate) -> Iterator[Runtime]:
    runtime = estate.runtime()
    yield runtime
    runtime.close()


@pytest.fixture
def client(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)
