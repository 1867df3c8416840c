"""Early-deletion request documents: parse, canonical JSON, scope JSON (SPEC 6 and 11).

A request file is one JSON object (SPEC 11). ``parse_request`` checks every member and turns it
into an ``ErasureRequest``, or raises ``RequestInvalid`` naming the key path of the first problem
(``scope.call_ids[2]: ...``). Unknown keys are errors, every value must have its JSON type, and an
empty scope is refused: a request that means every recording of its licence says so with
``"all": true`` and nothing else in its scope. ``whole_licence_refusal`` decides, at registration,
that a scope which only looks narrow (a time range or a party) covers the whole licence all the
same, and is refused in favour of ``"all": true``.

The signature, when present, is checked in ``recd.core.signatures``: parsing only checks its
shape (``Signature``).

Every string of an accepted document is valid Unicode, so ``signed_bytes`` and ``digest`` never
fail for a parsed request. Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from recd.core.audit import canonical_json
from recd.core.scope import Scope, normalise_party
from recd.core.times import format_time
from recd.errors import UsageError

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # fullmatch: it names a file
RECORDING_ID = re.compile(r"[0-9a-f]{20}")  # recd.core.model.recording_id

MAX_TEXT = 2000  # characters of a free-text member (reason, evidence, the requester's fields)
MAX_CALL_ID = 128
KEY_PREFIX = "ed25519:"

_TIME_EXAMPLE = "2026-11-20T10:00:00Z"

_TOP_KEYS = (
    "request_id",
    "licence",
    "requested_by",
    "received",
    "reason",
    "evidence",
    "scope",
    "signature",
)
_REQUESTER_KEYS = ("name", "email", "role")
_SCOPE_KEYS = ("recordings", "call_ids", "party", "from", "to")
_REQUEST_SCOPE_KEYS = (*_SCOPE_KEYS, "all")
_SIGNATURE_KEYS = ("key", "value")

_EMPTY_SCOPE = (
    "empty: name recordings, call ids, a party or a time range,"
    ' or "all": true to erase every recording of the licence'
)
_ALL = '"all": true'

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_LICENCE_BAD = re.compile(r"[\s/\x00-\x1f\x7f-\x9f]")
_CALL_ID_BAD = re.compile(r"[\s/\\\x00-\x1f\x7f-\x9f]")
_PARTY = re.compile(r" *\+?[0-9 ().\-/]*")

_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),  # before int: a bool is an int to isinstance
    ((int, float), "a number"),
    (str, "a string"),
    ((list, tuple), "an array"),
    (Mapping, "an object"),
)

_T = TypeVar("_T")


class RequestInvalid(UsageError):
    """A request document (or a scope) that does not parse; ``str(exc)`` is ``key: message``."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True, slots=True)
class Requester:
    name: str
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class Signature:
    key: bytes  # 32 raw Ed25519 public-key bytes
    value: bytes  # 64 signature bytes
    key_text: str  # "ed25519:<base64>", the canonical base64 of ``key``


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A parsed request. ``document`` is the object as given (a detached copy), for storage and
    for comparing a re-added request with the registered one."""

    id: str
    licence: str
    requested_by: Requester
    received: datetime  # UTC
    reason: str
    evidence: str
    scope: Scope
    signature: Signature | None
    document: Mapping[str, Any] = field(hash=False)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the whole document, signature included."""
        return hashlib.sha256(canonical_json(self.document)).hexdigest()


def parse_request(document: object) -> ErasureRequest:
    """The request ``document`` (a JSON object as ``json.loads`` gives it) describes.

    Raises ``RequestInvalid`` with the key path of the first problem found.
    """
    doc = _object(document, "", _TOP_KEYS, _TOP_KEYS[:-1])
    request_id = _request_id(doc["request_id"], "request_id")
    licence = _licence(doc["licence"], "licence")
    return ErasureRequest(
        id=request_id,
        licence=licence,
        requested_by=_requester(doc["requested_by"], "requested_by"),
        received=_time(doc["received"], "received"),
        reason=_text(doc["reason"], "reason"),
        evidence=_text(doc["evidence"], "evidence"),
        scope=_scope(licence, doc["scope"], "scope", allow_empty=False, allow_all=True),
        signature=_optional(doc.get("signature"), "signature", _signature),
        document=_plain(doc),
    )


def scope_json(scope: Scope) -> dict[str, Any]:
    """``scope`` as the JSON object requests and holds store (its licence aside); ``"all":
    true`` only for a request's explicit whole licence, so that every other scope keeps the
    shape it always had."""
    data: dict[str, Any] = {
        "recordings": sorted(scope.recordings),
        "call_ids": sorted(scope.call_ids),
        "party": scope.party,
        "from": None if scope.start is None else format_time(scope.start),
        "to": None if scope.end is None else format_time(scope.end),
    }
    if scope.whole_licence:
        data["all"] = True
    return data


def scope_from_json(
    licence: str,
    data: Mapping[str, Any],
    key: str = "scope",
    *,
    allow_empty: bool = False,
    allow_all: bool = False,
) -> Scope:
    """The scope of ``licence`` that ``data`` describes, checked as ``parse_request`` checks a
    request's scope; problems are ``RequestInvalid`` with key paths below ``key``.

    An empty scope (nothing but the licence) is refused unless ``allow_empty``: a hold may cover
    a whole licence, a request only by saying ``"all": true``, which ``allow_all`` accepts (a
    request's scope; a hold's has no ``all``). ``null`` and an empty list mean a field is absent.
    """
    return _scope(licence, data, key, allow_empty=allow_empty, allow_all=allow_all)


def whole_licence_refusal(
    scope: Scope, present: int, matched: int, now: datetime
) -> RequestInvalid | None:
    """Why a request's ``scope`` is refused as the whole licence in disguise, or None.

    ``present`` is how many recordings of the licence are indexed (present) at ``now``,
    ``matched`` how many of them ``scope`` matches. Only a scope of a time range and a party
    can cover everything without meaning to; ids name what they erase, and ``"all": true``
    says it. Such a scope is refused when:

    - it is a time range alone, open at either end: it reaches recordings of any age on that
      side, including those made or indexed later, whatever is indexed now;
    - it matches every recording of the licence indexed now (at least one): a range from at
      or before the earliest to after the latest, or a party on every call, erases the whole
      licence today, however it fares with recordings indexed later;
    - nothing of the licence is indexed yet and it is a time range alone that holds ``now``:
      every recording the licence has from then on falls in it.
    """
    if scope.whole_licence or scope.recordings or scope.call_ids:
        return None
    licence = scope.licence
    instead = f"or {_ALL} to erase every recording of licence {licence}"
    if scope.party is None:
        if scope.end is None and scope.start is not None:
            return RequestInvalid(
                "scope.to",
                f"missing: a time range with no end covers every recording started from "
                f"{format_time(scope.start)} on, including those made later; give an end, "
                + instead,
            )
        if scope.start is None and scope.end is not None:
            return RequestInvalid(
                "scope.from",
                f"missing: a time range with no start covers every recording started before "
                f"{format_time(scope.end)}, however old; give a start, " + instead,
            )
    if present and matched >= present:
        what = "time range" if scope.party is None else "scope"
        return RequestInvalid(
            "scope",
            f"the {what} matches every recording of licence {licence} (all {present} indexed"
            f" now): a request for all of them must say so with {_ALL}, which recctl delete"
            " confirms with the licence id; otherwise narrow the scope",
        )
    start, end = scope.start, scope.end
    if present == 0 and scope.party is None and start and end and start <= now < end:
        return RequestInvalid(
            "scope",
            f"licence {licence} has no recordings indexed yet and the time range holds the"
            " present moment, so it covers every recording the licence gets; narrow it, " + instead,
        )
    return None


# --- members -------------------------------------------------------------------------------


def _request_id(value: object, path: str) -> str:
    text = _string(value, path)
    if not text:
        raise RequestInvalid(path, "must not be empty")
    if len(text) > 128:
        raise RequestInvalid(path, f"at most 128 characters, got {len(text)}")
    if not REQUEST_ID.fullmatch(text):
        if re.fullmatch(r"[A-Za-z0-9._:-]+", text):
            raise RequestInvalid(path, f"must start with a letter or a digit, got {text!r}")
        raise RequestInvalid(
            path,
            "ids may hold letters, digits and . _ : - only (it names the certificate file),"
            f" got {text!r}",
        )
    return text


def _licence(value: object, path: str) -> str:
    text = _string(value, path)
    if not text:
        raise RequestInvalid(path, "must not be empty")
    if _LICENCE_BAD.search(text):
        raise RequestInvalid(
            path, f'must not contain whitespace, "/" or control characters, got {text!r}'
        )
    return text


def _requester(value: object, path: str) -> Requester:
    data = _object(value, path, _REQUESTER_KEYS, _REQUESTER_KEYS)
    email = _text(data["email"], f"{path}.email")
    if "@" not in email:
        raise RequestInvalid(f"{path}.email", f"not an email address (no '@'), got {email!r}")
    return Requester(
        name=_text(data["name"], f"{path}.name"),
        email=email,
        role=_text(data["role"], f"{path}.role"),
    )


def _text(value: object, path: str) -> str:
    """One line of free text: not blank, no control characters, at most MAX_TEXT characters."""
    text = _string(value, path)
    if not text.strip():
        raise RequestInvalid(path, "must not be empty")
    if len(text) > MAX_TEXT:
        raise RequestInvalid(path, f"at most {MAX_TEXT} characters, got {len(text)}")
    if found := _CONTROL.search(text):
        raise RequestInvalid(
            path,
            f"must not contain control characters (line breaks, tabs), found {found.group()!r}"
            f" at character {found.start() + 1}",
        )
    return text


def _time(value: object, path: str) -> datetime:
    """An ISO 8601 time with a zone (``Z`` or an offset), as UTC."""
    text = _string(value, path)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise RequestInvalid(path, f"not an ISO 8601 time with a zone: {text!r}") from None
    if parsed.utcoffset() is None:
        raise RequestInvalid(path, f"needs a zone, e.g. {_TIME_EXAMPLE}, got {text!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise RequestInvalid(path, f"out of range: {text!r}") from None


def _scope(licence: str, value: object, key: str, *, allow_empty: bool, allow_all: bool) -> Scope:
    data = _object(value, key, _REQUEST_SCOPE_KEYS if allow_all else _SCOPE_KEYS, ())
    recordings = _optional(data.get("recordings"), _member(key, "recordings"), _list(_recording_id))
    call_ids = _optional(data.get("call_ids"), _member(key, "call_ids"), _list(_call_id))
    party = _optional(data.get("party"), _member(key, "party"), _party)
    start = _optional(data.get("from"), _member(key, "from"), _time)
    end = _optional(data.get("to"), _member(key, "to"), _time)
    if start is not None and end is not None and end <= start:
        raise RequestInvalid(_member(key, "to"), f"must be later than {_member(key, 'from')}")
    scope = Scope(
        licence, frozenset(recordings or ()), frozenset(call_ids or ()), party, start, end
    )
    if allow_all and _optional(data.get("all"), _member(key, "all"), _true):
        if not scope.empty:
            given = [name for name in _SCOPE_KEYS if data.get(name) not in (None, [])]
            raise RequestInvalid(
                _member(key, "all"),
                f"{_ALL} erases every recording of the licence and takes no other scope"
                f" field; this scope also gives {', '.join(given)}",
            )
        return replace(scope, whole_licence=True)
    if scope.empty and not allow_empty:
        raise RequestInvalid(key, _EMPTY_SCOPE)
    return scope


def _true(value: object, path: str) -> bool:
    if value is not True:
        shown = "false" if value is False else _kind(value)
        raise RequestInvalid(
            path, f"true (every recording of the licence) or left out; got {shown}"
        )
    return True


def _recording_id(value: object, path: str) -> str:
    text = _string(value, path)
    if not RECORDING_ID.fullmatch(text):
        raise RequestInvalid(
            path, f"not a recording id (20 hex digits, as recctl ls shows them), got {text!r}"
        )
    return text


def _call_id(value: object, path: str) -> str:
    text = _string(value, path)
    if not text:
        raise RequestInvalid(path, "must not be empty")
    if len(text) > MAX_CALL_ID:
        raise RequestInvalid(path, f"at most {MAX_CALL_ID} characters, got {len(text)}")
    if _CALL_ID_BAD.search(text):
        raise RequestInvalid(
            path, f"must not contain '/', '\\', whitespace or control characters, got {text!r}"
        )
    return text


def _party(value: object, path: str) -> str:
    text = _string(value, path)
    if not _PARTY.fullmatch(text):
        raise RequestInvalid(
            path,
            "not a phone number (digits, a leading '+', and spaces ( ) . - / between them),"
            f" got {text!r}",
        )
    if sum(c.isdigit() for c in normalise_party(text)) < 3:
        raise RequestInvalid(path, f"a party needs at least 3 digits, got {text!r}")
    return text


def _signature(value: object, path: str) -> Signature:
    data = _object(value, path, _SIGNATURE_KEYS, _SIGNATURE_KEYS)
    key_path, value_path = f"{path}.key", f"{path}.value"
    key_text = _string(data["key"], key_path)
    if not key_text.startswith(KEY_PREFIX):
        raise RequestInvalid(
            key_path,
            f'expected "ed25519:" and the base64 of the 32-byte public key, got {key_text!r}',
        )
    key = _base64(key_text.removeprefix(KEY_PREFIX), key_path, 32, "an Ed25519 public key")
    signature = _base64(_string(data["value"], value_path), value_path, 64, "an Ed25519 signature")
    return Signature(key, signature, KEY_PREFIX + base64.b64encode(key).decode("ascii"))


def _base64(text: str, path: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise RequestInvalid(path, f"not valid base64: {text!r}") from None
    if len(raw) != size:
        raise RequestInvalid(path, f"{what} is {size} bytes; this one is {len(raw)}")
    return raw


# --- JSON shapes ---------------------------------------------------------------------------


def _object(
    value: object, path: str, keys: Sequence[str], required: Sequence[str]
) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestInvalid(path or "(top)", f"a JSON object expected, got {_kind(value)}")
    for name in value:
        if name not in keys:
            raise RequestInvalid(
                _member(path, str(name)), f"unknown key; expected one of {', '.join(keys)}"
            )
    for name in required:
        if name not in value:
            raise RequestInvalid(_member(path, name), "missing")
    return value


def _list(item: Callable[[object, str], _T]) -> Callable[[object, str], list[_T]]:
    def parse(value: object, path: str) -> list[_T]:
        if not isinstance(value, list | tuple):
            raise RequestInvalid(path, f"a JSON array expected, got {_kind(value)}")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return parse


def _optional(value: object, path: str, parse: Callable[[object, str], _T]) -> _T | None:
    """``parse(value)``, or None for an absent member or ``null``."""
    return None if value is None else parse(value, path)


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise RequestInvalid(path, f"a string expected, got {_kind(value)}")
    if _SURROGATE.search(value):
        raise RequestInvalid(path, "not valid Unicode (it holds a lone surrogate)")
    return value


def _kind(value: object) -> str:
    """``value``'s JSON type, for messages."""
    return next((name for types, name in _KINDS if isinstance(value, types)), type(value).__name__)


def _member(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _plain(value: object) -> Any:
    """A detached copy of a checked document as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
