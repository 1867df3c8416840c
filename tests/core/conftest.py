"""Fixtures of tests/core: two agents' Ed25519 keys and the licences that list them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.config.types import Agent
from tests.core.helpers import public


@pytest.fixture
def jane() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bob() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def agents(jane: Ed25519PrivateKey, bob: Ed25519PrivateKey) -> dict[str, tuple[Agent, ...]]:
    return {
        "3CX-1234-5678": (Agent("Jane Doe", "dpo@acme.example", public(jane)),),
        "OTHER-1": (Agent("Bob Roe", "bob@other.example", public(bob)),),
    }
