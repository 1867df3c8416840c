"""The admin socket's wire format: one request, one reply, both JSON (protocol version 1).

A connection carries exactly one exchange. The client sends one request line and half-closes
(or just waits); the daemon answers with one reply line and closes::

    -> {"v": 1, "command": "ls", "args": {"licence": "acme", "limit": 100}}\\n
    <- {"v": 1, "ok": true, "result": [...]}\\n
    <- {"v": 1, "ok": false, "error": {"kind": "not-found", "message": "no recording 1f2e"}}\\n

``command`` names the recctl command with spaces (``"breaker release"``). Errors carry a kind
from ``ErrorKind``, which fixes recctl's exit status (``exit_code_of``), and a one-line message
written for the operator. A request of another protocol version is answered with kind
``unsupported`` (in the request's version envelope) rather than guessed at.

Results, per command (times are ISO 8601 UTC strings, ``null`` where there is none):

- ``status``: object with ``version``, ``node`` (``daemon.node``), ``mode``, ``pid``, ``started``,
  ``recordings`` (present),
  ``bytes``, ``unclassified``, ``overdue``, ``next_deadline``, ``breaker`` (list of licences whose
  breaker is tripped), ``clock_guard`` (``{"paused": bool, "reason": str|null}``), ``sources``
  (list of ``{"name", "type", "watch", "scanning", "last_scan", "scan_seconds", "objects",
  "unwritable", "served"}``; ``unwritable`` is null, or why recd cannot write a directory root,
  whose recordings are then indexed but not erased; ``served`` is ``"served"``,
  ``"not-listed"`` (its ``nodes`` leave this node out), ``"elsewhere"`` (one node at a time:
  another serves it now, or the shared catalogue cannot be reached) or ``"unknown"`` (not
  asked yet); ``node`` and ``served`` came later than version 1 began: a reader takes their
  absence as an older daemon (every source served);
  ``watch`` is ``"inotify"``, ``"periodic"`` (degraded), ``"poll"`` (S3) or ``"none"``;
  ``objects`` is null, or for S3 ``{"objects", "versions", "delete_markers", "bytes"}`` as of
  the last completed poll) and ``licences`` (list of
  ``{"licence", "recordings", "bytes", "due"}``, ``licence`` null for unclassified).
- ``ls`` (args ``licence``, ``unclassified``, ``due_before``, ``limit``, ``state``): list of
  recording objects ``{"id", "source", "location", "licence", "started", "deadline", "size",
  "held", "state", "skip_reason", "not_before"}`` (``not_before``: the last hold release +
  holds.release_grace, null when none; ``deadline`` is never before it); the reply has
  ``"truncated": true`` beside ``result`` when ``limit`` cut the list short.
- ``show`` (arg ``id``): one recording object plus ``fields`` (``{name: {"value", "from"}}``,
  ``from`` being the provenance: source, pattern, tags, metadata, mtime), ``retention``
  (``{"period", "rule", "deadline"}``: the period text, where it was configured, and started +
  period, which a hold's release may have deferred ``deadline`` past), ``first_seen``,
  ``mtime``, ``dev``, ``ino``.
- ``policy``: list of ``{"licence", "name", "retention", "rule", "recordings", "breaker"}``.
- ``scan`` (arg ``source``, optional: else every source this node serves): list of
  ``{"source", "files", "new", "changed", "missing", "seconds"}`` once the scan has finished;
  kind ``not-allowed`` for a named source this node does not serve (``served``).
- ``breaker ls``: list of ``{"licence", "tripped_at", "due", "total", "released_at",
  "released_by"}``.
- ``breaker release`` (arg ``licence``): ``{"licence", "due"}``.
- ``audit acknowledge`` (arg ``reason``): ``{"seq", "problem"}``, the ``audit.acknowledged``
  entry and the problem it ended; kind ``not-allowed`` when there is none.

Legal holds (a *hold object* is ``{"id", "licence", "case", "reason", "scope", "whole_licence",
"state", "placed_at", "placed_by", "until", "released_at", "released_by", "release_reason",
"held"}``; ``scope`` is ``{"recordings", "call_ids", "party", "from", "to"}``, ``state`` one of
active, released, expired, ``held`` the present recordings it matches now):

- ``hold place`` (args ``licence``, ``case``, ``reason``, optional ``recordings``, ``call_ids``,
  ``party``, ``from``, ``to``, ``until``): the hold object.
- ``hold release`` (args ``hold``, ``reason``): the hold object plus ``released`` (recordings no
  hold keeps any more) and ``due_from`` (none of them is erased before it).
- ``hold ls`` (arg ``all``): list of hold objects; ``hold show`` (arg ``hold``): one.

Early-deletion requests (a *request object* is ``{"id", "licence", "state", "requested_by",
"received", "reason", "evidence", "scope", "verification", "registered_at", "registered_by",
"approved_at", "approved_by", "signed_by", "rejected_at", "rejected_by", "rejected_reason",
"executed_at", "certificate", "counts"}``; ``state`` one of received, verified, rejected,
executing, completed, partial; ``counts`` ``{"erased", "held", "failed", "gone", "pending"}``;
an *item* is ``{"id", "location", "licence", "size", "outcome", "holds", "note"}``):

- ``request add`` (arg ``document``: the request file's object): the request object, with
  ``"existing": true`` when the same document was registered before.
- ``request approve`` (arg ``request``), ``request reject`` (args ``request``, ``reason``): the
  request object.
- ``request ls`` (arg ``state``, optional): list of request objects; ``request show`` (arg
  ``request``): the request object plus ``items``.
- ``request preview`` (arg ``request``): ``{"request", "items", "erase", "bytes", "held",
  "gone"}``; an item to be erased has outcome ``erase``. Read-only, and given for a request
  still ``received`` too (its approver's preview); refused for a rejected one.
- ``request execute`` (arg ``request``): ``{"request", "items"}`` once the run is over. When
  nothing was left to erase and nothing changed, no run happens: the request, its
  ``certificate`` (same ``seq``) included, is as it was before.
- ``request certificate`` (arg ``request``): ``{"text", "sha256", "path", "seq"}``: the exact
  certificate file, its digest and the ``request.certificate`` audit entry that holds it.

Backups (``recd.daemon.admin.backup``):

- ``backup`` (arg ``dir``: where recctl writes it, for the log and the audit entry): ``{"token",
  "version", "state_dir", "created", "files": [{"name", "size"}], "audit": {"entries", "seq",
  "hash"}, "catalogue_mark": {"seq", "hash"}}``; beside the reply (SCM_RIGHTS, at most 250 per
  message, ``Reply.fds``) one read-only descriptor per file, in order.
- ``backup written`` (args ``token``, ``dir``, ``manifest_sha256``, ``bytes``): ``{"seq",
  "hash"}`` of the ``backup.written`` entry.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from recd.errors import (
    DaemonUnavailable,
    ExitCode,
    NotAllowedInState,
    NotFound,
    PermissionDenied,
    RecdError,
    UsageError,
)

VERSION = 1
#: A request is small; anything bigger is not recctl talking.
MAX_REQUEST = 64 * 1024


class ErrorKind(enum.StrEnum):
    USAGE = "usage"
    NOT_FOUND = "not-found"
    NOT_ALLOWED = "not-allowed"  # not allowed in this state
    PERMISSION = "permission-denied"
    FAILED = "failed"
    PARTIAL = "partial"  # done in part
    UNSUPPORTED = "unsupported"  # another protocol version
    UNAVAILABLE = "unavailable"  # the daemon is stopping


_EXIT = {
    ErrorKind.USAGE: ExitCode.USAGE,
    ErrorKind.NOT_FOUND: ExitCode.NOT_ALLOWED,
    ErrorKind.NOT_ALLOWED: ExitCode.NOT_ALLOWED,
    ErrorKind.PERMISSION: ExitCode.NO_PERMISSION,
    ErrorKind.FAILED: ExitCode.FAILED,
    ErrorKind.PARTIAL: ExitCode.PARTIAL,
    ErrorKind.UNSUPPORTED: ExitCode.FAILED,
    ErrorKind.UNAVAILABLE: ExitCode.UNAVAILABLE,
}

_ERRORS: dict[ErrorKind, type[RecdError]] = {
    ErrorKind.USAGE: UsageError,
    ErrorKind.NOT_FOUND: NotFound,
    ErrorKind.NOT_ALLOWED: NotAllowedInState,
    ErrorKind.PERMISSION: PermissionDenied,
    ErrorKind.UNAVAILABLE: DaemonUnavailable,
}


class ProtocolError(RecdError):
    """Bytes that are not a valid request or reply of this protocol version."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.USAGE) -> None:
        super().__init__(message)
        self.kind = kind


class RemoteError(RecdError):
    """An error the daemon replied with; its exit code follows the error kind."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = _EXIT[kind]


def exit_code_of(kind: ErrorKind) -> ExitCode:
    return _EXIT[kind]


def kind_of(exc: RecdError) -> ErrorKind:
    """The error kind the daemon replies with for ``exc``."""
    if isinstance(exc, ProtocolError | RemoteError):
        return exc.kind
    for cls in type(exc).__mro__:  # the nearest known class, then the exit code
        for kind, known in _ERRORS.items():
            if cls is known:
                return kind
    for kind, code in _EXIT.items():
        if exc.exit_code == code and kind is not ErrorKind.UNSUPPORTED:
            return kind
    return ErrorKind.FAILED


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    result: Any = None
    error: ErrorKind | None = None
    message: str | None = None
    truncated: bool = False
    #: Open file descriptors sent beside the reply (SCM_RIGHTS), never in its JSON: the
    #: daemon's read-only snapshot files for ``backup``. Whoever holds the reply closes them.
    fds: tuple[int, ...] = ()

    @classmethod
    def success(cls, result: Any, *, truncated: bool = False, fds: tuple[int, ...] = ()) -> Reply:
        return cls(True, result, truncated=truncated, fds=fds)

    @classmethod
    def failure(cls, kind: ErrorKind, message: str) -> Reply:
        return cls(False, error=kind, message=message)

    def unwrap(self) -> Any:
        """The result, or the daemon's error raised as a ``RemoteError``."""
        if not self.ok:
            raise RemoteError(self.error or ErrorKind.FAILED, self.message or "failed")
        return self.result


def _dump(obj: dict[str, Any]) -> bytes:
    # ASCII on the wire: file names that are not UTF-8 (surrogate escapes) travel as \udcXX
    # escapes and come back as the same str, whatever the bytes were.
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii") + b"\n"


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8", "surrogateescape"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the {what} is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"the {what} is not a JSON object")
    version = obj.get("v")
    if type(version) is not int or version != VERSION:  # not True, not 1.0
        raise ProtocolError(
            f"the {what} speaks admin protocol version {version!r}; this recd speaks "
            f"{VERSION}: use the recctl that came with this recd",
            ErrorKind.UNSUPPORTED,
        )
    return obj


def encode_request(request: Request) -> bytes:
    return _dump({"v": VERSION, "command": request.command, "args": request.args})


def decode_request(data: bytes) -> Request:
    if len(data) > MAX_REQUEST:
        raise ProtocolError(f"the request is larger than {MAX_REQUEST} bytes")
    obj = _load(data, "request")
    command, args = obj.get("command"), obj.get("args", {})
    if not isinstance(command, str) or not command:
        raise ProtocolError("the request names no command")
    if not isinstance(args, dict):
        raise ProtocolError("the request's args are not a JSON object")
    return Request(command, args)


def encode_reply(reply: Reply) -> bytes:
    if reply.ok:
        body: dict[str, Any] = {"v": VERSION, "ok": True, "result": reply.result}
        if reply.truncated:
            body["truncated"] = True
        return _dump(body)
    error = {"kind": str(reply.error or ErrorKind.FAILED), "message": reply.message or ""}
    return _dump({"v": VERSION, "ok": False, "error": error})


def decode_reply(data: bytes) -> Reply:
    obj = _load(data, "reply")
    if obj.get("ok") is True:
        return Reply.success(obj.get("result"), truncated=bool(obj.get("truncated", False)))
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError("the reply is neither a result nor an error", ErrorKind.FAILED)
    try:
        kind = ErrorKind(str(error.get("kind")))
    except ValueError:
        kind = ErrorKind.FAILED
    return Reply.failure(kind, str(error.get("message") or "the daemon reported a failure"))
