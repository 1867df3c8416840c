"""`recctl audit export`: an audit chain written whole into one plain JSON-lines file, which
``recctl audit verify --file`` checks offline exactly as it checks the log it came from.

A *reader* verifies a chain while handing each of its lines, byte for byte as sealed, in chain
order, to a sink, and returns what it verified (``AuditCorrupt`` names the first bad entry).
``recd.cli.auditfile.copy_chain`` reads a state directory or one file;
``recd.cli.audittable.TableChain.checked`` the audit table of a shared PostgreSQL database
(issue 18). The *writer* here is the same for
all: the lines go into a temporary file beside OUT (mode 0600: entries are evidence and may name
customers), which is synced and renamed to OUT only once the whole chain has verified. So OUT
is the complete chain or absent, never an export cut short, which would still verify: as a
shorter chain. For the same reason OUT cannot be standard output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from recd import durable
from recd.cli.auditfile import LIVE, Checked, Sink
from recd.core.auditsegments import GZ, parse_segment
from recd.errors import RecdError, UsageError, os_reason

MODE = 0o600

#: Verifies a chain, handing each line to the sink; what it verified.
Reader = Callable[[Sink], Checked]

STDOUT_REFUSED = (
    "--file: - (standard output) is not allowed: an export cut short by a full disk or a closed "
    "pipe would still verify, as a shorter chain, and could not be taken back; give a file name "
    "(it appears only once the whole chain is written and verified)"
)


def check_target(out: Path, *, force: bool) -> None:
    """Refuse, before anything is read, an OUT that cannot or must not be written."""
    if str(out) == "-":
        raise UsageError(STDOUT_REFUSED)
    if out.name.endswith(GZ):
        raise UsageError(
            f"--file: {out}: ends in {GZ}, which `recctl audit verify` reads as gzip, but the "
            "export is plain JSON lines; name it e.g. audit.jsonl (gzip it afterwards if you like)"
        )
    if out.is_dir():
        raise RecdError(f"--file: {out}: is a directory; give the name of the file to write")
    if os.path.lexists(out) and not force:
        raise RecdError(
            f"--file: {out}: already exists; nothing was written (give another name, or "
            "--force to replace it)"
        )
    try:
        parent = os.stat(out.parent)
    except FileNotFoundError:
        raise RecdError(f"--file: {out}: cannot create it: {out.parent} does not exist") from None
    except OSError as exc:
        raise RecdError(f"--file: {out}: cannot reach {out.parent}: {os_reason(exc)}") from None
    if not stat.S_ISDIR(parent.st_mode):
        raise RecdError(f"--file: {out}: cannot create it: {out.parent} is not a directory")


class Unwritable(RecdError):
    """OUT cannot be written (as opposed to the chain not being read or verified)."""


def _sink(file: IO[bytes], out: Path) -> Sink:
    def write(line: bytes) -> None:
        try:
            file.write(line)
        except OSError as exc:
            raise Unwritable(f"--file: {out}: cannot write: {os_reason(exc)}") from None

    return write


def _place(temporary: str, out: Path, *, force: bool) -> None:
    """``temporary`` renamed to ``out``; without ``force`` never over a file that appeared
    meanwhile (a hard link fails if the name exists, where a rename would replace it)."""
    try:
        if force:
            os.replace(temporary, out)
            return
        os.link(temporary, out)
    except FileExistsError:
        raise RecdError(
            f"--file: {out}: appeared while the export was written; nothing was written "
            "(give another name, or --force to replace it)"
        ) from None
    except OSError as exc:
        raise RecdError(f"--file: {out}: cannot create it: {os_reason(exc)}") from None
    os.unlink(temporary)


def export_chain(read: Reader, out: Path, *, force: bool) -> Checked:
    """Write the chain ``read`` verifies into ``out``, whole or not at all; what it verified.

    Every failure (the chain does not verify or cannot be read, ``out`` cannot be written)
    removes the temporary file and leaves ``out`` as it was.
    """
    check_target(out, force=force)
    try:
        fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise RecdError(
            f"--file: {out}: cannot create a file in {out.parent}: {os_reason(exc)}"
        ) from None
    file = os.fdopen(fd, "wb")
    try:
        os.fchmod(fd, MODE)  # mkstemp's mode already, whatever the umask
        checked = read(_sink(file, out))
        try:
            file.flush()
            os.fsync(fd)
            file.close()
        except OSError as exc:
            raise Unwritable(f"--file: {out}: cannot write: {os_reason(exc)}") from None
        _place(temporary, out, force=force)
    except BaseException:
        with contextlib.suppress(OSError):
            file.close()  # its buffered lines may not fit either
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    try:
        durable.fsync_dir(out.parent)
    except OSError as exc:
        raise RecdError(
            f"--file: {out}: written whole, but its directory cannot be synced, so the name may "
            f"not survive a crash: {os_reason(exc)}"
        ) from None
    return checked


def chain_clash(out: Path, source: Path) -> str | None:
    """Why ``out`` must not be written, being a file of the chain read from ``source`` or a
    name that reading ``source``'s directory would take as part of the chain (``audit.log``, a
    segment): even with ``--force``, an export must never take the place of the log."""
    where = source if source.is_dir() else source.parent
    try:
        inside = os.path.samefile(out.parent, where)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None  # one of them is missing: the checks that follow say which
        raise RecdError(f"--file: {out}: cannot check it: {os_reason(exc)}") from None
    if not inside:
        return None
    if out.name == source.name and not source.is_dir():
        return f"is the file being exported ({source})"
    if out.name == LIVE or parse_segment(LIVE, out.name) is not None:
        return f"would be read as part of the audit chain in {where}"
    return None
