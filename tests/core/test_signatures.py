"""recd.core.signatures: the signed bytes are the canonical JSON without the signature, and the
check accepts only an agent of the request's own licence, saying exactly why otherwise."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from recd.config.types import Agent
from recd.core.requests import parse_request
from recd.core.signatures import SignatureRefused, SignedBy, check_signature, signed_bytes
from recd.errors import ExitCode
from tests.core.helpers import canonical, document, key_text, public
from tests.keys import signed


def test_signed_bytes_are_the_canonical_json_without_the_signature(
    jane: Ed25519PrivateKey,
) -> None:
    doc = signed(document(reason="Löschung beantragt"), jane)
    raw = signed_bytes(doc)
    assert raw == canonical(document(reason="Löschung beantragt"))
    assert b"signature" not in raw
    assert "Löschung".encode() in raw  # UTF-8, not \u escapes
    assert raw.startswith(b'{"evidence":"letter ACME/DP/77","licence":"3CX-1234-5678",')
    assert b"\n" not in raw
    assert b'": ' not in raw
    assert b'", ' not in raw
    assert json.loads(raw) == document(reason="Löschung beantragt")


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@given(
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 0, 2, "\t"]),
    separators=st.sampled_from([(", ", ": "), (",", ":"), (" ,", " : ")]),
    ascii_only=st.booleans(),
    reason=st.text(
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters='"\\'), min_size=1
    ),
)
def test_input_key_order_and_whitespace_do_not_change_signed_bytes(
    seed: int,
    indent: int | str | None,
    separators: tuple[str, str],
    ascii_only: bool,
    reason: str,
) -> None:
    doc = document(reason=reason, signature={"key": "k", "value": "v"})
    text = json.dumps(
        shuffled(doc, random.Random(seed)),
        indent=indent,
        separators=separators,
        ensure_ascii=ascii_only,
    )
    assert signed_bytes(json.loads(text)) == signed_bytes(doc)
    assert reason.encode() in signed_bytes(doc)  # as UTF-8, never as \u escapes


def test_a_signature_by_the_licences_agent_verifies(
    jane: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    request = parse_request(signed(document(), jane))
    assert check_signature(request, agents) == SignedBy(
        "Jane Doe", "dpo@acme.example", key_text(jane)
    )


def test_the_signature_survives_a_reformatted_file(
    jane: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    text = json.dumps(dict(reversed(list(signed(document(), jane).items()))), indent=4)
    assert check_signature(parse_request(json.loads(text)), agents).name == "Jane Doe"


@dataclass(frozen=True)
class PlainAgent:
    name: str
    email: str
    public_key: bytes


def test_any_object_with_the_agent_attributes_will_do(jane: Ed25519PrivateKey) -> None:
    second = PlainAgent("Al Deputy", "al@acme.example", public(jane))
    agents = {"3CX-1234-5678": [PlainAgent("Cy", "cy@acme.example", bytes(32)), second, second]}
    signer = check_signature(parse_request(signed(document(), jane)), agents)
    assert signer == SignedBy("Al Deputy", "al@acme.example", key_text(jane))


def test_an_unsigned_request_is_refused(agents: dict[str, tuple[Agent, ...]]) -> None:
    with pytest.raises(SignatureRefused) as caught:
        check_signature(parse_request(document()), agents)
    assert caught.value.exit_code == ExitCode.NOT_ALLOWED
    assert str(caught.value) == (
        "request REQ-2026-0042 is not signed, and licence 3CX-1234-5678 verifies requests by"
        " signature (its agents sign the request file)"
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(reason="Erasure requested by the data subject!"),
        lambda d: d["scope"]["call_ids"].append("1713"),
        lambda d: d["scope"].pop("party"),
        lambda d: d["requested_by"].update(role="CEO"),
    ],
)
def test_content_altered_after_signing_is_refused(
    jane: Ed25519PrivateKey,
    agents: dict[str, tuple[Agent, ...]],
    mutate: Callable[[dict[str, Any]], None],
) -> None:
    doc = copy.deepcopy(signed(document(), jane))
    mutate(doc)
    with pytest.raises(SignatureRefused) as caught:
        check_signature(parse_request(doc), agents)
    assert str(caught.value) == (
        "request REQ-2026-0042: the signature by Jane Doe <dpo@acme.example> does not match the"
        " request's content (altered after signing, or signed differently)"
    )


def test_a_signature_over_other_bytes_is_refused(
    jane: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    # signed as pretty-printed JSON rather than canonical JSON
    doc = document()
    value = jane.sign(json.dumps(doc, indent=2).encode())
    doc["signature"] = {"key": key_text(jane), "value": base64.b64encode(value).decode()}
    with pytest.raises(SignatureRefused, match="does not match the request's content"):
        check_signature(parse_request(doc), agents)


def test_an_invalid_agent_key_never_verifies(jane: Ed25519PrivateKey) -> None:
    # a listed key that is no curve point at all must refuse, not crash
    junk = b"\xff" * 32
    sig = {"key": "ed25519:" + base64.b64encode(junk).decode(), "value": "A" * 86 + "=="}
    agents = {"3CX-1234-5678": [Agent("Jane Doe", "dpo@acme.example", junk)]}
    with pytest.raises(SignatureRefused, match="does not match"):
        check_signature(parse_request(document(signature=sig)), agents)


def test_another_licences_agent_is_refused(
    bob: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    with pytest.raises(SignatureRefused) as caught:
        check_signature(parse_request(signed(document(), bob)), agents)
    assert str(caught.value) == (
        "request REQ-2026-0042 is signed by Bob Roe <bob@other.example>, an agent of licence"
        " OTHER-1, not of 3CX-1234-5678"
    )


def test_an_agent_of_several_other_licences_is_named_with_all_of_them(
    bob: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    agents = agents | {"A-0": (Agent("Robert Roe", "rr@a.example", public(bob)),)}
    with pytest.raises(SignatureRefused) as caught:
        check_signature(parse_request(signed(document(), bob)), agents)
    assert str(caught.value) == (
        "request REQ-2026-0042 is signed by Robert Roe <rr@a.example>, an agent of licences"
        " A-0, OTHER-1, not of 3CX-1234-5678"
    )


def test_a_key_no_licence_lists_is_refused(agents: dict[str, tuple[Agent, ...]]) -> None:
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureRefused) as caught:
        check_signature(parse_request(signed(document(), stranger)), agents)
    assert str(caught.value) == (
        f"request REQ-2026-0042 is signed by a key that no licence lists ({key_text(stranger)})"
    )


def test_with_no_agents_at_all_every_key_is_unknown(jane: Ed25519PrivateKey) -> None:
    with pytest.raises(SignatureRefused, match="a key that no licence lists"):
        check_signature(parse_request(signed(document(), jane)), {})


def test_a_signature_covers_all(
    jane: Ed25519PrivateKey, agents: dict[str, tuple[Agent, ...]]
) -> None:
    """A signed narrow request widened to ``all`` after signing no longer verifies, and a
    request signed with ``all`` does."""
    whole = signed(document(scope={"all": True}), jane)
    assert check_signature(parse_request(whole), agents).name == "Jane Doe"
    assert b'"scope":{"all":true}' in signed_bytes(whole)
    widened = signed(document(scope={"call_ids": ["1712"]}), jane) | {"scope": {"all": True}}
    with pytest.raises(SignatureRefused, match="does not match the request's content"):
        check_signature(parse_request(widened), agents)
