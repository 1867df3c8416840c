"""``recctl backup DIR`` and ``recctl backup verify DIR`` (issue 14, point 4).

``backup`` writes a consistent backup of recd's state into DIR, which must be new or empty: recctl
creates or opens DIR itself (never through a symbolic link) and works only through that open
directory. The daemon takes the snapshot (``recd.daemon.admin.backup``) and hands its files over as
read-only descriptors; recctl copies them into DIR with the caller's own rights (each file
created anew, ``O_EXCL | O_NOFOLLOW``: nothing planted in DIR is followed or overwritten),
hashing as it goes, syncs them, writes ``MANIFEST.json`` last and asks recd to record
``backup.written`` in the audit log. So an administrator can make recd write nowhere at all, and
a backup lands only where its caller may write. A failed backup removes what it wrote (and DIR,
if it made it).

``verify`` reads a backup directory only (no daemon): every file's size and SHA-256 against the
manifest, no file left out or added, the catalogue's ``PRAGMA quick_check`` and its audit mark,
and the copied audit chain, segments and live log as one chain ending at the manifest's head.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gzip
import hashlib
import json
import os
import resource
import sqlite3
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from recd.cli import client, kit
from recd.cli.kit import EPILOG, Subparsers
from recd.cli.render.text import plural, printable
from recd.core.audit import GENESIS, verify
from recd.core.backup import (
    CATALOGUE,
    LIVE_LOG,
    MANIFEST,
    BackupFile,
    Manifest,
    audit_order,
    file_mode,
    file_problems,
    manifest_json,
    manifest_problems,
    parse_manifest,
    segment_range,
)
from recd.errors import ExitCode, PermissionDenied, RecdError, UsageError, os_reason
from recd.protocol import Request

_CHUNK = 1024 * 1024
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a listed name is refused, not waited on for ever.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _fail(path: Path, doing: str, exc: OSError) -> RecdError:
    """The error for an OSError on ``path``; permission problems exit 77."""
    cls = PermissionDenied if exc.errno in (errno.EACCES, errno.EPERM) else RecdError
    return cls(f"{path}: {doing}: {os_reason(exc)}")


# --- the target directory ------------------------------------------------------------------------


@dataclass
class Target:
    """DIR, open; the files recctl created in it, so that a failure can take them back."""

    path: Path
    fd: int
    made: bool  # recctl created DIR
    created: list[str] = field(default_factory=list)

    def undo(self) -> None:
        for name in self.created:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self.fd)
        os.close(self.fd)
        if self.made:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)


def open_target(path: Path) -> Target:
    """Create DIR (mode 0700) or open it when it exists and is empty; never through a link."""
    path = Path(os.path.abspath(path))
    made = True
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        made = False
    except FileNotFoundError:
        raise RecdError(f"{path}: cannot create it: {path.parent} does not exist") from None
    except OSError as exc:
        raise _fail(path, "cannot create it", exc) from None
    fd = open_dir(path)
    try:
        _check_empty(path, fd, made)
    except BaseException:
        os.close(fd)
        raise
    return Target(path, fd, made)


def open_dir(path: Path) -> int:
    """DIR opened as a directory, never through a symbolic link."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise RecdError(
                f"{path}: is a symbolic link; give the directory itself (not followed)"
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise RecdError(f"{path}: exists and is not a directory") from None
        raise _fail(path, "cannot open it", exc) from None


def _check_empty(path: Path, fd: int, made: bool) -> None:
    entries = sorted(os.listdir(fd))
    if entries:
        shown = ", ".join(printable(e) for e in entries[:3])
        more = "" if len(entries) <= 3 else f" and {len(entries) - 3} more"
        raise RecdError(
            f"{path}: is not empty ({shown}{more}); give a new or empty directory "
            "(nothing was written)"
        )
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if not made and mode & 0o002:
        raise RecdError(
            f"{path}: every user may write in it (mode {mode:04o}) and could replace the "
            "backup's files; chmod o-w it or give another directory (nothing was written)"
        )


# --- recctl backup DIR ---------------------------------------------------------------------------


def _copy(src: int, dst: int, size: int, name: Path) -> str:
    """Copy ``size`` bytes from the start of ``src`` to ``dst``, synced; their SHA-256."""
    digest = hashlib.sha256()
    pos = 0
    while pos < size:
        chunk = os.pread(src, min(_CHUNK, size - pos), pos)
        if not chunk:
            raise RecdError(
                f"{name}: recd's copy ends at byte {pos}, not at {size} as recd said: the file "
                "shrank in recd's state directory while it was copied (nothing was kept)"
            )
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
        pos += len(chunk)
    os.fsync(dst)
    return digest.hexdigest()


def _create(target: Target, name: str) -> int:
    try:
        fd = os.open(name, _NEW, file_mode(name), dir_fd=target.fd)
    except FileExistsError:
        raise RecdError(
            f"{target.path / name}: appeared while the backup was written (not by recctl); "
            "nothing in it was followed or overwritten"
        ) from None
    except OSError as exc:
        raise _fail(target.path / name, "cannot create it", exc) from None
    target.created.append(name)
    os.fchmod(fd, file_mode(name))  # whatever the umask
    return fd


def _write_files(target: Target, files: list[Any], fds: tuple[int, ...]) -> list[BackupFile]:
    written = []
    for item, src in zip(files, fds, strict=True):
        name, size = item["name"], item["size"]
        if name not in (CATALOGUE, LIVE_LOG) and segment_range(str(name)) is None:
            raise kit.unexpected("backup", f"a file named {name!r}")
        if type(size) is not int or size < 0:
            raise kit.unexpected("backup", f"a size of {size!r}")
        dst = _create(target, name)
        try:
            digest = _copy(src, dst, size, target.path / name)
        except OSError as exc:
            raise _fail(target.path / name, "cannot write it", exc) from None
        finally:
            os.close(dst)
        written.append(BackupFile(name, size, digest))
    return written


def _manifest(result: dict[str, Any], files: list[BackupFile]) -> Manifest:
    audit, mark = result["audit"], result["catalogue_mark"]
    return Manifest(
        recd_version=str(result["version"]),
        created=str(result["created"]),
        state_dir=str(result["state_dir"]),
        files=tuple(files),
        entries=int(audit["entries"]),
        seq=int(audit["seq"]),
        hash=audit["hash"],
        mark_seq=mark["seq"],
        mark_hash=mark["hash"],
    )


def _more_descriptors() -> None:
    """Room for one descriptor per audit segment: the soft limit up to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cmd_backup(args: argparse.Namespace) -> ExitCode:
    """Write a consistent backup of recd's state into a new or empty DIR."""
    target = open_target(args.dir)
    _more_descriptors()
    fds: tuple[int, ...] = ()
    try:
        reply = client.call(
            args.socket, Request("backup", {"dir": str(target.path)}), timeout=None, fds=True
        )
        fds = reply.fds
        result = kit.shaped("backup", reply.unwrap(), dict)
        files = kit.rendered("backup", lambda: list(result["files"]))
        if len(files) != len(fds):
            raise kit.unexpected("backup", f"{len(fds)} descriptors for {len(files)} files")
        written = kit.rendered("backup", lambda: _write_files(target, files, fds))
        manifest = kit.rendered("backup", lambda: _manifest(result, written))
        data = manifest_json(manifest)
        _write_manifest(target, data)
    except BaseException:
        target.undo()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    os.close(target.fd)
    digest = hashlib.sha256(data).hexdigest()
    size = sum(f.size for f in written) + len(data)
    request: dict[str, object] = {
        "token": result["token"],
        "dir": str(target.path),
        "manifest_sha256": digest,
        "bytes": size,
    }
    _report(args, target.path, manifest, digest, _recorded(args, target.path, request))
    return ExitCode.OK


def _write_manifest(target: Target, data: bytes) -> None:
    """MANIFEST.json, synced, and the directory that now holds it."""
    out = _create(target, MANIFEST)
    try:
        os.write(out, data)
        os.fsync(out)
    finally:
        os.close(out)
    os.fsync(target.fd)


def _recorded(args: argparse.Namespace, path: Path, request: dict[str, object]) -> Any:
    """The audit entry recd wrote for the backup (``backup written``)."""
    try:
        return kit.ask(args, "backup written", request).unwrap()
    except RecdError as exc:
        exc.args = (
            f"{path}: the backup is complete, but recd did not record it in the audit log: {exc}",
        )
        raise


def _report(
    args: argparse.Namespace, path: Path, manifest: Manifest, digest: str, entry: Any
) -> None:
    seq = entry.get("seq") if isinstance(entry, dict) else None
    if args.json:
        kit.print_json(
            {
                "dir": str(path),
                "files": [
                    {"name": f.name, "size": f.size, "sha256": f.sha256} for f in manifest.files
                ],
                "manifest_sha256": digest,
                "entries": manifest.entries,
                "head": manifest.head,
                "catalogue_mark": {"seq": manifest.mark_seq, "hash": manifest.mark_hash},
                "audit_seq": seq,
            }
        )
        return
    for f in manifest.files:
        print(f"{f.name}  {f.size} bytes  sha256 {f.sha256}")
    print(f"{MANIFEST}  sha256 {digest}")
    files = plural(len(manifest.files) + 1, "file", "files")
    print(
        f"backup written to {printable(str(path))}: {files}, "
        f"{plural(manifest.entries, 'audit entry', 'audit entries')}, head {manifest.head}"
        f"; recorded as audit entry {seq} (backup.written)"
    )


# --- recctl backup verify DIR --------------------------------------------------------------------


def _open_in(dirfd: int, name: str) -> int:
    fd = os.open(name, _READ, dir_fd=dirfd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def _hash(dirfd: int, name: str) -> tuple[int, str] | str:
    try:
        fd = _open_in(dirfd, name)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot read it: {os_reason(exc)}"
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
            size += len(chunk)
    except OSError as exc:
        return f"cannot read it: {os_reason(exc)}"
    finally:
        os.close(fd)
    return size, digest.hexdigest()


class _Unreadable(Exception):
    """An audit file of the backup that cannot be read to its end: its name and why."""


def _chain_lines(dirfd: int, names: list[str]) -> Iterator[bytes]:
    for name in names:
        try:
            raw: IO[bytes] = os.fdopen(_open_in(dirfd, name), "rb")
            with raw, gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw as lines:
                yield from lines
        except OSError as exc:  # gzip.BadGzipFile is one
            raise _Unreadable(f"{name}: {os_reason(exc)}") from None
        except (EOFError, zlib.error) as exc:
            raise _Unreadable(f"{name}: not a whole gzip file ({exc})") from None


def _chain_problems(dirfd: int, manifest: Manifest) -> list[str]:
    names = audit_order([f.name for f in manifest.files])
    watch = [] if not manifest.mark_seq else [manifest.mark_seq]
    try:
        result = verify(_chain_lines(dirfd, names), watch)
    except _Unreadable as exc:
        return [f"{exc}: the audit chain cannot be read"]
    if not result.ok:
        return [f"the audit chain breaks at seq {result.bad_seq}: {result.reason}"]
    problems = []
    if (result.entries, result.last_hash) != (manifest.entries, manifest.hash):
        problems.append(
            f"the audit chain ends at {result.entries}:{result.last_hash or GENESIS}, the manifest "
            f"says {manifest.head}"
        )
    if manifest.mark_seq and result.watched.get(manifest.mark_seq) != manifest.mark_hash:
        problems.append(
            f"the catalogue's mark {manifest.mark_seq}:{manifest.mark_hash} is not in the chain"
        )
    return problems


def _catalogue_problems(path: Path, manifest: Manifest) -> list[str]:
    uri = f"file:{quote(str(path / CATALOGUE))}?mode=ro&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True)
        try:
            rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
            row = db.execute("SELECT value FROM meta WHERE key = 'audit_mark'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return [f"{CATALOGUE}: not a readable catalogue: {exc}"]
    if rows != ["ok"]:  # as the daemon says it (recd.adapters.sqlite.corrupt)
        found = [line for r in rows for line in r.splitlines() if not line.startswith("***")]
        first = found[0] if found else "failed"
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return [f"{CATALOGUE}: damaged (PRAGMA quick_check: {first}{more})"]
    try:
        mark = json.loads(row[0]) if row else {}
    except ValueError:
        mark = None
    if not isinstance(mark, dict):
        return [f"{CATALOGUE}: its audit mark is not readable: {printable(str(row[0]))}"]
    if (mark.get("seq"), mark.get("hash")) != (manifest.mark_seq, manifest.mark_hash):
        return [f"{CATALOGUE}: audit mark {mark}, the manifest says {manifest.mark_seq}"]
    return []


def verify_backup(path: Path) -> tuple[Manifest | None, list[str]]:
    """The backup's manifest (None if unreadable) and everything wrong with the backup."""
    dirfd = open_dir(path)
    try:
        try:
            fd = _open_in(dirfd, MANIFEST)
            with os.fdopen(fd, "rb") as file:
                manifest = parse_manifest(file.read())
        except (OSError, ValueError) as exc:
            reason = os_reason(exc)
            return None, [f"{MANIFEST}: {reason} (an interrupted backup has none)"]
        problems = [f"{MANIFEST}: {p}" for p in manifest_problems(manifest)]
        found = {f.name: _hash(dirfd, f.name) for f in manifest.files}
        problems += file_problems(manifest, found, os.listdir(dirfd))
        if not problems:
            problems += _catalogue_problems(path, manifest)
            problems += _chain_problems(dirfd, manifest)
        return manifest, problems
    finally:
        os.close(dirfd)


def cmd_backup_verify(args: argparse.Namespace) -> ExitCode:
    """Check a backup directory offline: manifest, files, catalogue, audit chain."""
    path = Path(os.path.abspath(args.dir))
    manifest, problems = verify_backup(path)
    if args.json:
        kit.print_json(
            {
                "dir": str(path),
                "ok": not problems,
                "problems": problems,
                "entries": None if manifest is None else manifest.entries,
                "head": None if manifest is None else manifest.head,
            }
        )
    elif problems:
        for problem in problems:
            print(f"recctl: {printable(f'{path}: {problem}')}", file=sys.stderr)
    else:
        assert manifest is not None
        print(
            f"backup {printable(str(path))} verified: "
            f"{plural(len(manifest.files), 'file', 'files')} as the manifest says, "
            f"catalogue ok, audit chain intact: "
            f"{plural(manifest.entries, 'entry', 'entries')}, head {manifest.head}"
        )
    return ExitCode.FAILED if problems else ExitCode.OK


def build_backup_parser(subparsers: Subparsers) -> None:
    """``recctl backup DIR`` and ``recctl backup verify DIR``."""
    backup = subparsers.add_parser(
        "backup",
        help="write a consistent backup of recd's state, or verify one",
        usage="recctl backup [--json] DIR\n       recctl backup verify [--json] DIR",
        description="Write a consistent backup of the running recd's state into DIR (new, or "
        "empty): the catalogue (SQLite's online backup), the closed audit segments, the live "
        "audit log up to a whole entry, and MANIFEST.json (each file's size and SHA-256, the "
        "audit head SEQ:HASH). recctl writes the files with your own rights; recd records "
        "backup.written in the audit log. `recctl backup verify DIR` checks a backup offline.",
        epilog=EPILOG,
    )
    backup.add_argument("dir", metavar="DIR", help="the backup directory to write (new, or empty)")
    backup.add_argument("target", nargs="?", metavar="DIR", help=argparse.SUPPRESS)
    kit.add_json_argument(backup, "the files, the head and the audit entry as JSON")
    backup.set_defaults(handler=_dispatch)


def _dispatch(args: argparse.Namespace) -> ExitCode:
    """``backup DIR`` or ``backup verify DIR`` (into a directory named verify: ``./verify``)."""
    if args.dir == "verify":
        if args.target is None:
            raise UsageError(
                "backup verify: DIR is required (to back up into a directory named verify, "
                "give ./verify)"
            )
        args.dir = Path(args.target)
        return cmd_backup_verify(args)
    if args.target is not None:
        raise UsageError(f"unrecognized arguments: {args.target} (see `recctl backup --help`)")
    args.dir = Path(args.dir)
    return cmd_backup(args)
