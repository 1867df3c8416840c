"""The admin socket's wire format: round trips, error kinds and exit codes, and what is refused."""

from __future__ import annotations

import json

import pytest

from recd.errors import (
    AuditCorrupt,
    ConfigInvalid,
    DaemonUnavailable,
    ExitCode,
    InvalidValue,
    NotAllowedInState,
    NotFound,
    PermissionDenied,
    RecdError,
    StateError,
    UsageError,
)
from recd.protocol import (
    MAX_REQUEST,
    ErrorKind,
    ProtocolError,
    RemoteError,
    Reply,
    Request,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    exit_code_of,
    kind_of,
)

UNSUPPORTED = (
    "the {} speaks admin protocol version {}; this recd speaks 1: use the recctl that came "
    "with this recd"
)


@pytest.mark.parametrize(
    "request_",
    [
        Request("status"),
        Request("ls", {"licence": "acme", "limit": 100, "unclassified": False}),
        Request("breaker release", {"licence": "L1"}),
        Request("show", {"id": "caf\u00e9 \u260e"}),
        Request("show", {"id": "caf\udce9.wav"}),  # a file name that is not UTF-8
    ],
)
def test_requests_round_trip_as_one_ascii_line(request_: Request) -> None:
    data = encode_request(request_)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert data.isascii()
    assert decode_request(data) == request_


def test_request_wire_form() -> None:
    assert encode_request(Request("ls", {"limit": 1})) == (
        b'{"v":1,"command":"ls","args":{"limit":1}}\n'
    )
    assert decode_request(b'{"v": 1, "command": "status"}') == Request("status", {})


@pytest.mark.parametrize(
    "reply",
    [
        Reply.success(None),
        Reply.success({"recordings": 3, "sources": [{"name": "pbx", "watch": "inotify"}]}),
        Reply.success([{"id": "1f2e", "location": "/r/caf\udce9.wav"}], truncated=True),
        Reply.failure(ErrorKind.NOT_FOUND, "no recording with id 1f2e (see `recctl ls`)"),
        Reply.failure(ErrorKind.UNAVAILABLE, "recd is stopping; try again when it is back"),
    ],
)
def test_replies_round_trip(reply: Reply) -> None:
    data = encode_reply(reply)
    assert data.isascii() and data.endswith(b"\n")
    assert decode_reply(data) == reply


def test_reply_wire_forms_and_the_truncated_flag() -> None:
    assert encode_reply(Reply.success([1])) == b'{"v":1,"ok":true,"result":[1]}\n'
    assert encode_reply(Reply.success([1], truncated=True)) == (
        b'{"v":1,"ok":true,"result":[1],"truncated":true}\n'
    )
    assert decode_reply(b'{"v":1,"ok":true,"result":[1]}').truncated is False
    assert encode_reply(Reply.failure(ErrorKind.PARTIAL, "2 of 3 erased")) == (
        b'{"v":1,"ok":false,"error":{"kind":"partial","message":"2 of 3 erased"}}\n'
    )
    assert encode_reply(Reply(False)) == (
        b'{"v":1,"ok":false,"error":{"kind":"failed","message":""}}\n'
    )


def test_a_value_json_cannot_carry_is_refused_when_encoding() -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        encode_reply(Reply.success(float("nan")))


EXIT_CODES = {
    ErrorKind.USAGE: ExitCode.USAGE,
    ErrorKind.NOT_FOUND: ExitCode.NOT_ALLOWED,
    ErrorKind.NOT_ALLOWED: ExitCode.NOT_ALLOWED,
    ErrorKind.PERMISSION: ExitCode.NO_PERMISSION,
    ErrorKind.FAILED: ExitCode.FAILED,
    ErrorKind.PARTIAL: ExitCode.PARTIAL,
    ErrorKind.UNSUPPORTED: ExitCode.FAILED,
    ErrorKind.UNAVAILABLE: ExitCode.UNAVAILABLE,
}


@pytest.mark.parametrize("kind", list(ErrorKind))  # a new kind fails here until it is listed
def test_every_error_kind_has_its_exit_code(kind: ErrorKind) -> None:
    code = EXIT_CODES[kind]
    assert exit_code_of(kind) is code
    error = RemoteError(kind, "what went wrong")
    assert (error.kind, error.exit_code, str(error)) == (kind, code, "what went wrong")
    with pytest.raises(RemoteError) as caught:
        decode_reply(encode_reply(Reply.failure(kind, "what went wrong"))).unwrap()
    assert (caught.value.kind, caught.value.exit_code) == (kind, code)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (UsageError("x"), ErrorKind.USAGE),
        (NotFound("x"), ErrorKind.NOT_FOUND),
        (NotAllowedInState("x"), ErrorKind.NOT_ALLOWED),
        (PermissionDenied("x"), ErrorKind.PERMISSION),
        (DaemonUnavailable("x"), ErrorKind.UNAVAILABLE),
        (RecdError("x"), ErrorKind.FAILED),
        (StateError("x"), ErrorKind.FAILED),
        (AuditCorrupt("x"), ErrorKind.FAILED),
        (InvalidValue("x"), ErrorKind.USAGE),  # by its exit code
        (ConfigInvalid([]), ErrorKind.FAILED),  # exit code 78 is no kind of its own
        (ProtocolError("x"), ErrorKind.USAGE),
        (ProtocolError("x", ErrorKind.UNSUPPORTED), ErrorKind.UNSUPPORTED),
        (RemoteError(ErrorKind.PARTIAL, "x"), ErrorKind.PARTIAL),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_kind_of_each_error_class(error: RecdError, kind: ErrorKind) -> None:
    assert kind_of(error) is kind


class _NotYourTurn(NotFound):
    """A more precise error some command may raise one day."""


class _BreakerNotTripped(NotAllowedInState):
    """A more precise error some command may raise one day."""


def test_kind_of_a_subclass_of_not_found_is_not_found() -> None:
    assert kind_of(_NotYourTurn("x")) is ErrorKind.NOT_FOUND


def test_kind_of_a_subclass_of_not_allowed_is_not_allowed() -> None:
    assert kind_of(_BreakerNotTripped("x")) is ErrorKind.NOT_ALLOWED


@pytest.mark.parametrize(
    ("data", "message", "kind"),
    [
        (b"", "the request is not JSON: Expecting value: line 1 column 1 (char 0)", "usage"),
        (
            b"status\n",
            "the request is not JSON: Expecting value: line 1 column 1 (char 0)",
            "usage",
        ),
        (
            b'{"v": 1, "command": "ls"',
            "the request is not JSON: Expecting ',' delimiter: line 1 column 25 (char 24)",
            "usage",
        ),
        (
            b"\xff\xfe{}",
            "the request is not JSON: Expecting value: line 1 column 1 (char 0)",
            "usage",
        ),
        (b'["status"]', "the request is not a JSON object", "usage"),
        (b'"status"', "the request is not a JSON object", "usage"),
        (b'{"command": "status"}', UNSUPPORTED.format("request", "None"), "unsupported"),
        (b'{"v": 2, "command": "status"}', UNSUPPORTED.format("request", "2"), "unsupported"),
        (b'{"v": "1", "command": "status"}', UNSUPPORTED.format("request", "'1'"), "unsupported"),
        (b'{"v": 1.0, "command": "status"}', UNSUPPORTED.format("request", "1.0"), "unsupported"),
        (
            b'{"v": true, "command": "status"}',
            UNSUPPORTED.format("request", "True"),
            "unsupported",
        ),
        (b'{"v": 1}', "the request names no command", "usage"),
        (b'{"v": 1, "command": ""}', "the request names no command", "usage"),
        (b'{"v": 1, "command": ["ls"]}', "the request names no command", "usage"),
        (
            b'{"v": 1, "command": "ls", "args": []}',
            "the request's args are not a JSON object",
            "usage",
        ),
        (
            b'{"v": 1, "command": "ls", "args": null}',
            "the request's args are not a JSON object",
            "usage",
        ),
    ],
)
def test_garbage_requests_are_refused_with_one_line(data: bytes, message: str, kind: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(data)
    assert (str(caught.value), caught.value.kind) == (message, kind)
    assert caught.value.exit_code is ExitCode.FAILED


def test_a_request_over_the_size_limit_is_refused_unread() -> None:
    padding = "x" * MAX_REQUEST
    data = json.dumps({"v": 1, "command": "status", "args": {"pad": padding}}).encode()
    with pytest.raises(ProtocolError) as caught:
        decode_request(data)
    assert (str(caught.value), caught.value.kind) == (
        "the request is larger than 65536 bytes",
        ErrorKind.USAGE,
    )
    just = encode_request(Request("status", {"pad": "x" * (MAX_REQUEST - 50)}))
    assert len(just) <= MAX_REQUEST
    assert decode_request(just).command == "status"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b'{"v":1,"ok":false,"error":{"kind":"on-fire","message":"smoke"}}',
            Reply.failure(ErrorKind.FAILED, "smoke"),
        ),
        (
            b'{"v":1,"ok":false,"error":{"message":"smoke"}}',
            Reply.failure(ErrorKind.FAILED, "smoke"),
        ),
        (
            b'{"v":1,"ok":false,"error":{"kind":"not-found"}}',
            Reply.failure(ErrorKind.NOT_FOUND, "the daemon reported a failure"),
        ),
        (
            b'{"v":1,"ok":false,"error":{"kind":"usage","message":""}}',
            Reply.failure(ErrorKind.USAGE, "the daemon reported a failure"),
        ),
        (b'{"v":1,"ok":true}', Reply.success(None)),
        (b'{"v":1,"ok":true,"result":{},"truncated":1}', Reply.success({}, truncated=True)),
    ],
)
def test_replies_from_another_recd_are_read_leniently(data: bytes, expected: Reply) -> None:
    assert decode_reply(data) == expected


@pytest.mark.parametrize(
    ("data", "message", "kind"),
    [
        (b"<html>", "the reply is not JSON: Expecting value: line 1 column 1 (char 0)", "usage"),
        (b"[]", "the reply is not a JSON object", "usage"),
        (b'{"ok": true}', UNSUPPORTED.format("reply", "None"), "unsupported"),
        (b'{"v":1,"ok":"yes"}', "the reply is neither a result nor an error", "failed"),
        (
            b'{"v":1,"ok":false,"error":"boom"}',
            "the reply is neither a result nor an error",
            "failed",
        ),
    ],
)
def test_replies_that_are_not_the_protocol(data: bytes, message: str, kind: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_reply(data)
    assert (str(caught.value), caught.value.kind) == (message, kind)


def test_unwrap_returns_the_result_or_raises_the_daemons_error() -> None:
    assert Reply.success({"a": 1}).unwrap() == {"a": 1}
    with pytest.raises(RemoteError) as caught:
        Reply.failure(ErrorKind.PERMISSION, "permission denied: ...").unwrap()
    assert (caught.value.kind, str(caught.value), caught.value.exit_code) == (
        ErrorKind.PERMISSION, "permission denied: ...", ExitCode.NO_PERMISSION,
    )  # fmt: skip
    with pytest.raises(RemoteError) as bare:
        Reply(False).unwrap()  # a failure with neither kind nor message
    assert (bare.value.kind, str(bare.value)) == (ErrorKind.FAILED, "failed")
