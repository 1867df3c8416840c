"""Composition: build the adapters a configuration needs; one-shot runs (`recd --once`).

The adapters come from the typed factories of ``recd.daemon.build``, which import each only
when a configuration uses it: mutagen only for sources with ``tags = true``, boto3 only for
S3 sources (one client per S3 source, shared by its lister and its eraser). ``run_once`` is
``recd --once``; the daemon's loop is built on the same runtime.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from recd import __version__
from recd.config.load import Config
from recd.core.audit import AuditDraft
from recd.core.model import EraseMethod
from recd.core.objects import bucket_report
from recd.core.safety import start_gap_problem
from recd.core.text import plural
from recd.core.times import format_time
from recd.daemon import build
from recd.daemon.evidence import start_evidence
from recd.daemon.writable import report_unwritable
from recd.errors import (
    AuditUnwritable,
    CatalogueCorrupt,
    ConfigInvalid,
    ExitCode,
    NotAllowedInState,
    StateError,
    os_reason,
)
from recd.ports.audit import AuditLog
from recd.ports.catalogue import Catalogue
from recd.ports.clock import Clock
from recd.ports.eraser import Eraser
from recd.ports.owners import SourceOwners
from recd.ports.source import ObjectStore, Source, TagReader
from recd.service import breakers, rebuild
from recd.service.duty import Duty
from recd.service.indexing import Indexer
from recd.service.policies import apply_policies
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport

if TYPE_CHECKING:
    from recd.adapters.local.safefs import RootPins

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the service runs on; ``close`` releases files and locks."""

    config: Config
    clock: Clock
    catalogue: Catalogue
    audit: AuditLog
    sources: dict[str, Source] = field(default_factory=dict)
    erasers: dict[str, Eraser] = field(default_factory=dict)
    stores: dict[str, ObjectStore] = field(default_factory=dict)  # S3 sources' buckets
    tag_reader: TagReader | None = None
    catalogue_found: str | None = None  # rebuild.MISSING / EMPTY: the file before it was opened
    found_details: dict[str, str] = field(default_factory=dict)  # CORRUPT: aside, error
    owners: SourceOwners = field(default_factory=build.sole_node)

    @functools.cached_property
    def duty(self) -> Duty:  # which sources this node serves now
        return Duty(self.config, self.owners)

    def close(self) -> None:
        for eraser in self.erasers.values():
            eraser.close()
        self.owners.close()
        self.audit.close()
        self.catalogue.close()


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


def prepare_state(state: Path) -> None:
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


def rebuilder(
    runtime: Runtime, progress: Callable[[str], None] = lambda status: None
) -> rebuild.Rebuild:
    """The catalogue checked against the audit log, and rebuilt or replayed from it."""
    return rebuild.Rebuild(
        runtime.config,
        runtime.catalogue,
        runtime.audit,
        runtime.clock,
        runtime.catalogue_found,
        progress,
        runtime.found_details,
    )


def open_catalogue(
    state: Path,
    now: datetime,
    found: str | None,
    corrupt: CatalogueCorrupt | None = None,
    *,
    quick_check: bool = True,
) -> tuple[Catalogue, str | None, dict[str, str]]:
    """The catalogue of ``state`` (after ``prepare_state``), what was found before it was
    opened (``found``, from ``catalogue_found``, or ``rebuild.CORRUPT``) and, for a corrupt
    one, the details of its move.

    A corrupt catalogue (found now, or ``corrupt``: found by a running recd) is moved aside as
    ``catalog.db.corrupt-<UTC time>`` with one error line, and a new one is started: the
    rebuild fills it from the sources and the audit log. Any other failure raises.
    ``quick_check``: run SQLite's ``PRAGMA quick_check`` (at start, not at a reload: up to a
    few seconds on a large catalogue, and the running daemon met every page it reads).
    """
    path = state / "catalog.db"
    if corrupt is None:
        try:
            return build.open_catalogue_file(path, quick_check=quick_check), found, {}
        except CatalogueCorrupt as exc:
            corrupt = exc
    aside = build.move_catalogue_aside(path, now)
    logger.error(
        "%s: the catalogue is corrupt (%s); moved it aside as %s and started a new one, "
        "rebuilt from the sources and the audit log before anything is erased",
        path,
        corrupt.problem,
        aside.name,
    )
    prepare_state(state)  # the new file 0600, as the first one
    details = {"aside": aside.name, "error": corrupt.problem}
    return build.open_catalogue_file(path), rebuild.CORRUPT, details


def open_runtime(
    config: Config,
    clock: Clock,
    pins: RootPins | None = None,
    corrupt: CatalogueCorrupt | None = None,
    *,
    quick_check: bool = True,
) -> Runtime:
    """Open the state directory (``prepare_state``) and build the adapters ``config`` needs.

    ``pins``: what the run knows of its directory sources' roots (``build.root_pins()``, a new
    one when None); the daemon passes the one it keeps for its life, so a reload never
    resolves or pins a root again. ``corrupt``: the catalogue was found corrupt while in use;
    it is moved aside (``open_catalogue``). Raises ConfigInvalid, touching nothing, for a
    catalogue this build cannot open (``build.catalogue_refused``).
    """
    refused = build.catalogue_refused(config)
    if refused is not None:
        raise ConfigInvalid([refused])
    if pins is None:
        pins = build.root_pins()
    state = config.daemon.state_dir
    found = catalogue_found(state / "catalog.db")
    prepare_state(state)
    # The audit log first: its lock keeps a second recd from moving a catalogue aside.
    audit = build.open_audit_log(state / "audit.log", clock.now(), config.audit)
    try:
        catalogue, found, details = open_catalogue(
            state, clock.now(), found, corrupt, quick_check=quick_check
        )
    except BaseException:
        audit.close()
        raise
    runtime = Runtime(config, clock, catalogue, audit, catalogue_found=found)
    runtime.found_details = details
    for source in config.sources:
        if not source.on_node(config.daemon.node):
            continue  # another node's: not even its root is looked at (config_warnings)
        if source.type == "s3":
            lister, eraser = build.s3_adapters(source.name, source)
            runtime.sources[source.name] = lister
            runtime.erasers[source.name] = runtime.stores[source.name] = eraser
            continue
        assert source.path is not None
        runtime.sources[source.name] = build.directory_source(
            source.name, source.path, exclude=(state,), pins=pins
        )
        runtime.erasers[source.name] = build.local_eraser(
            source.path, pins=pins, effectiveness=config.erase.method is EraseMethod.OVERWRITE
        )
    if any(s.rule.tags for s in config.sources):
        runtime.tag_reader = build.tag_reader()
    return runtime


#: What to do about a clock found far ahead at start (the daemon; `recd --once` has a flag).
CONFIRM_HINT = "check the clock, then `recctl clock confirm`"
ONCE_CONFIRM_HINT = "check the clock, then run `recd --once --confirm-clock`"
#: What to do about an audit log that does not verify or does not match the catalogue.
ACKNOWLEDGE_HINT = (
    "check it with `recctl audit verify`, then run `recctl audit acknowledge --reason TEXT`"
)
ONCE_ACKNOWLEDGE_HINT = (
    "check it with `recctl audit verify`, then run `recd --once --acknowledge-log REASON`"
)


def report_buckets(runtime: Runtime) -> None:
    """Log each S3 bucket's versioning and Object Lock default; warn where a COMPLIANCE
    default makes early deletion impossible or legal holds cannot be mirrored."""
    for s in runtime.config.sources:
        store = runtime.stores.get(s.name)
        if store is None or s.bucket is None:
            continue
        try:
            state = store.bucket_state()
        except OSError as exc:
            logger.warning(
                "source %s: cannot read the settings of bucket %s: %s (polls will tell)",
                s.name,
                s.bucket,
                os_reason(exc),
            )
            continue
        for warning, line in bucket_report(
            s.name,
            s.bucket,
            state,
            mirror_legal_holds=s.mirror_legal_holds,
            bypass_governance=s.bypass_governance,
        ):
            logger.log(logging.WARNING if warning else logging.INFO, "%s", line)


def reindex(runtime: Runtime, source: str, relpath: str) -> None:
    """Index one file again (a sweep found it changed since it was indexed)."""
    configs = {s.name: s for s in runtime.config.sources}
    found = runtime.sources.get(source)
    if found is not None and source in configs and runtime.duty.serves(source):
        Indexer(
            runtime.config, configs[source], found, runtime.catalogue, runtime.tag_reader
        ).reindex(relpath, runtime.clock.now())


def scan_all(runtime: Runtime) -> bool:
    """Index every source; False if any could not be scanned (reported, others go on)."""
    ok = True
    configs = {s.name: s for s in runtime.config.sources}
    for name in runtime.duty.served(runtime.sources):  # another node scans the others now
        found = runtime.sources[name]
        indexer = Indexer(
            runtime.config, configs[name], found, runtime.catalogue, runtime.tag_reader
        )
        try:
            indexer.run(runtime.clock.now())
        except OSError as exc:
            ok = False
            logger.error("source %s: cannot scan %s: %s", name, exc.filename, os_reason(exc))
    return ok


@dataclass(frozen=True, slots=True)
class ClockConfirmation:
    """`recd --once --confirm-clock`: who trusts the wall clock, audited if it was in doubt."""

    actor: str
    reason: str | None = None


def run_once(
    config: Config,
    clock: Clock,
    out: TextIO,
    confirm: ClockConfirmation | None = None,
    acknowledge: ClockConfirmation | None = None,
) -> ExitCode:
    """`recd --once`: recover, scan every source, sweep once, print one line per licence.

    Raises ``NotAllowedInState`` (erasing nothing) when the wall clock is more than
    ``safety.max_clock_gap`` ahead of the last audit entry and the newest recording, unless
    ``confirm`` says an administrator checked it; likewise when the audit log does not
    verify or does not hold the catalogue's mark, unless ``acknowledge`` (who, and why).
    """
    runtime = open_runtime(config, clock)
    try:
        try:
            report, scanned = _once(runtime, config, clock, confirm, acknowledge)
        except CatalogueCorrupt as exc:  # met in a row: moved aside, the run starts again
            runtime.close()
            runtime = open_runtime(config, clock, corrupt=exc)
            report, scanned = _once(runtime, config, clock, confirm, acknowledge)
    except (OSError, StateError) as exc:
        failure = runtime.audit.failure
        if failure is None:
            raise
        raise AuditUnwritable(
            f"{config.daemon.state_dir / 'audit.log'}: cannot write the audit log: "
            f"{os_reason(failure)}; stopped erasing (an erase whose entry could not be "
            "written is settled by the next run)"
        ) from exc
    finally:
        runtime.close()
    for line in summary_lines(report):
        print(line, file=out)
    if not scanned:
        return ExitCode.FAILED
    return ExitCode.PARTIAL if report.failed else ExitCode.OK


def _once(
    runtime: Runtime,
    config: Config,
    clock: Clock,
    confirm: ClockConfirmation | None,
    acknowledge: ClockConfirmation | None = None,
) -> tuple[SweepReport, bool]:
    """Everything ``run_once`` does with the state open: the sweep's report, and whether
    every source was scanned."""
    rebuilding = rebuilder(runtime)
    rebuilding.restore()  # the holds first: nothing below may erase what the log holds
    found = rebuilding.problem
    if found is not None and acknowledge is None:
        raise NotAllowedInState(f"erasing nothing: {found.text}; {ONCE_ACKNOWLEDGE_HINT}")
    now = clock.now()
    evidence = start_evidence(runtime, now)  # before config.loaded, stamped with this clock
    problem = start_gap_problem(now, evidence, config.safety.max_clock_gap)
    if problem is not None and confirm is None:
        raise NotAllowedInState(f"erasing nothing: {problem}; {ONCE_CONFIRM_HINT}")
    details = {
        "config": str(config.path),
        "version": __version__,
        "mode": str(config.daemon.mode),
        "sources": [s.name for s in config.sources],
        "licences": sorted(config.licences),
        "pid": os.getpid(),
    }
    runtime.audit.append([AuditDraft("config.loaded", str(config.path), details)], clock.now())
    if problem is not None and confirm is not None:
        details = {"wall": format_time(now), "problem": problem, "reason": confirm.reason}
        runtime.audit.append(
            [AuditDraft("clock.confirmed", "clock", details, actor=confirm.actor)], now
        )
        logger.warning("wall clock confirmed by %s: %s", confirm.actor, problem)
    rebuilding.record()
    if acknowledge is not None:
        rebuild.acknowledge(
            runtime.catalogue,
            runtime.audit,
            rebuilding.path,
            found,
            acknowledge.actor,
            acknowledge.reason or "",
            clock.now(),
        )
    Recovery(config, runtime.catalogue, runtime.audit, clock, runtime.erasers).run()
    apply_policies(config, runtime.catalogue)
    report_buckets(runtime)
    report_unwritable(runtime, {})
    scanned = scan_all(runtime)
    report = Sweeper(
        config,
        runtime.catalogue,
        runtime.audit,
        clock,
        runtime.erasers,
        reindex=functools.partial(reindex, runtime),
        serves=runtime.duty.serves,
    ).run()
    rebuilding.mark()  # every decision of this run is in the catalogue and the log
    return report, scanned


def release_breaker(config: Config, clock: Clock, licence: str, actor: str) -> ExitCode:
    """`recd release-breaker LICENCE`: the next sweep may erase what the breaker held back."""
    runtime = open_runtime(config, clock)
    try:
        breakers.release_breaker(runtime.catalogue, runtime.audit, licence, actor, clock.now())
    finally:
        runtime.close()
    return ExitCode.OK


def summary_lines(report: SweepReport) -> list[str]:
    """One line per licence: recordings, due, erased, kept and why."""
    lines = []
    for label in sorted(report.licences):
        t = report.licences[label]
        parts = [plural(t.recordings, "recording"), f"{t.due} due"]
        if report.dry_run:
            parts.append(f"{t.would_erase} would be erased (dry-run)")
        else:
            parts.append(f"{t.erased} erased")
        if t.failed:
            parts.append(f"{t.failed} failed")
        kept = sum(t.kept.values())
        if kept:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(t.kept.items()))
            parts.append(f"{kept} kept ({why})")
        if t.breaker:
            parts.append("BREAKER TRIPPED")
        lines.append(f"{label}: " + ", ".join(parts))
    if not lines:
        lines.append("no recordings")
    return lines
