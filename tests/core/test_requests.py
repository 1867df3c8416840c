"""Early-deletion request documents: every refusal, canonical JSON, the Ed25519 check."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from recd.core.model import recording_id
from recd.core.requests import (
    RECORDING_ID,
    REQUEST_ID,
    ErasureRequest,
    Requester,
    RequestInvalid,
    Signature,
    parse_request,
    scope_from_json,
    scope_json,
    whole_licence_refusal,
)
from recd.core.scope import Scope
from recd.core.signatures import signed_bytes
from recd.errors import ExitCode
from tests.core.helpers import canonical, document, key_text, public
from tests.keys import signed

REC = recording_id("pbx1", "100/a.wav")
K0 = "ed25519:" + "A" * 43 + "="  # 32 zero bytes
EMPTY_SCOPE = (
    "scope: empty: name recordings, call ids, a party or a time range,"
    ' or "all": true to erase every recording of the licence'
)
TOP_KEYS = "request_id, licence, requested_by, received, reason, evidence, scope, signature"
SCOPE_KEYS = "recordings, call_ids, party, from, to, all"
ALL_ONLY = '"all": true erases every recording of the licence and takes no other scope field'
NOT_TRUE = "true (every recording of the licence) or left out; got "
CONTROL = "must not contain control characters (line breaks, tabs), found "
NO_ZONE = "needs a zone, e.g. 2026-11-20T10:00:00Z, got "
NOT_REC = "not a recording id (20 hex digits, as recctl ls shows them), got "
BAD_CALL = "must not contain '/', '\\', whitespace or control characters, got "
NOT_PHONE = "not a phone number (digits, a leading '+', and spaces ( ) . - / between them), got "
NOT_KEY = 'expected "ed25519:" and the base64 of the 32-byte public key, got '


def with_scope(**scope: Any) -> dict[str, Any]:
    return document(scope=scope)


def with_requester(**changes: str) -> dict[str, Any]:
    return document(
        requested_by={"name": "Jane Doe", "email": "dpo@acme.example", "role": "DPO"} | changes
    )


def refusal(doc: object) -> str:
    with pytest.raises(RequestInvalid) as caught:
        parse_request(doc)
    assert caught.value.exit_code == ExitCode.USAGE
    assert str(caught.value) == f"{caught.value.key}: {caught.value.message}"
    return str(caught.value)


# --- a valid request --------------------------------------------------------------------------


def test_the_spec_example_parses() -> None:
    request = parse_request(document())
    assert request == ErasureRequest(
        id="REQ-2026-0042",
        licence="3CX-1234-5678",
        requested_by=Requester("Jane Doe", "dpo@acme.example", "DPO"),
        received=datetime(2026, 11, 20, 10, tzinfo=UTC),
        reason="Erasure requested by the data subject",
        evidence="letter ACME/DP/77",
        scope=Scope(
            "3CX-1234-5678",
            call_ids=frozenset({"1712"}),
            party="+441234567890",
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 11, 15, tzinfo=UTC),
        ),
        signature=None,
        document=document(),
    )
    assert request.digest == hashlib.sha256(canonical(document())).hexdigest()
    assert hash(request) == hash(parse_request(document()))  # the document is left out


def test_the_stored_document_is_a_detached_plain_copy() -> None:
    doc = document(scope={"call_ids": ("1712", "1713")})
    request = parse_request(MappingProxyType(doc))
    assert request.document == document(scope={"call_ids": ["1712", "1713"]})
    assert type(request.document) is dict
    doc["scope"]["call_ids"] = ("9",)
    assert request.document["scope"]["call_ids"] == ["1712", "1713"]
    assert request.scope.call_ids == {"1712", "1713"}


def test_times_with_an_offset_become_utc() -> None:
    request = parse_request(
        document(received="2026-11-20T11:30:00+01:30", scope={"from": "2026-11-01T00:00:00z"})
    )
    assert request.received == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert request.received.tzinfo is UTC
    assert request.scope.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert request.scope.end is None


def test_scope_lists_are_deduplicated_and_empty_lists_and_nulls_are_absent() -> None:
    scope = parse_request(
        with_scope(recordings=[REC, REC], call_ids=[], party=None, to="2026-11-15T00:00:00Z")
    ).scope
    assert scope == Scope("3CX-1234-5678", recordings=frozenset({REC}), end=scope.end)
    assert scope.call_ids == frozenset()
    assert scope.party is None


@pytest.mark.parametrize("party", ["+44 (1234) 567-890", "00 44 1234.567/890", "201", " +1 212"])
def test_a_party_is_kept_as_given(party: str) -> None:
    assert parse_request(with_scope(party=party)).scope.party == party


@pytest.mark.parametrize("rid", ["R", "0", "REQ-2026-0042", "a.b_c:d-e", "x" * 128])
def test_request_ids(rid: str) -> None:
    assert parse_request(document(request_id=rid)).id == rid
    assert REQUEST_ID.fullmatch(rid)


def test_text_may_hold_any_printable_unicode() -> None:
    request = parse_request(
        with_requester(name="Zoë Müller-Łukasz 中文", role="Datenschutz­beauftragte")
        | {"reason": "x" * 2000, "evidence": "Brief vom 3. März, §17 DSGVO"}
    )
    assert request.requested_by.name == "Zoë Müller-Łukasz 中文"
    assert len(request.reason) == 2000


# --- refusals, one per rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "(top): a JSON object expected, got an array"),
        ("{}", "(top): a JSON object expected, got a string"),
        (None, "(top): a JSON object expected, got null"),
        (7, "(top): a JSON object expected, got a number"),
        (b"{}", "(top): a JSON object expected, got bytes"),
    ],
)
def test_the_document_must_be_an_object(doc: object, message: str) -> None:
    assert refusal(doc) == message


def test_the_error_carries_key_and_message_apart() -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_request(with_scope(**{"from": "yesterday"}))
    assert (caught.value.key, caught.value.message) == (
        "scope.from",
        "not an ISO 8601 time with a zone: 'yesterday'",
    )
    assert str(caught.value) == "scope.from: not an ISO 8601 time with a zone: 'yesterday'"


def test_unknown_top_level_keys_are_refused() -> None:
    assert refusal(document(comment="hi")) == f"comment: unknown key; expected one of {TOP_KEYS}"
    odd: dict[Any, Any] = dict(document())
    odd[1] = "x"
    assert refusal(odd) == f"1: unknown key; expected one of {TOP_KEYS}"


@pytest.mark.parametrize(
    "key", ["request_id", "licence", "requested_by", "received", "reason", "evidence", "scope"]
)
def test_every_top_level_key_but_the_signature_is_required(key: str) -> None:
    assert refusal(document(**{key: None})) == f"{key}: missing"


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("request_id", 42, "a number"),
        ("licence", True, "a boolean"),
        ("received", 1732096800, "a number"),
        ("reason", ["a"], "an array"),
        ("evidence", {"ref": "x"}, "an object"),
        ("evidence", None, "null"),  # null is no string; only optional scope fields may be null
        ("evidence", 1.5, "a number"),
    ],
)
def test_strings_must_be_strings(key: str, value: object, kind: str) -> None:
    doc = document()
    doc[key] = value
    assert refusal(doc) == f"{key}: a string expected, got {kind}"


@pytest.mark.parametrize(
    ("rid", "message"),
    [
        (
            "a/b",
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            " got 'a/b'",
        ),
        (
            "REQ 1",
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            " got 'REQ 1'",
        ),
        (
            "a\\b",
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            " got 'a\\\\b'",
        ),
        (
            "a\x00",
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            " got 'a\\x00'",
        ),
        (
            "Zoë",
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            " got 'Zoë'",
        ),
        ("..", "must start with a letter or a digit, got '..'"),
        ("-rf", "must start with a letter or a digit, got '-rf'"),
        ("", "must not be empty"),
        ("x" * 129, "at most 128 characters, got 129"),
    ],
)
def test_request_id_refusals(rid: str, message: str) -> None:
    assert refusal(document(request_id=rid)) == f"request_id: {message}"


@pytest.mark.parametrize("licence", ["a b", "a/b", "a\tb", "a\x00b", "a\x85b"])
def test_licence_refusals(licence: str) -> None:
    assert refusal(document(licence=licence)) == (
        f'licence: must not contain whitespace, "/" or control characters, got {licence!r}'
    )


def test_licence_must_not_be_empty() -> None:
    assert refusal(document(licence="")) == "licence: must not be empty"


@pytest.mark.parametrize(
    ("requested_by", "message"),
    [
        ("Jane", "requested_by: a JSON object expected, got a string"),
        (
            {"name": "J", "email": "j@x", "role": "DPO", "phone": "1"},
            "requested_by.phone: unknown key; expected one of name, email, role",
        ),
        ({"email": "j@x", "role": "DPO"}, "requested_by.name: missing"),
        ({"name": "J", "role": "DPO"}, "requested_by.email: missing"),
        ({"name": "J", "email": "j@x"}, "requested_by.role: missing"),
        ({"name": "", "email": "j@x", "role": "DPO"}, "requested_by.name: must not be empty"),
        ({"name": "J", "email": "j@x", "role": " "}, "requested_by.role: must not be empty"),
        (
            {"name": "J", "email": 5, "role": "DPO"},
            "requested_by.email: a string expected, got a number",
        ),
        (
            {"name": "J", "email": "jane.example", "role": "DPO"},
            "requested_by.email: not an email address (no '@'), got 'jane.example'",
        ),
        (
            {"name": "J\nDoe", "email": "j@x", "role": "DPO"},
            "requested_by.name: must not contain control characters (line breaks, tabs),"
            " found '\\n' at character 2",
        ),
    ],
)
def test_requester_refusals(requested_by: object, message: str) -> None:
    assert refusal(document(requested_by=requested_by)) == message


@pytest.mark.parametrize(
    ("received", "message"),
    [
        ("yesterday", "not an ISO 8601 time with a zone: 'yesterday'"),
        ("2026-11-31T10:00:00Z", "not an ISO 8601 time with a zone: '2026-11-31T10:00:00Z'"),
        ("Z", "not an ISO 8601 time with a zone: 'Z'"),
        ("", "not an ISO 8601 time with a zone: ''"),
        ("2026-11-20T10:00:00", NO_ZONE + "'2026-11-20T10:00:00'"),
        ("2026-11-20", NO_ZONE + "'2026-11-20'"),
        ("0001-01-01T00:00:00+01:00", "out of range: '0001-01-01T00:00:00+01:00'"),
        ("9999-12-31T23:59:59-01:00", "out of range: '9999-12-31T23:59:59-01:00'"),
    ],
)
def test_received_refusals(received: str, message: str) -> None:
    assert refusal(document(received=received)) == f"received: {message}"


@pytest.mark.parametrize("key", ["reason", "evidence"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("x" * 2001, "at most 2000 characters, got 2001"),
        ("two\nlines", CONTROL + "'\\n' at character 4"),
        ("\ttab", CONTROL + "'\\t' at character 1"),
        ("nul\x00", CONTROL + "'\\x00' at character 4"),
        ("del\x7f", CONTROL + "'\\x7f' at character 4"),
        ("c1\x9b", CONTROL + "'\\x9b' at character 3"),
        ("bad \ud800", "not valid Unicode (it holds a lone surrogate)"),
    ],
)
def test_free_text_refusals(key: str, text: str, message: str) -> None:
    assert refusal(document(**{key: text})) == f"{key}: {message}"


def test_a_lone_surrogate_from_json_is_refused_before_it_breaks_canonical_json() -> None:
    doc = json.loads(json.dumps(document()).replace("DPO", "\\udc80"))
    assert refusal(doc) == "requested_by.role: not valid Unicode (it holds a lone surrogate)"


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({}, EMPTY_SCOPE),
        ({"recordings": [], "call_ids": [], "party": None, "from": None, "to": None}, EMPTY_SCOPE),
        ([], "scope: a JSON object expected, got an array"),
        ({"licence": "x"}, f"scope.licence: unknown key; expected one of {SCOPE_KEYS}"),
        ({"recordings": REC}, "scope.recordings: a JSON array expected, got a string"),
        ({"recordings": [REC, 7]}, "scope.recordings[1]: a string expected, got a number"),
        ({"recordings": [REC.upper()]}, f"scope.recordings[0]: {NOT_REC}{REC.upper()!r}"),
        ({"recordings": [REC + "0"]}, f"scope.recordings[0]: {NOT_REC}'{REC}0'"),
        ({"call_ids": "1712"}, "scope.call_ids: a JSON array expected, got a string"),
        ({"call_ids": {"a": 1}}, "scope.call_ids: a JSON array expected, got an object"),
        ({"call_ids": ["1712", 1713]}, "scope.call_ids[1]: a string expected, got a number"),
        ({"call_ids": ["1", "2", ""]}, "scope.call_ids[2]: must not be empty"),
        ({"call_ids": ["x" * 129]}, "scope.call_ids[0]: at most 128 characters, got 129"),
        ({"call_ids": ["a/b"]}, "scope.call_ids[0]: " + BAD_CALL + "'a/b'"),
        ({"call_ids": ["a\\b"]}, "scope.call_ids[0]: " + BAD_CALL + "'a\\\\b'"),
        ({"call_ids": ["a b"]}, "scope.call_ids[0]: " + BAD_CALL + "'a b'"),
        ({"call_ids": ["a\x01"]}, "scope.call_ids[0]: " + BAD_CALL + "'a\\x01'"),
        ({"party": 441234567890}, "scope.party: a string expected, got a number"),
        ({"party": "+44 12x4"}, "scope.party: " + NOT_PHONE + "'+44 12x4'"),
        ({"party": "44+1"}, "scope.party: " + NOT_PHONE + "'44+1'"),
        ({"party": "\t123"}, "scope.party: " + NOT_PHONE + "'\\t123'"),
        ({"party": "١٢٣"}, "scope.party: " + NOT_PHONE + "'١٢٣'"),
        ({"party": ""}, "scope.party: a party needs at least 3 digits, got ''"),
        ({"party": "+"}, "scope.party: a party needs at least 3 digits, got '+'"),
        ({"party": "(1) 2"}, "scope.party: a party needs at least 3 digits, got '(1) 2'"),
        ({"party": "001"}, "scope.party: a party needs at least 3 digits, got '001'"),  # +1
        ({"from": "yesterday"}, "scope.from: not an ISO 8601 time with a zone: 'yesterday'"),
        ({"to": "2026-11-15"}, "scope.to: " + NO_ZONE + "'2026-11-15'"),
        ({"to": 1}, "scope.to: a string expected, got a number"),
        ({"all": False}, "scope.all: " + NOT_TRUE + "false"),
        ({"all": "true"}, "scope.all: " + NOT_TRUE + "a string"),
        ({"all": 1}, "scope.all: " + NOT_TRUE + "a number"),
        (
            {"all": True, "recordings": [REC]},
            f"scope.all: {ALL_ONLY}; this scope also gives recordings",
        ),
        (
            {"all": True, "call_ids": ["1"], "party": "+44123"},
            f"scope.all: {ALL_ONLY}; this scope also gives call_ids, party",
        ),
        (
            {"all": True, "from": "2026-11-15T00:00:00Z"},
            f"scope.all: {ALL_ONLY}; this scope also gives from",
        ),
        (
            {"all": True, "to": "2026-11-15T00:00:00Z"},
            f"scope.all: {ALL_ONLY}; this scope also gives to",
        ),
        (
            {"from": "2026-11-15T00:00:00Z", "to": "2026-11-15T00:00:00Z"},
            "scope.to: must be later than scope.from",
        ),
        (
            {"from": "2026-11-15T00:00:00Z", "to": "2026-11-15T01:00:00+02:00"},
            "scope.to: must be later than scope.from",
        ),
    ],
)
def test_scope_refusals(scope: object, message: str) -> None:
    assert refusal(document(scope=scope)) == message


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("ed25519:AAAA", "signature: a JSON object expected, got a string"),
        ({"key": "ed25519:x"}, "signature.value: missing"),
        ({"value": "x"}, "signature.key: missing"),
        (
            {"key": "k", "value": "v", "by": "me"},
            "signature.by: unknown key; expected one of key, value",
        ),
        ({"key": 1, "value": "v"}, "signature.key: a string expected, got a number"),
        ({"key": "rsa:AAAA", "value": "v"}, "signature.key: " + NOT_KEY + "'rsa:AAAA'"),
        (
            {"key": "ed25519:not base64!", "value": "v"},
            "signature.key: not valid base64: 'not base64!'",
        ),
        ({"key": "ed25519:AAA", "value": "v"}, "signature.key: not valid base64: 'AAA'"),
        ({"key": "ed25519:AAAAé", "value": "v"}, "signature.key: not valid base64: 'AAAAé'"),
        (
            {"key": "ed25519:AAAA", "value": "v"},
            "signature.key: an Ed25519 public key is 32 bytes; this one is 3",
        ),
        ({"key": K0, "value": ["v"]}, "signature.value: a string expected, got an array"),
        ({"key": K0, "value": "%%%%"}, "signature.value: not valid base64: '%%%%'"),
        (
            {"key": K0, "value": "A" * 44},
            "signature.value: an Ed25519 signature is 64 bytes; this one is 33",
        ),
    ],
)
def test_signature_refusals(signature: object, message: str) -> None:
    assert refusal(document(signature=signature)) == message


def test_a_null_signature_is_no_signature() -> None:
    assert parse_request(document() | {"signature": None}).signature is None


def test_a_signature_is_decoded(jane: Ed25519PrivateKey) -> None:
    request = parse_request(signed(document(), jane))
    assert request.signature == Signature(
        public(jane), jane.sign(signed_bytes(document())), key_text(jane)
    )


def test_the_key_text_is_canonical_base64() -> None:
    # base64 ignores the unused low bits of the last character; recd names the key one way only
    loose = "ed25519:" + "A" * 42 + "B="
    sig = {"key": loose, "value": base64.b64encode(bytes(64)).decode()}
    parsed = parse_request(document(signature=sig)).signature
    assert parsed is not None
    assert parsed.key == bytes(32)
    assert parsed.key_text == "ed25519:" + "A" * 43 + "="


# --- canonical JSON and the digest -------------------------------------------------------------


MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("request_id", lambda d: d.update(request_id="REQ-2026-0043")),
    ("licence", lambda d: d.update(licence="3CX-1234-5679")),
    ("requester name", lambda d: d["requested_by"].update(name="Jane Does")),
    ("requester email", lambda d: d["requested_by"].update(email="dpo@acme.example.org")),
    ("requester role", lambda d: d["requested_by"].update(role="CEO")),
    ("received", lambda d: d.update(received="2026-11-20T10:00:01Z")),
    ("same instant, other form", lambda d: d.update(received="2026-11-20T11:00:00+01:00")),
    ("reason", lambda d: d.update(reason="Erasure requested by the data subject.")),
    ("evidence", lambda d: d.update(evidence="letter ACME/DP/78")),
    ("recordings", lambda d: d["scope"].update(recordings=[REC])),
    ("call id", lambda d: d["scope"].update(call_ids=["1713"])),
    ("another call id", lambda d: d["scope"]["call_ids"].append("1713")),
    ("party", lambda d: d["scope"].update(party="+441234567891")),
    ("party spelling", lambda d: d["scope"].update(party="+44 1234 567890")),
    ("from", lambda d: d["scope"].update({"from": "2026-11-01T00:00:01Z"})),
    ("to", lambda d: d["scope"].pop("to")),
    ("empty list", lambda d: d["scope"].pop("recordings")),
    ("all", lambda d: d.update(scope={"all": True})),
    ("signature", lambda d: d.update(signature={"key": K0, "value": "A" * 86 + "=="})),
]


@pytest.mark.parametrize(("what", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_any_change_of_content_changes_the_digest(
    what: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    doc = document()
    changed = copy.deepcopy(doc)
    mutate(changed)
    assert parse_request(changed).digest != parse_request(doc).digest


def test_the_digest_ignores_key_order_and_covers_the_signature(jane: Ed25519PrivateKey) -> None:
    doc = document()
    reordered = dict(reversed(list(doc.items())))
    assert parse_request(reordered).digest == parse_request(doc).digest
    assert parse_request(signed(doc, jane)).digest != parse_request(doc).digest


# --- scopes as JSON -----------------------------------------------------------------------------


def test_scope_json() -> None:
    scope = Scope(
        "L1",
        recordings=frozenset({"f" * 20, REC}),
        call_ids=frozenset({"b", "a"}),
        party="+44 1234",
        start=datetime(2026, 11, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    assert scope_json(scope) == {
        "recordings": sorted([REC, "f" * 20]),
        "call_ids": ["a", "b"],
        "party": "+44 1234",
        "from": "2026-11-01T00:00:00.000000Z",
        "to": None,
    }


def test_all_is_an_explicit_scope_of_the_whole_licence() -> None:
    """``"all": true`` alone: the whole licence, said so; nulls and empty lists beside it are
    absent fields, as everywhere in a scope."""
    for scope in ({"all": True}, {"all": True, "recordings": [], "party": None, "to": None}):
        parsed = parse_request(document(scope=scope)).scope
        assert parsed == Scope("3CX-1234-5678", whole_licence=True)
        assert parsed.empty and parsed.whole_licence
    assert scope_json(Scope("L1", whole_licence=True)) == {
        "recordings": [], "call_ids": [], "party": None, "from": None, "to": None, "all": True,
    }  # fmt: skip
    # Read back as a request's scope; a hold's scope has no "all".
    data = scope_json(Scope("L1", whole_licence=True))
    assert scope_from_json("L1", data, allow_all=True) == Scope("L1", whole_licence=True)
    with pytest.raises(RequestInvalid) as caught:
        scope_from_json("L1", data, "hold.scope", allow_empty=True)
    assert str(caught.value) == (
        "hold.scope.all: unknown key; expected one of recordings, call_ids, party, from, to"
    )
    with pytest.raises(ValueError, match="takes no other field"):
        Scope("L1", party="+44123", whole_licence=True)


def test_scope_from_json_refuses_an_empty_scope_unless_told() -> None:
    with pytest.raises(RequestInvalid) as caught:
        scope_from_json("L1", scope_json(Scope("L1")))
    assert str(caught.value) == EMPTY_SCOPE
    assert scope_from_json("L1", scope_json(Scope("L1")), allow_empty=True) == Scope("L1")


def test_scope_from_json_names_keys_below_the_given_one() -> None:
    with pytest.raises(RequestInvalid) as caught:
        scope_from_json("L1", {"call_ids": ["1", 2]}, "hold.scope")
    assert str(caught.value) == "hold.scope.call_ids[1]: a string expected, got a number"
    with pytest.raises(RequestInvalid) as caught:
        scope_from_json("L1", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "s")
    assert str(caught.value) == "s.to: must be later than s.from"
    with pytest.raises(RequestInvalid, match=r"^hold\.scope: a JSON object expected, got null$"):
        scope_from_json("L1", None, "hold.scope")  # type: ignore[arg-type]


recordings = st.frozensets(st.from_regex(RECORDING_ID, fullmatch=True), max_size=4)
call_ids = st.frozensets(
    st.text(
        st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="/\\"),
        min_size=1,
        max_size=128,
    ),
    max_size=4,
)
parties = st.none() | st.from_regex(r"\+?[1-9][0-9]{2}[0-9 ().\-/]{0,12}", fullmatch=True)
times = st.none() | st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(recordings, call_ids, parties, times, times)
def test_scope_json_round_trips(
    recs: frozenset[str],
    calls: frozenset[str],
    party: str | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    if start is not None and end is not None:
        start, end = min(start, end), max(start, end + timedelta(microseconds=1))
    scope = Scope("L1", recs, calls, party, start, end)
    data = json.loads(json.dumps(scope_json(scope)))
    assert scope_from_json("L1", data, allow_empty=True) == scope
    if not scope.empty:
        assert parse_request(document(licence="L1", scope=data)).scope == scope


# --- a scope that covers the whole licence without saying so ------------------------------------

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
DAY = timedelta(days=1)
WHOLE = (
    "the time range matches every recording of licence L1 (all 3 indexed now): a request for all"
    ' of them must say so with "all": true, which recctl delete confirms with the licence id;'
    " otherwise narrow the scope"
)
INSTEAD = 'or "all": true to erase every recording of licence L1'


@pytest.mark.parametrize(
    ("scope", "present", "matched", "refusal"),
    [
        # Ids name what they erase; "all" says it.
        (Scope("L1", recordings=frozenset({REC})), 1, 1, None),
        (Scope("L1", call_ids=frozenset({"1712"})), 3, 3, None),
        (Scope("L1", whole_licence=True), 3, 3, None),
        # A closed range that leaves out some of what is indexed.
        (Scope("L1", start=NOW - 9 * DAY, end=NOW - DAY), 3, 2, None),
        (Scope("L1", start=NOW - 9 * DAY, end=NOW + 365 * DAY), 3, 2, None),
        # ... or that holds all of it: whole life, ending in the future, all today only.
        (Scope("L1", start=datetime(1970, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)),
         3, 3, f"scope: {WHOLE}"),
        (Scope("L1", start=NOW - 9 * DAY, end=NOW + DAY), 3, 3, f"scope: {WHOLE}"),
        (Scope("L1", start=NOW - 9 * DAY, end=NOW - 2 * DAY), 3, 3, f"scope: {WHOLE}"),
        # Open at either end: refused whatever is indexed.
        (Scope("L1", start=NOW - DAY), 3, 1,
         "scope.to: missing: a time range with no end covers every recording started from "
         f"2026-11-22T12:00:00.000000Z on, including those made later; give an end, {INSTEAD}"),
        (Scope("L1", end=NOW - 400 * DAY), 3, 0,
         "scope.from: missing: a time range with no start covers every recording started "
         f"before 2025-10-19T12:00:00.000000Z, however old; give a start, {INSTEAD}"),
        (Scope("L1", start=NOW - DAY), 0, 0, "scope.to: missing: "),
        # A party on every call; a party on some, even with an open range.
        (Scope("L1", party="+44 1234"), 3, 3,
         "scope: the scope matches every recording of licence L1 (all 3 indexed now)"),
        (Scope("L1", party="+44 1234", start=NOW - DAY), 3, 1, None),
        # Nothing indexed yet: a range that holds now covers all the licence will get.
        (Scope("L1", start=NOW - DAY, end=NOW + DAY), 0, 0,
         "scope: licence L1 has no recordings indexed yet and the time range holds the present"
         f" moment, so it covers every recording the licence gets; narrow it, {INSTEAD}"),
        (Scope("L1", start=NOW - 9 * DAY, end=NOW - DAY), 0, 0, None),
        (Scope("L1", start=NOW, end=NOW + DAY), 0, 0, "scope: licence L1 has no recordings"),
        (Scope("L1", start=NOW + DAY, end=NOW + 2 * DAY), 0, 0, None),
        (Scope("L1", party="+44 1234"), 0, 0, None),
    ],
)  # fmt: skip
def test_whole_licence_refusal(
    scope: Scope, present: int, matched: int, refusal: str | None
) -> None:
    found = whole_licence_refusal(scope, present, matched, NOW)
    if refusal is None:
        assert found is None
    else:
        assert found is not None and str(found).startswith(refusal)
        assert "\n" not in str(found)
