"""The admin commands of ``recctl backup`` (issue 14, point 4): a consistent snapshot of the
state, handed to recctl as read-only file descriptors, and the audit entry once it is written.

Who writes where: recd runs privileged and recctl is run by members of the admin group, so recd
never writes a backup itself. ``backup`` copies the catalogue with SQLite's online backup API
on the connection's thread (the loop goes on, so the watchdog is fed and nothing stalls), then
takes the audit log's cut on the loop, and replies with the snapshot's files: their descriptors
travel beside the reply (SCM_RIGHTS, ``recd.adapters.snapshot``). recctl writes them into the
backup directory with its caller's own rights and reports with ``backup written``, which
records ``backup.written`` in the audit log: the directory recctl names, the files, the head it
was handed (not what recctl says) and the manifest's SHA-256.

One backup is taken at a time. Result shapes:

- ``backup`` (arg ``dir``): ``{"token", "version", "state_dir", "created", "files": [{"name",
  "size"}], "audit": {"entries", "seq", "hash"}, "catalogue_mark": {"seq", "hash"}}``, with one
  descriptor per file, in order.
- ``backup written`` (args ``token``, ``dir``, ``manifest_sha256``, ``bytes``): ``{"seq",
  "hash"}`` of the ``backup.written`` entry.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from recd import __version__
from recd.adapters.snapshot import Handed, Snapshot, close_all
from recd.core.audit import GENESIS, AuditDraft
from recd.core.text import printable
from recd.daemon.admin.args import Args, text
from recd.daemon.admin.dispatch import Handler, Loop
from recd.daemon.admin.records import JsonObject, iso
from recd.daemon.build import open_copier
from recd.daemon.control import Caller
from recd.daemon.runtime import Runtime
from recd.errors import NotAllowedInState, NotFound, RecdError, UsageError, os_reason
from recd.ports.records import AuditMark
from recd.protocol import Reply

logger = logging.getLogger(__name__)

#: Snapshots handed out and not yet reported written: a few, for the last admins who asked.
REMEMBERED = 8
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupLoop(Loop, Protocol):
    @property
    def runtime(self) -> Runtime:
        """The open state (on the loop only)."""


@dataclass(frozen=True, slots=True)
class Taken:
    """A snapshot handed to recctl: what its audit entry will say."""

    uid: int
    files: int
    entries: int
    head: str
    mark: AuditMark | None


class Backups:
    def __init__(self, loop: BackupLoop) -> None:
        self.loop = loop
        self.commands: dict[str, Handler] = {
            "backup": self.backup,
            "backup written": self.written,
        }
        self._one = threading.Lock()
        self._taken: OrderedDict[str, Taken] = OrderedDict()

    def backup(self, args: Args, caller: Caller) -> Reply:
        target = text(args, "dir")
        if not self._one.acquire(blocking=False):
            raise NotAllowedInState("another backup is being taken; try again once it is done")
        try:
            return self._backup(target, caller)
        finally:
            self._one.release()

    def _backup(self, target: str, caller: Caller) -> Reply:
        if self.loop.config.catalogue.shared:
            raise NotAllowedInState(
                "the catalogue and the audit chain are in PostgreSQL (catalogue.url): back "
                "them up with pg_dump; recctl backup copies a SQLite catalogue"
            )
        state = self.loop.config.daemon.state_dir
        started = self.loop.clock.now()
        try:
            snapshot = Snapshot(state)
        except OSError as exc:
            raise RecdError(f"{state}: cannot take a backup: {os_reason(exc)}") from None
        try:
            copier = open_copier(state / "catalog.db")
            try:
                mark = copier.backup_to(snapshot.catalogue)
            finally:
                copier.close()
            cut = self.loop.call_soon(snapshot.cut)
            handed = snapshot.hand_over(cut)
        except OSError as exc:
            raise RecdError(f"{state}: cannot take a backup: {os_reason(exc)}") from None
        except ValueError as exc:
            raise RecdError(
                f"{state / 'audit.log'}: cannot take a backup: its last entry is damaged "
                f"({exc}); see `recctl audit verify`"
            ) from None
        finally:
            snapshot.remove()
        seq, digest = (0, None) if cut.last is None else (cut.last.seq, cut.last.hash)
        if mark is not None and mark.seq is not None and mark.seq > seq:
            close_all([h.fd for h in handed])
            raise NotAllowedInState(
                f"{state}: the catalogue reflects audit entry {mark.seq}, after the log's last "
                f"({seq}): the log was cut or replaced; see `recctl audit verify`"
            )
        token = secrets.token_hex(16)
        head = f"{seq}:{digest or GENESIS}"
        self._remember(token, Taken(caller.uid, len(handed), seq, head, mark))
        seconds = (self.loop.clock.now() - started).total_seconds()
        logger.info(
            "backup for %s (%s): snapshot of %d files up to audit entry %d taken in %.1f s",
            caller.user,
            printable(target),
            len(handed),
            seq,
            seconds,
        )
        result = {
            "token": token,
            "version": __version__,
            "state_dir": str(state),
            "created": iso(started),
            "files": [{"name": h.name, "size": h.size} for h in handed],
            "audit": {"entries": seq, "seq": seq, "hash": digest},
            "catalogue_mark": _mark_json(mark),
        }
        return Reply.success(result, fds=_fds(handed))

    def _remember(self, token: str, taken: Taken) -> None:
        self._taken[token] = taken
        while len(self._taken) > REMEMBERED:
            self._taken.popitem(last=False)

    def written(self, args: Args, caller: Caller) -> Reply:
        token, target = text(args, "token"), text(args, "dir")
        manifest, size = text(args, "manifest_sha256"), args.get("bytes")
        if not _SHA256.fullmatch(manifest):
            raise UsageError(f"manifest_sha256: a SHA-256 in hex expected, not {manifest!r}")
        if type(size) is not int or size < 0:
            raise UsageError(f"bytes: a whole number expected, not {size!r}")
        taken = self._taken.get(token)
        if taken is None or taken.uid != caller.uid:
            raise NotFound("no backup was handed to you with this token (or recd restarted)")
        del self._taken[token]
        details = {
            "files": taken.files,
            "bytes": size,
            "entries": taken.entries,
            "head": taken.head,
            "catalogue_mark": _mark_json(taken.mark),
            "manifest_sha256": manifest,
        }
        draft = AuditDraft("backup.written", target, details, actor=caller.user)

        def record() -> tuple[int, str]:
            [entry] = self.loop.runtime.audit.append([draft], self.loop.clock.now())
            return entry.seq, entry.hash

        try:
            seq, digest = self.loop.call_soon(record)
        except OSError as exc:
            raise RecdError(
                f"{self.loop.config.daemon.state_dir / 'audit.log'}: cannot write the audit "
                f"log: {os_reason(exc)}"
            ) from None
        logger.info(
            "backup written by %s to %s (audit entry %d)", caller.user, printable(target), seq
        )
        return Reply.success({"seq": seq, "hash": digest})


def _mark_json(mark: AuditMark | None) -> JsonObject:
    return {"seq": None if mark is None else mark.seq, "hash": None if mark is None else mark.hash}


def _fds(handed: list[Handed]) -> tuple[int, ...]:
    return tuple(h.fd for h in handed)
