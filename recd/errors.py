"""Exit codes and the one exception hierarchy; every exception knows its exit code.

Nothing below an entry point calls ``sys.exit``: code raises one of these and
``recd.daemon.main`` or ``recd.cli.main`` turns it into ``<prog>: <message>`` on stderr and
the exception's exit code.
"""

from __future__ import annotations

import enum
import os
from typing import NamedTuple


class ExitCode(enum.IntEnum):
    """Exit statuses documented in recd(8) and recctl(8)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_ALLOWED = 3  # not found, or not allowed in this state
    PARTIAL = 4  # done in part: some erasures failed
    UNAVAILABLE = 69  # EX_UNAVAILABLE: the daemon is not running, a database unreachable
    IOERR = 74  # EX_IOERR: the audit log cannot be written
    NO_PERMISSION = 77  # EX_NOPERM
    CONFIG = 78  # EX_CONFIG: invalid configuration (RestartPreventExitStatus=78)


class RecdError(Exception):
    """Base of every error recd reports to a person; ``str(exc)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(RecdError):
    exit_code = ExitCode.USAGE


class NotFound(RecdError):
    exit_code = ExitCode.NOT_ALLOWED


class NotAllowedInState(RecdError):
    exit_code = ExitCode.NOT_ALLOWED


class Unavailable(RecdError):
    """Something recctl needs cannot be reached or is not installed: the daemon, a database,
    psycopg for ``--url``."""

    exit_code = ExitCode.UNAVAILABLE


class DaemonUnavailable(Unavailable):
    pass


class PermissionDenied(RecdError):
    exit_code = ExitCode.NO_PERMISSION


class AuditUnwritable(RecdError):
    """The audit log cannot be written (full or failing disk): nothing may be erased."""

    exit_code = ExitCode.IOERR


class InvalidValue(RecdError, ValueError):
    """A value that does not parse (a period, a time, a pattern); the caller adds file and key."""

    exit_code = ExitCode.USAGE


class ConfigProblem(NamedTuple):
    """One configuration problem: ``FILE: key.path: message``."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}: {self.key}: {self.message}"
        return f"{self.file}: {self.message}"


class ConfigInvalid(RecdError):
    """The configuration has one or more problems; all of them are listed."""

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AuditCorrupt(RecdError):
    """The audit log does not verify; the message names the first bad entry."""

    exit_code = ExitCode.FAILED


class StateError(RecdError):
    """The state directory (catalogue, audit log) cannot be used."""

    exit_code = ExitCode.FAILED


class CatalogueCorrupt(StateError):
    """The catalogue file is damaged: not a SQLite database, a malformed page or schema, a
    schema version that makes no sense, a row that does not decode. recd never repairs it in
    place: it is moved aside and the catalogue rebuilt from the sources and the audit log."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: the catalogue is corrupt: {problem}")


class CatalogueUnreachable(StateError):
    """The catalogue's database server (PostgreSQL) cannot be reached or refuses the
    connection. Nothing is erased while it lasts; the daemon retries with backoff and
    `recd --once` exits 69, so a timer tries again (issue 18)."""

    exit_code = ExitCode.UNAVAILABLE


class NodeInUse(CatalogueUnreachable):
    """Another recd connected to the shared catalogue runs as this host's ``daemon.node``.
    Two hosts with one node name would take each other's claims for their own, so this one
    waits as for an unreachable server (backoff; `recd --once` exits 69) until the name is
    free: the other stops, or the server ends the session of this host's recd before a
    crash."""


def os_reason(exc: BaseException) -> str:
    """Why an operation failed, in the words every Unix tool uses: ``No space left on device``.

    An ``OSError`` gives its own text (an adapter may word it: a swapped root says what it
    found), else its errno's; anything else (an S3 failure without an errno) its message.
    The one place an error becomes a reason, so one failure reads the same in the log, the
    audit, recctl's output and a certificate."""
    if isinstance(exc, OSError):
        if exc.strerror:
            return exc.strerror
        if exc.errno:
            return os.strerror(exc.errno)
    return str(exc)
