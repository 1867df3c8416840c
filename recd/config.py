"""recd.toml + licences.d/*.toml -> a frozen Config; every problem named with file and key.

Loading has no side effects: it reads files (and resolves symlinks in source roots) and returns a
value or raises ConfigInvalid with every problem found, never just the first, so SIGHUP can
validate a new configuration and keep the old one on failure. Unknown keys are errors. Periods and
durations are parsed here, so nothing downstream parses strings. A Config that loads names no
source root that is, contains or lies inside a system directory or the state directory, and no
two sources overlap: recd must never be pointed at something it could wrongly erase.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta, tzinfo
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from recd.core.classify import DEFAULT_TAG_NAMES, ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, ErasePattern, Mode, OnIneffective, UnclassifiedPolicy
from recd.core.periods import Period, parse_duration, parse_period
from recd.core.safety import SafetySettings
from recd.errors import ConfigInvalid, ConfigProblem, InvalidValue

DEFAULT_CONFIG = Path("/etc/recd/recd.toml")
_DEFAULT_POLL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    state_dir: Path = Path("/var/lib/recd")
    socket: Path = Path("/run/recd/recd.sock")
    admin_group: str = "recd-admin"
    mode: Mode = Mode.ENFORCE
    rescan: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    host: str = "127.0.0.1"
    port: int = 9464
    per_licence: bool = True


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    default: Period = field(default_factory=lambda: Period(seconds=30 * 86400, text="30d"))
    unclassified: UnclassifiedPolicy = UnclassifiedPolicy.KEEP


@dataclass(frozen=True, slots=True)
class HoldSettings:
    release_grace: timedelta = timedelta(days=7)


SourceType = Literal["directory", "s3"]
Verification = Literal["two-person", "signature"]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[[source]]`. Directory sources have ``path``; S3 sources have ``bucket`` etc."""

    name: str
    type: SourceType
    rule: ClassifyRule
    path: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    poll: timedelta = _DEFAULT_POLL
    mirror_legal_holds: bool = False


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    email: str
    public_key: bytes  # 32 raw Ed25519 bytes


@dataclass(frozen=True, slots=True)
class Licence:
    id: str
    name: str
    retention: Period
    file: Path
    verification: Verification = "two-person"
    agents: tuple[Agent, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    erase: EraseSettings = field(default_factory=EraseSettings)
    holds: HoldSettings = field(default_factory=HoldSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    sources: tuple[SourceConfig, ...] = ()
    licences: Mapping[str, Licence] = field(default_factory=dict)

    def period_for(self, licence: str | None) -> Period | None:
        """The retention period of ``licence``; None for an unclassified recording that is kept."""
        if licence is None:
            if self.retention.unclassified is UnclassifiedPolicy.KEEP:
                return None
            return self.retention.default
        found = self.licences.get(licence)
        return found.retention if found is not None else self.retention.default


def load(path: Path = DEFAULT_CONFIG, *, licences_dir: Path | None = None) -> Config:
    """Read ``path`` and every ``*.toml`` in ``licences_dir`` (default: ``licences.d`` beside it).

    A missing licences directory means no licences. Raises ConfigInvalid listing every problem.
    """
    problems: list[ConfigProblem] = []
    data = _read_toml(path, problems)
    config = _config(path, _Table(str(path), "", data or {}, problems))
    if licences_dir is None:
        licences_dir = path.parent / "licences.d"
    licences = _licences(licences_dir, problems)
    if problems:
        raise ConfigInvalid(problems)
    return replace(config, licences=MappingProxyType(licences))


def config_warnings(config: Config) -> list[str]:
    """Lines to log at start and print from check-config: valid, but probably not meant."""
    warnings: list[str] = []
    if config.daemon.mode is Mode.DRY_RUN:
        warnings.append('daemon.mode is "dry-run": recordings that are due are logged, not erased')
    if not config.sources:
        warnings.append("no [[source]] is configured: recd has nothing to watch")
    default = config.retention.default
    if default.never:
        warnings.append(
            "retention.default is never; recordings of licences without a file are kept "
            "until a request or a policy change"
        )
    for source in config.sources:
        fixed = source.rule.licence
        if fixed is not None and fixed not in config.licences:
            warnings.append(
                f'source "{source.name}": licence "{fixed}" has no file in licences.d; '
                f"its recordings get retention.default ({default.text})"
            )
    for licence in sorted(config.licences.values(), key=lambda lic: lic.id):
        if licence.retention.never:
            warnings.append(
                f'licence "{licence.id}" ({licence.file}): retention is never; its recordings '
                "are kept until a request or a policy change"
            )
    return warnings


# --- reading TOML tables, one problem per bad value ----------------------------------------------

_T = TypeVar("_T")
_S = TypeVar("_S", bound=str)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int to isinstance
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (dict, "table"),
    (list, "array"),
)


def _type_name(value: object) -> str:
    for kind, name in _TOML_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # datetime, date or time


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Table:
    """One TOML table being read: typed values out, a problem for each bad one.

    Every key a reader asks for, present or not, becomes known; ``finish`` then reports every
    other key as unknown, so the readers below are the one list of valid keys.
    """

    def __init__(
        self, file: str, where: str, data: Mapping[str, object], problems: list[ConfigProblem]
    ) -> None:
        self.file = file
        self.where = where
        self.data = data
        self.problems = problems
        self.known: set[str] = set()

    def key(self, name: str) -> str:
        bare = name if _BARE_KEY.fullmatch(name) else _quote(name)
        return f"{self.where}.{bare}" if self.where else bare

    def report(self, name: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, self.key(name), message))

    def report_item(self, name: str, index: int, message: str) -> None:
        """A problem with element ``index`` of the array ``name``."""
        self.problems.append(ConfigProblem(self.file, f"{self.key(name)}[{index}]", message))

    def finish(self) -> None:
        for name in self.data:
            if name not in self.known:
                close = difflib.get_close_matches(name, sorted(self.known), n=1)
                hint = f" (did you mean {_quote(close[0])}?)" if close else ""
                self.report(name, f"unknown key{hint}")

    def skip(self, names: Collection[str]) -> None:
        """Accept ``names`` as known without reading them (the source type is unknown)."""
        self.known.update(names)

    def value(
        self, name: str, kind: type[_T], expected: str, *, required: bool = False
    ) -> _T | None:
        """The value of ``name`` if present and a ``kind``; None (and a problem) otherwise."""
        self.known.add(name)
        raw = self.data.get(name)  # TOML has no null: None means absent
        if raw is None:
            if required:
                self.report(name, "required key is missing")
            return None
        if not isinstance(raw, kind) or (isinstance(raw, bool) and kind is not bool):
            self.report(name, f"expected {expected}, got {_type_name(raw)}")
            return None
        return raw

    def string(self, name: str, *, required: bool = False) -> str | None:
        text = self.value(name, str, "a string", required=required)
        if text is not None and not text.strip():
            self.report(name, "must not be empty")
            return None
        return text

    def text(self, name: str, default: str) -> str:
        text = self.string(name)
        return default if text is None else text

    def flag(self, name: str, default: bool) -> bool:
        value = self.value(name, bool, "a boolean (true or false)")
        return default if value is None else value

    def number(self, name: str) -> float | None:
        self.known.add(name)
        raw = self.data.get(name)
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.report(name, f"expected a number, got {_type_name(raw)}")
            return None
        return float(raw)

    def choice(self, name: str, allowed: Sequence[_S], default: _S) -> _S:
        value = self.optional_choice(name, allowed)
        return default if value is None else value

    def optional_choice(
        self, name: str, allowed: Sequence[_S], *, required: bool = False
    ) -> _S | None:
        text = self.value(name, str, "a string", required=required)
        if text is None:
            return None
        for option in allowed:
            if option == text:
                return option
        self.report(name, f"{_quote(text)} is not one of {', '.join(map(_quote, allowed))}")
        return None

    def duration(self, name: str, default: timedelta, *, positive: bool = False) -> timedelta:
        text = self.value(name, str, 'a string such as "30s", "2m", "6h" or "7d"')
        if text is None:
            return default
        try:
            value = parse_duration(text)
        except InvalidValue as exc:
            self.report(name, str(exc))
            return default
        if positive and not value:
            self.report(name, "must be longer than 0s")
            return default
        return value

    def period(self, name: str, *, required: bool = False) -> Period | None:
        text = self.value(name, str, 'a string such as "30d" or "3mo"', required=required)
        if text is None:
            return None
        try:
            return parse_period(text)
        except InvalidValue as exc:
            self.report(name, str(exc))
            return None

    def abspath(self, name: str, *, required: bool = False) -> Path | None:
        text = self.string(name, required=required)
        if text is None:
            return None
        if not text.startswith("/"):
            self.report(name, f"must be an absolute path, got {_quote(text)}")
            return None
        return Path(text)

    def table(self, name: str) -> _Table:
        """The sub-table ``name``; an empty one when absent or not a table (reported)."""
        data = self.value(name, dict, "a table")
        return _Table(self.file, self.key(name), data or {}, self.problems)

    def tables(self, name: str) -> list[_Table]:
        """The array of tables ``[[name]]``; bad elements are reported and left out."""
        items = self.value(name, list, f"an array of tables ([[{name}]])")
        found: list[_Table] = []
        for index, item in enumerate(items or ()):
            if isinstance(item, dict):
                found.append(_Table(self.file, f"{self.key(name)}[{index}]", item, self.problems))
            else:
                self.report_item(name, index, f"expected a table, got {_type_name(item)}")
        return found


def _read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, object] | None:
    def report(message: str) -> None:
        problems.append(ConfigProblem(str(path), "", message))

    try:
        raw = path.read_bytes()
    except OSError as exc:
        report(f"cannot read: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report(f"not UTF-8 text ({exc.reason} at offset {exc.start})")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        report(f"invalid TOML: {exc}")
        return None


# --- recd.toml ----------------------------------------------------------------------------------


def _config(path: Path, top: _Table) -> Config:
    daemon = _daemon(top.table("daemon"))
    config = Config(
        path=path,
        daemon=daemon,
        metrics=_metrics(top.table("metrics")),
        retention=_retention(top.table("retention")),
        erase=_erase(top.table("erase")),
        holds=_holds(top.table("holds")),
        safety=_safety(top.table("safety")),
        sources=_sources(top.tables("source"), daemon.state_dir),
    )
    top.finish()
    return config


def _daemon(t: _Table) -> DaemonSettings:
    d = DaemonSettings()
    settings = DaemonSettings(
        state_dir=t.abspath("state_dir") or d.state_dir,
        socket=t.abspath("socket") or d.socket,
        admin_group=t.text("admin_group", d.admin_group),
        mode=t.choice("mode", tuple(Mode), d.mode),
        rescan=t.duration("rescan", d.rescan, positive=True),
    )
    t.finish()
    return settings


def _metrics(t: _Table) -> MetricsSettings:
    d = MetricsSettings()
    host, port = d.host, d.port
    listen = t.string("listen")
    if listen is not None:
        try:
            host, port = _host_port(listen)
        except InvalidValue as exc:
            t.report("listen", str(exc))
    settings = MetricsSettings(host, port, t.flag("per_licence", d.per_licence))
    t.finish()
    return settings


def _host_port(text: str) -> tuple[str, int]:
    usage = f'expected "host:port", such as "127.0.0.1:9464" or "[::1]:9464", got {_quote(text)}'
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise InvalidValue(usage)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidValue(f"{_quote(host)} is not an IPv6 address") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon or not host or any(c.isspace() for c in host):
            raise InvalidValue(usage)
        if ":" in host:
            raise InvalidValue('write an IPv6 address in brackets, such as "[::1]:9464"')
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        raise InvalidValue(f"port must be a number from 0 to 65535, got {_quote(port)}")
    return host, int(port)


def _retention(t: _Table) -> RetentionSettings:
    d = RetentionSettings()
    settings = RetentionSettings(
        default=t.period("default") or d.default,
        unclassified=t.choice("unclassified", tuple(UnclassifiedPolicy), d.unclassified),
    )
    t.finish()
    return settings


def _erase(t: _Table) -> EraseSettings:
    d = EraseSettings()
    settings = EraseSettings(
        # s3-delete is what S3 sources do; it is not an erase method an operator chooses.
        method=t.choice("method", (EraseMethod.OVERWRITE, EraseMethod.UNLINK), d.method),
        pattern=t.choice("pattern", tuple(ErasePattern), d.pattern),
        verify=t.flag("verify", d.verify),
        settle=t.duration("settle", d.settle),
        on_ineffective=t.choice("on_ineffective", tuple(OnIneffective), d.on_ineffective),
    )
    t.finish()
    return settings


def _holds(t: _Table) -> HoldSettings:
    # 0s is allowed: SPEC section 5 says it deletes a released recording at the next sweep.
    settings = HoldSettings(release_grace=t.duration("release_grace", HoldSettings().release_grace))
    t.finish()
    return settings


def _safety(t: _Table) -> SafetySettings:
    d = SafetySettings()
    fraction = t.number("max_due_fraction")
    if fraction is not None and not 0 < fraction <= 1:
        t.report("max_due_fraction", f"must be more than 0 and at most 1, got {fraction:g}")
        fraction = None
    count = t.value("min_breaker_count", int, "an integer")
    if count is not None and count < 0:
        t.report("min_breaker_count", f"must be 0 or more, got {count}")
        count = None
    settings = SafetySettings(
        max_due_fraction=d.max_due_fraction if fraction is None else fraction,
        min_breaker_count=d.min_breaker_count if count is None else count,
        max_clock_jump=t.duration("max_clock_jump", d.max_clock_jump, positive=True),
    )
    t.finish()
    return settings


# --- [[source]] ---------------------------------------------------------------------------------

_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOURCE_TYPES: tuple[SourceType, ...] = ("directory", "s3")
_DIRECTORY_KEYS = ("path",)
_S3_KEYS = ("bucket", "prefix", "endpoint_url", "region", "poll", "metadata", "mirror_legal_holds")
_GROUPS = ("licence", "started", "call_id", "extension", "caller", "callee")
_STRPTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")


def _sources(tables: list[_Table], state_dir: Path) -> tuple[SourceConfig, ...]:
    sources: list[tuple[_Table, SourceConfig]] = []
    names: dict[str, str] = {}
    for t in tables:
        source = _source(t)
        if source is None:
            continue
        if source.name in names:
            t.report("name", f"{_quote(source.name)} is already the name of {names[source.name]}")
            continue
        names[source.name] = t.where
        sources.append((t, source))
    _check_roots(sources, state_dir)
    _check_buckets(sources)
    return tuple(source for _, source in sources)


def _source(t: _Table) -> SourceConfig | None:
    name = t.string("name", required=True)
    if name is not None and not _SOURCE_NAME.fullmatch(name):
        t.report(
            "name",
            f"{_quote(name)} is not a valid source name (use letters, digits, "
            '"_", "." and "-", starting with a letter or digit)',
        )
        name = None
    kind = t.optional_choice("type", _SOURCE_TYPES, required=True)
    rule = _rule(t, metadata=t.flag("metadata", False) if kind == "s3" else False)
    source: SourceConfig | None = None
    if kind == "directory":
        _refuse(t, _S3_KEYS, "s3", kind)
        path = t.abspath("path", required=True)
        if name is not None and path is not None:
            source = SourceConfig(name=name, type=kind, rule=rule, path=path)
    elif kind == "s3":
        _refuse(t, _DIRECTORY_KEYS, "directory", kind)
        source = _s3_source(t, name, rule)
    else:
        t.skip(_DIRECTORY_KEYS + _S3_KEYS)
    t.finish()
    return source


def _refuse(t: _Table, names: Sequence[str], owner: str, kind: str) -> None:
    for name in names:
        t.skip((name,))
        if name in t.data:
            t.report(name, f"only for {_quote(owner)} sources; this source is {_quote(kind)}")


def _s3_source(t: _Table, name: str | None, rule: ClassifyRule) -> SourceConfig | None:
    bucket = t.string("bucket", required=True)
    prefix = t.value("prefix", str, "a string") or ""
    endpoint_url = t.string("endpoint_url")
    if endpoint_url is not None:
        url = urlsplit(endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            t.report(
                "endpoint_url", f"expected an http:// or https:// URL, got {_quote(endpoint_url)}"
            )
    region = t.string("region")
    poll = t.duration("poll", _DEFAULT_POLL, positive=True)
    mirror = t.flag("mirror_legal_holds", False)
    if name is None or bucket is None:
        return None
    return SourceConfig(
        name=name,
        type="s3",
        rule=rule,
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint_url,
        region=region,
        poll=poll,
        mirror_legal_holds=mirror,
    )


def _rule(t: _Table, *, metadata: bool) -> ClassifyRule:
    licence = t.string("licence")
    if licence is not None and (problem := _licence_id_problem(licence)):
        t.report("licence", problem)
    pattern = _pattern(t)
    started_format = t.string("started_format")
    if started_format is not None:
        # A pattern that does not compile is reported already; its groups are unknown.
        if pattern is not None or "pattern" not in t.data:
            _check_started_group(t, pattern)
        _check_started_format(t, started_format)
    return ClassifyRule(
        timezone=_timezone(t),
        licence=licence,
        pattern=pattern,
        started_format=started_format,
        tags=t.flag("tags", False),
        tag_names=_tag_names(t.table("tag_names")),
        metadata=metadata,
    )


def _pattern(t: _Table) -> re.Pattern[str] | None:
    text = t.value("pattern", str, "a string")
    if text is None:
        return None
    try:
        pattern = re.compile(text)
    except re.error as exc:
        t.report("pattern", f"not a valid regular expression: {exc}")
        return None
    for group in pattern.groupindex:
        if group not in _GROUPS:
            t.report(
                "pattern",
                f"unknown group {_quote(group)} (groups may be named {', '.join(_GROUPS)})",
            )
    return pattern


def _check_started_group(t: _Table, pattern: re.Pattern[str] | None) -> None:
    if pattern is None or "started" not in pattern.groupindex:
        t.report("started_format", "needs a pattern with a (?P<started>...) group")


def _check_started_format(t: _Table, text: str) -> None:
    for directive in re.finditer(r"%(.?)", text, re.DOTALL):
        if not directive[1]:
            t.report("started_format", f'{_quote(text)} ends with a lone "%"')
        elif directive[1] not in _STRPTIME_DIRECTIVES:
            t.report(
                "started_format",
                f"unknown directive {_quote(directive[0])} in {_quote(text)} "
                "(see strptime in the Python documentation)",
            )


def _timezone(t: _Table) -> tzinfo:
    name = t.string("timezone")
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
    hint = f"did you mean {_quote(close[0])}?" if close else 'such as "Europe/London" or "UTC"'
    t.report("timezone", f"unknown time zone {_quote(name)} ({hint})")
    return UTC


def _tag_names(t: _Table) -> Mapping[str, tuple[str, ...]]:
    given: dict[str, tuple[str, ...]] = {}
    for field_name, raw in t.data.items():
        t.skip((field_name,))
        if field_name not in DEFAULT_TAG_NAMES:
            t.report(
                field_name,
                f"unknown field (tag names can be set for {', '.join(DEFAULT_TAG_NAMES)})",
            )
            continue
        names = _tag_name_list(t, field_name, raw)
        if names:
            given[field_name] = names
    if not given:
        return DEFAULT_TAG_NAMES
    return MappingProxyType({**DEFAULT_TAG_NAMES, **given})


def _tag_name_list(t: _Table, field_name: str, raw: object) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        t.report(field_name, f"expected a string or an array of strings, got {_type_name(raw)}")
        return ()
    if not items:
        t.report(field_name, "must name at least one tag")
    names: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            shown = "an empty string" if isinstance(item, str) else _type_name(item)
            if isinstance(raw, str):
                t.report(field_name, f"expected a tag name, got {shown}")
            else:
                t.report_item(field_name, index, f"expected a tag name, got {shown}")
            continue
        names.append(item.strip().lower())
    return tuple(names)


# --- where a source may be ----------------------------------------------------------------------

_ROOT = PurePosixPath("/")
#: Trees recd never erases in, at any depth.
_SYSTEM_TREES = tuple(
    PurePosixPath(p)
    for p in (
        "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
        "/boot", "/dev", "/proc", "/sys", "/run",
    )
)  # fmt: skip
#: Directories that hold recordings only somewhere below them, never as a whole.
_WHOLE_TREES = frozenset(
    PurePosixPath(p)
    for p in (
        "/var", "/var/lib", "/var/spool", "/home", "/root", "/srv", "/opt", "/mnt",
        "/media", "/tmp", "/var/tmp",  # noqa: S108 (refused as roots, not used)
    )
)  # fmt: skip


def _inside(inner: PurePosixPath, outer: PurePosixPath) -> bool:
    return outer in inner.parents


def _forbidden(root: PurePosixPath, state_dirs: Collection[PurePosixPath]) -> str | None:
    """Why no source may have ``root`` as its root, or None."""
    return _system_problem(root) or _state_problem(root, state_dirs)


def _system_problem(root: PurePosixPath) -> str | None:
    refuse = "recd refuses to erase there"
    if root == _ROOT:
        return f"is the root directory; {refuse}"
    for tree in _SYSTEM_TREES:
        if root == tree:
            return f"is the system directory {tree}; {refuse}"
        if _inside(root, tree):
            return f"is inside the system directory {tree}; {refuse}"
    if root in _WHOLE_TREES:
        return f"is the whole of {root}; name the directory that holds the recordings"
    return None


def _state_problem(root: PurePosixPath, state_dirs: Collection[PurePosixPath]) -> str | None:
    own_state = "recd refuses to erase its own state"
    for state in state_dirs:
        if root == state:
            return f"is daemon.state_dir; {own_state}"
        if _inside(root, state):
            return f"is inside daemon.state_dir ({_quote(str(state))}); {own_state}"
        if _inside(state, root):
            return f"contains daemon.state_dir ({_quote(str(state))}); {own_state}"
    return None


def _check_roots(sources: list[tuple[_Table, SourceConfig]], state_dir: Path) -> None:
    # Both the written path and its symlink-free form are checked: a symlink must not lead
    # a source into /etc, and a written path inside /etc is refused wherever it leads.
    state_dirs = tuple(
        dict.fromkeys((PurePosixPath(os.path.normpath(state_dir)), _real(state_dir)))
    )
    seen: list[tuple[_Table, SourceConfig, PurePosixPath]] = []
    for t, source in sources:
        if source.path is None:
            continue
        written, real = PurePosixPath(os.path.normpath(source.path)), _real(source.path)
        shown = _quote(str(source.path))
        if reason := _forbidden(written, state_dirs):
            t.report("path", f"{shown} {reason}")
        elif reason := _forbidden(real, state_dirs):
            t.report("path", f"{shown} resolves to {_quote(str(real))}, which {reason}")
        for other_t, other, other_real in seen:
            if overlap := _overlap(real, other_real):
                t.report(
                    "path",
                    f'{shown} {overlap} the root of source "{other.name}" '
                    f"({other_t.where}, {_quote(str(other.path))}); two sources must not overlap",
                )
        seen.append((t, source, real))


def _real(path: Path) -> PurePosixPath:
    return PurePosixPath(os.path.realpath(path))


def _overlap(root: PurePosixPath, other: PurePosixPath) -> str | None:
    if root == other:
        return "is the same directory as"
    if _inside(root, other):
        return "is inside"
    if _inside(other, root):
        return "contains"
    return None


def _check_buckets(sources: list[tuple[_Table, SourceConfig]]) -> None:
    seen: list[tuple[_Table, SourceConfig]] = []
    for t, source in sources:
        if source.bucket is None:
            continue
        for other_t, other in seen:
            same_bucket = (other.endpoint_url, other.bucket) == (source.endpoint_url, source.bucket)
            if same_bucket and (
                source.prefix.startswith(other.prefix) or other.prefix.startswith(source.prefix)
            ):
                t.report(
                    "prefix",
                    f"bucket {_quote(source.bucket)} prefix {_quote(source.prefix)} overlaps "
                    f'source "{other.name}" ({other_t.where}, prefix {_quote(other.prefix)}); '
                    "two sources must not overlap",
                )
        seen.append((t, source))


# --- licences.d ---------------------------------------------------------------------------------

_VERIFICATIONS: tuple[Verification, ...] = ("two-person", "signature")
_KEY_PREFIX = "ed25519:"


def _licence_id_problem(text: str) -> str | None:
    if any(c.isspace() for c in text) or "/" in text:
        return f'must not contain whitespace or "/", got {_quote(text)}'
    return None


def _licences(directory: Path, problems: list[ConfigProblem]) -> dict[str, Licence]:
    try:
        # Dot files are editor droppings (.acme.toml.swp, emacs .#acme.toml), never licences.
        files = sorted(
            p for p in directory.iterdir() if p.suffix == ".toml" and not p.name.startswith(".")
        )
    except FileNotFoundError:
        return {}
    except OSError as exc:
        problems.append(ConfigProblem(str(directory), "", f"cannot read: {exc.strerror or exc}"))
        return {}
    licences: dict[str, Licence] = {}
    for file in files:
        licence = _licence(file, problems)
        if licence is None:
            continue
        if licence.id in licences:
            problems.append(
                ConfigProblem(
                    str(file),
                    "id",
                    f"licence {_quote(licence.id)} is already defined in "
                    f"{licences[licence.id].file}",
                )
            )
            continue
        licences[licence.id] = licence
    return licences


def _licence(file: Path, problems: list[ConfigProblem]) -> Licence | None:
    data = _read_toml(file, problems)
    if data is None:
        return None
    t = _Table(str(file), "", data, problems)
    licence_id = t.string("id", required=True)
    if licence_id is not None and (problem := _licence_id_problem(licence_id)):
        t.report("id", problem)
        licence_id = None
    name = t.string("name", required=True)
    retention = t.period("retention", required=True)
    verification = t.choice("verification", _VERIFICATIONS, "two-person")
    agent_tables = t.tables("agent")
    agents = [agent for agent in map(_agent, agent_tables) if agent is not None]
    if verification == "signature" and not agent_tables:
        t.report("verification", '"signature" needs at least one [[agent]] with a public_key')
    t.finish()
    if licence_id is None or name is None or retention is None:
        return None
    return Licence(licence_id, name, retention, file, verification, tuple(agents))


def _agent(t: _Table) -> Agent | None:
    name = t.string("name", required=True)
    email = t.string("email", required=True)
    text = t.string("public_key", required=True)
    key = None
    if text is not None:
        try:
            key = _public_key(text)
        except InvalidValue as exc:
            t.report("public_key", str(exc))
    t.finish()
    if name is None or email is None or key is None:
        return None
    return Agent(name, email, key)


def _public_key(text: str) -> bytes:
    if not text.startswith(_KEY_PREFIX):
        raise InvalidValue(
            f'expected "ed25519:" and the base64 of the 32-byte public key, got {_quote(text)}'
        )
    try:
        key = base64.b64decode(text.removeprefix(_KEY_PREFIX), validate=True)
    except binascii.Error:
        raise InvalidValue('not valid base64 after "ed25519:"') from None
    if len(key) != 32:
        raise InvalidValue(f"an Ed25519 public key is 32 bytes; this one is {len(key)}")
    return key
