"""Ed25519 signatures on request documents (SPEC 6 and 11): what is signed and who signed it.

The signature, when present, is an Ed25519 signature over ``signed_bytes(document)``: the canonical
JSON (keys sorted, no insignificant whitespace, UTF-8, non-ASCII as is) of the document without its
``signature`` member. ``check_signature`` accepts it only from an agent that the request's own
licence lists, and says exactly why otherwise (``SignatureRefused``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recd.core.audit import canonical_json
from recd.core.requests import ErasureRequest
from recd.errors import NotAllowedInState


class SignatureRefused(NotAllowedInState):
    """A request that signature verification does not accept; the message says why."""


class AgentKey(Protocol):
    """An authorised agent of a licence, as ``recd.config.types.Agent`` holds it."""

    @property
    def name(self) -> str: ...

    @property
    def email(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...  # 32 raw Ed25519 bytes


@dataclass(frozen=True, slots=True)
class SignedBy:
    """The agent whose signature verified a request."""

    name: str
    email: str
    key: str  # "ed25519:<base64>"


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of ``document`` without ``signature``.

    Raises ``ValueError``/``TypeError`` as ``canonical_json`` does, which never happens for the
    ``document`` of a parsed request.
    """
    return canonical_json({k: v for k, v in document.items() if k != "signature"})


def check_signature(request: ErasureRequest, agents: Mapping[str, Sequence[AgentKey]]) -> SignedBy:
    """The agent of the request's licence whose signature verifies ``request``.

    ``agents`` maps each licence id to its authorised agents (licences.d). Raises
    ``SignatureRefused`` for an unsigned request, a key of another licence's agent or of no
    licence's, and a signature that does not match the content.
    """
    rid, licence, sig = request.id, request.licence, request.signature
    if sig is None:
        raise SignatureRefused(
            f"request {rid} is not signed, and licence {licence} verifies requests by"
            " signature (its agents sign the request file)"
        )
    listing = _listing(agents, sig.key)
    agent = listing.get(licence)
    if agent is None:
        owners = sorted(listing)
        if not owners:
            raise SignatureRefused(
                f"request {rid} is signed by a key that no licence lists ({sig.key_text})"
            )
        noun = "licence" if len(owners) == 1 else "licences"
        raise SignatureRefused(
            f"request {rid} is signed by {_who(listing[owners[0]])}, an agent of {noun}"
            f" {', '.join(owners)}, not of {licence}"
        )
    try:
        Ed25519PublicKey.from_public_bytes(agent.public_key).verify(
            sig.value, signed_bytes(request.document)
        )
    except (InvalidSignature, ValueError):
        raise SignatureRefused(
            f"request {rid}: the signature by {_who(agent)} does not match the request's"
            " content (altered after signing, or signed differently)"
        ) from None
    return SignedBy(agent.name, agent.email, sig.key_text)


def _listing(agents: Mapping[str, Sequence[AgentKey]], key: bytes) -> dict[str, AgentKey]:
    """The licences whose agents include ``key``, each with its first agent holding it."""
    found: dict[str, AgentKey] = {}
    for licence, listed in agents.items():
        agent = next((a for a in listed if a.public_key == key), None)
        if agent is not None:
            found[licence] = agent
    return found


def _who(agent: AgentKey) -> str:
    return f"{agent.name} <{agent.email}>"
