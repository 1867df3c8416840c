"""The state directory: created private, its files' modes tightened, the catalogue file
created 0600 before SQLite opens it, and what a catalogue file held before it was opened."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from recd.errors import ExitCode, StateError, os_reason
from recd.service import rebuild

logger = logging.getLogger(__name__)


#: The most each state file may allow, whatever the umask. The catalogue holds caller numbers
#: (in paths) and is recd's alone; group recd-admin reads the audit log (recctl audit) and the
#: certificates. A looser mode found at start is tightened, with a log line.
_DIR_MODE = 0o750
_CATALOGUE_MODE = 0o600
_SHARED_MODE = 0o640
_STATE_FILES = {
    "catalog.db": _CATALOGUE_MODE,
    "catalog.db-wal": _CATALOGUE_MODE,
    "catalog.db-shm": _CATALOGUE_MODE,
    "catalog.db-journal": _CATALOGUE_MODE,
    "audit.log": _SHARED_MODE,
}


class StateUnsafe(StateError):
    """A state directory every local user can read or enter, which recd does not own."""

    exit_code = ExitCode.CONFIG


def prepare_state(state: Path, *, catalogue_file: bool = True) -> None:
    """Create the state directory (and ``certificates/``) or make it private, and create the
    catalogue file 0600 before SQLite opens it (SQLite gives -wal and -shm the catalogue's
    mode). Raises StateUnsafe (exit 78) for a directory others can read that recd may not fix,
    StateError when it cannot be created or fixed."""
    try:
        state.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        (state / "certificates").mkdir(mode=_DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{state}: cannot create the state directory: {os_reason(exc)}") from exc
    try:
        _private_dir(state)
        _private_dir(state / "certificates")
        for name, allowed in _STATE_FILES.items():
            _tighten(state / name, allowed)
        for certificate in sorted((state / "certificates").iterdir()):
            _tighten(certificate, _SHARED_MODE)
        flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        if catalogue_file:  # not with the catalogue on PostgreSQL
            os.close(os.open(state / "catalog.db", flags, _CATALOGUE_MODE))
    except OSError as exc:
        where = exc.filename or state
        raise StateError(f"{where}: cannot make the state private: {os_reason(exc)}") from exc


def _private_dir(path: Path) -> None:
    st = os.stat(path)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o007:
        return
    if st.st_uid != os.geteuid():
        raise StateUnsafe(
            f"{path}: the state directory is mode {mode:04o}, so every local user can read "
            f"recd's catalogue, and it belongs to uid {st.st_uid}, not to recd (uid "
            f"{os.geteuid()}); run chmod o-rwx on it or set daemon.state_dir to a directory "
            "recd owns"
        )
    os.chmod(path, mode & _DIR_MODE)
    logger.warning(
        "state directory %s was mode %04o, open to every local user; set it to %04o",
        path,
        mode,
        mode & _DIR_MODE,
    )


def _tighten(path: Path, allowed: int) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISREG(st.st_mode) or not mode & ~allowed:
        return
    os.chmod(path, mode & allowed)  # a regular file just lstat-ed, in recd's own directory
    logger.warning(
        "state file %s was mode %04o, readable by others; tightened it to %04o",
        path,
        mode,
        mode & allowed,
    )


def catalogue_found(path: Path) -> str | None:
    """``MISSING`` or ``EMPTY`` (0 bytes, with no write-ahead log beside it) for a catalogue
    file that holds nothing, before recd opens (and so creates) it; None otherwise."""
    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        return rebuild.MISSING
    except OSError:
        return None  # opening it says what is wrong
    if size == 0 and not os.path.exists(f"{path}-wal"):
        return rebuild.EMPTY
    return None
