"""Composition: build the adapters a configuration needs; one-shot runs (`recd --once`).

Adapters are named by "module:attribute" strings and imported only when a configuration uses
them (uvicorn's lazy tables), so mutagen is loaded only for sources with ``tags = true`` and
boto3 only for S3 sources (one client per S3 source, shared by its lister and its eraser).
``run_once`` is ``recd --once``; the daemon's loop is built on the same runtime.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from recd import __version__
from recd.config import Config
from recd.core.audit import AuditDraft
from recd.core.objects import bucket_report
from recd.errors import AuditUnwritable, ExitCode, StateError
from recd.ports import AuditLog, Catalogue, Clock, Eraser, ObjectStore, Source, TagReader
from recd.service import breakers
from recd.service.indexing import Indexer
from recd.service.policies import apply_policies
from recd.service.recovery import Recovery
from recd.service.sweep import Sweeper, SweepReport

logger = logging.getLogger(__name__)

ADAPTERS = {
    "catalogue.sqlite": "recd.adapters.sqlite:SqliteCatalogue",
    "reader.sqlite": "recd.adapters.sqlitereader:SqliteReader",
    "watch.inotify": "recd.adapters.watch:TreeWatcher",
    "audit.file": "recd.adapters.auditlog:FileAuditLog",
    "source.directory": "recd.adapters.directory:DirectorySource",
    "eraser.directory": "recd.adapters.erase:LocalEraser",
    "tags.mutagen": "recd.adapters.tags:MutagenTagReader",
    "clock.system": "recd.adapters.clock:SystemClock",
    "client.s3": "recd.adapters.s3:make_client",
    "source.s3": "recd.adapters.s3:S3Source",
    "eraser.s3": "recd.adapters.s3:S3Eraser",
}


def adapter(kind: str) -> Callable[..., Any]:
    module, _, attr = ADAPTERS[kind].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


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

    def close(self) -> None:
        for eraser in self.erasers.values():
            getattr(eraser, "close", lambda: None)()
        getattr(self.audit, "close", lambda: None)()
        getattr(self.catalogue, "close", lambda: None)()


def open_runtime(config: Config, clock: Clock) -> Runtime:
    """Open the state directory and build the adapters ``config`` needs."""
    state = config.daemon.state_dir
    try:
        state.mkdir(mode=0o750, parents=True, exist_ok=True)
        (state / "certificates").mkdir(mode=0o750, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{state}: cannot create the state directory: {exc.strerror}") from exc
    catalogue = adapter("catalogue.sqlite")(state / "catalog.db")
    try:
        audit = adapter("audit.file").open(state / "audit.log", clock.now())  # type: ignore[attr-defined]
    except BaseException:
        catalogue.close()
        raise
    runtime = Runtime(config, clock, catalogue, audit)
    for source in config.sources:
        if source.type == "s3":
            client = adapter("client.s3")(source)
            runtime.sources[source.name] = adapter("source.s3")(source.name, source, client)
            eraser = adapter("eraser.s3")(source.name, source, client)
            runtime.erasers[source.name] = runtime.stores[source.name] = eraser
            continue
        assert source.path is not None
        runtime.sources[source.name] = adapter("source.directory")(
            source.name, source.path, exclude=(state,)
        )
        runtime.erasers[source.name] = adapter("eraser.directory")(source.path)
    if any(s.rule.tags for s in config.sources):
        runtime.tag_reader = adapter("tags.mutagen")()
    return runtime


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
                s.name, s.bucket, exc.strerror or exc,
            )  # fmt: skip
            continue
        for warning, line in bucket_report(
            s.name, s.bucket, state, mirror_legal_holds=s.mirror_legal_holds,
            bypass_governance=s.bypass_governance,
        ):  # fmt: skip
            logger.log(logging.WARNING if warning else logging.INFO, "%s", line)


def scan_all(runtime: Runtime) -> bool:
    """Index every source; False if any could not be scanned (reported, others go on)."""
    ok = True
    configs = {s.name: s for s in runtime.config.sources}
    for name, source in runtime.sources.items():
        indexer = Indexer(
            runtime.config, configs[name], source, runtime.catalogue, runtime.tag_reader
        )
        try:
            indexer.run(runtime.clock.now())
        except OSError as exc:
            ok = False
            logger.error("source %s: cannot scan %s: %s", name, exc.filename, exc.strerror)
    return ok


def run_once(config: Config, clock: Clock, out: TextIO) -> ExitCode:
    """`recd --once`: recover, scan every source, sweep once, print one line per licence."""
    runtime = open_runtime(config, clock)
    try:
        report, scanned = _once(runtime, config, clock)
    except (OSError, StateError) as exc:
        failure = getattr(runtime.audit, "failure", None)
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


def os_reason(exc: BaseException) -> str:
    """``No space left on device (ENOSPC)`` for an OSError, else the exception's text."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{os.strerror(exc.errno)} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


def _once(runtime: Runtime, config: Config, clock: Clock) -> tuple[SweepReport, bool]:
    """Everything ``run_once`` does with the state open: the sweep's report, and whether
    every source was scanned."""
    details = {
        "config": str(config.path),
        "version": __version__,
        "mode": str(config.daemon.mode),
        "sources": [s.name for s in config.sources],
        "licences": sorted(config.licences),
        "pid": os.getpid(),
    }
    runtime.audit.append([AuditDraft("config.loaded", str(config.path), details)], clock.now())
    Recovery(config, runtime.catalogue, runtime.audit, clock, runtime.erasers).run()
    apply_policies(config, runtime.catalogue)
    report_buckets(runtime)
    scanned = scan_all(runtime)
    report = Sweeper(config, runtime.catalogue, runtime.audit, clock, runtime.erasers).run()
    return report, scanned


def release_breaker(config: Config, clock: Clock, licence: str, actor: str) -> ExitCode:
    """`recd release-breaker LICENCE`: the next sweep may erase what the breaker held back."""
    runtime = open_runtime(config, clock)
    try:
        breakers.release_breaker(runtime.catalogue, runtime.audit, licence, actor, clock.now())
    finally:
        runtime.close()
    return ExitCode.OK


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
