"""Ed25519 keys and signed request documents for tests (what a customer's agent would send)."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from recd.core.signatures import signed_bytes


def raw(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw public-key bytes, as a licence file's ``public_key`` holds them."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_text(key: Ed25519PrivateKey) -> str:
    """``ed25519:<base64>``, as written in a licence file and a request's signature."""
    return "ed25519:" + base64.b64encode(raw(key)).decode()


def signed(doc: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``doc`` with an Ed25519 signature by ``key`` over its canonical JSON."""
    value = base64.b64encode(key.sign(signed_bytes(doc))).decode()
    return doc | {"signature": {"key": key_text(key), "value": value}}
