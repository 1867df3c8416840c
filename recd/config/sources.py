"""The ``[[source]]`` tables of recd.toml: each one read, its classification rule checked, and
no root recd could wrongly erase in.

A source root may not be, contain or lie inside a system directory or the state directory, and no
two sources may overlap (the same directory or bucket prefix, or one inside the other), unless
two directory sources are served by different nodes (their ``nodes`` share no name). Symlinks
in roots are resolved for these checks, and the state directory is also compared by identity
(device and inode), which a bind mount does not change: that is the only file system access here.

An S3 source needs boto3, an optional dependency (``pip install 'recd[s3]'``): whether it is
installed is checked here, without importing it, so a missing one is a configuration problem
(exit 78, named by the source) rather than a traceback when the adapter is built.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, tzinfo
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from recd.config.catalogue import NODE, NODE_RULE
from recd.config.licences import licence_id_problem
from recd.config.patterns import LinearPattern, compile_pattern
from recd.config.tables import Table, quote, type_name
from recd.config.types import DEFAULT_POLL, SourceConfig, SourceType
from recd.core.classify import DEFAULT_TAG_NAMES, ClassifyRule
from recd.errors import ConfigProblem, InvalidValue

_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOURCE_TYPES: tuple[SourceType, ...] = ("directory", "s3")
#: What ``type = "s3"`` needs beyond recd's own dependencies: the ``recd[s3]`` extra.
S3_MODULES = ("boto3", "botocore")
NEEDS_BOTO3 = "type \"s3\" needs boto3: pip install 'recd[s3]' (the Debian package includes it)"
_DIRECTORY_KEYS = ("path", "shared")
_S3_KEYS = (
    "bucket",
    "prefix",
    "endpoint_url",
    "region",
    "poll",
    "metadata",
    "mirror_legal_holds",
    "bypass_governance",
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_GROUPS = ("licence", "started", "call_id", "extension", "caller", "callee")
_STRPTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")


def read_sources(
    tables: list[Table], state_dir: Path, *, node: str | None = None
) -> tuple[SourceConfig, ...]:
    """The valid sources among ``tables``; every problem, overlaps included, goes to the tables.
    ``node`` is this host's ``daemon.node`` when the catalogue is shared (a ``url``), else None."""
    sources: list[tuple[Table, SourceConfig]] = []
    names: dict[str, str] = {}
    for t in tables:
        source = _source(t)
        if source is None:
            continue
        if node is not None and not _one_host(t, source, node):
            continue
        if source.name in names:
            t.report("name", f"{quote(source.name)} is already the name of {names[source.name]}")
            continue
        names[source.name] = t.where
        sources.append((t, source))
    _check_roots(sources, state_dir)
    _check_buckets(sources)
    return tuple(source for _, source in sources)


def _source(t: Table) -> SourceConfig | None:
    name = t.string("name", required=True)
    if name is not None and not _SOURCE_NAME.fullmatch(name):
        t.report(
            "name",
            f"{quote(name)} is not a valid source name (use letters, digits, "
            '"_", "." and "-", starting with a letter or digit)',
        )
        name = None
    kind = t.optional_choice("type", _SOURCE_TYPES, required=True)
    rule = _rule(t, metadata=t.flag("metadata", False) if kind == "s3" else False)
    nodes = _nodes(t)
    source: SourceConfig | None = None
    if kind == "directory":
        _refuse(t, _S3_KEYS, "s3", kind)
        path = t.abspath("path", required=True)
        shared = t.flag("shared", False)
        if name is not None and path is not None:
            source = SourceConfig(name=name, type=kind, rule=rule, path=path, shared=shared)
    elif kind == "s3":
        if "shared" in t.data:
            t.skip(("shared",))
            t.report(
                "shared",
                "only for directory sources: an S3 source is always served by one node at a "
                "time; remove it",
            )
        _refuse(t, ("path",), "directory", kind)
        source = _s3_source(t, name, rule)
        if not all(map(importable, S3_MODULES)):
            where = t.where if name is None else f"{t.where} ({name})"
            t.problems.append(ConfigProblem(t.file, where, NEEDS_BOTO3))
    else:
        t.skip(_DIRECTORY_KEYS + _S3_KEYS)
    t.finish()
    return None if source is None else replace(source, nodes=nodes)


def _one_host(t: Table, source: SourceConfig, node: str) -> bool:
    """On a shared catalogue, a directory source that is not ``shared`` is one host's own
    disks, so its ``nodes`` must name exactly one node: listed on several, it would be one set
    of catalogue rows, and each host's full scan would mark the recordings only the others see
    as missing, which are then never erased."""
    if source.type != "directory" or source.shared:
        return True
    if source.nodes is not None and len(source.nodes) == 1:
        return True
    listed = "leaves nodes out (every node)" if source.nodes is None else "lists several nodes"
    t.report(
        "nodes",
        f"a directory source that is not shared {listed}, but on a shared catalogue it must "
        f"list exactly one: each host's scan would mark the recordings only the others see as "
        f'missing, and they would never be erased; write nodes = ["{node}"] and give each host '
        "its own source (the same path is fine), or shared = true if every host in nodes "
        "mounts this same directory (an NFS export)",
    )
    return False


def _nodes(t: Table) -> tuple[str, ...] | None:
    """``nodes``: the ``daemon.node`` names that serve the source; None (absent): every node.
    Names are not listed anywhere else, so only their shape is checked."""
    raw = t.data.get("nodes")
    if isinstance(raw, str):
        t.known.add("nodes")
        t.report("nodes", f"expected an array of node names, such as [{quote(raw)}]")
        return None
    items = t.value("nodes", list, "an array of node names")
    if items is None:
        return None
    if not items:
        t.report("nodes", "must name at least one node (leave nodes out for every node)")
        return None
    names: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            t.report_item("nodes", index, f"expected a node name, got {type_name(item)}")
        elif not NODE.fullmatch(item):
            t.report_item("nodes", index, f"must be {NODE_RULE}, got {quote(item)}")
        elif item in names:
            t.report_item("nodes", index, f"{quote(item)} is listed twice")
        else:
            names.append(item)
    return tuple(names)


def importable(module: str) -> bool:
    """Whether ``module`` (top-level) is installed, found without importing it."""
    return importlib.util.find_spec(module) is not None


def _refuse(t: Table, names: Sequence[str], owner: str, kind: str) -> None:
    for name in names:
        t.skip((name,))
        if name in t.data:
            t.report(name, f"only for {quote(owner)} sources; this source is {quote(kind)}")


def _s3_source(t: Table, name: str | None, rule: ClassifyRule) -> SourceConfig | None:
    bucket = t.string("bucket", required=True)
    prefix = t.value("prefix", str, "a string") or ""
    endpoint_url = t.string("endpoint_url")
    if endpoint_url is not None:
        url = urlsplit(endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            t.report(
                "endpoint_url", f"expected an http:// or https:// URL, got {quote(endpoint_url)}"
            )
    region = t.string("region")
    poll = t.duration("poll", DEFAULT_POLL, positive=True)
    mirror = t.flag("mirror_legal_holds", False)
    bypass = t.flag("bypass_governance", False)
    if rule.tags:
        t.report(
            "tags",
            "audio tags are not read from S3 objects (that would download every object); "
            "use metadata = true for x-amz-meta-* and object tags",
        )
    if bucket is not None and not _BUCKET.fullmatch(bucket):
        t.report(
            "bucket",
            f"{quote(bucket)} is not a valid bucket name (3 to 63 characters: "
            'lower-case letters, digits, "." and "-")',
        )
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
        bypass_governance=bypass,
    )


def _rule(t: Table, *, metadata: bool) -> ClassifyRule:
    licence = t.string("licence")
    if licence is not None and (problem := licence_id_problem(licence)):
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


def _pattern(t: Table) -> LinearPattern | None:
    text = t.value("pattern", str, "a string")
    if text is None:
        return None
    try:
        re.compile(text)  # Python's words for a syntax error, which operators know
    except re.error as exc:
        t.report("pattern", f"not a valid regular expression: {exc}")
        return None
    try:
        pattern = compile_pattern(text)
    except InvalidValue as exc:
        t.report("pattern", str(exc))
        return None
    for group in pattern.groupindex:
        if group not in _GROUPS:
            t.report(
                "pattern",
                f"unknown group {quote(group)} (groups may be named {', '.join(_GROUPS)})",
            )
    return pattern


def _check_started_group(t: Table, pattern: LinearPattern | None) -> None:
    if pattern is None or "started" not in pattern.groupindex:
        t.report("started_format", "needs a pattern with a (?P<started>...) group")


def _check_started_format(t: Table, text: str) -> None:
    for directive in re.finditer(r"%(.?)", text, re.DOTALL):
        if not directive[1]:
            t.report("started_format", f'{quote(text)} ends with a lone "%"')
        elif directive[1] not in _STRPTIME_DIRECTIVES:
            t.report(
                "started_format",
                f"unknown directive {quote(directive[0])} in {quote(text)} "
                "(see strptime in the Python documentation)",
            )


def _timezone(t: Table) -> tzinfo:
    name = t.string("timezone")
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
    hint = f"did you mean {quote(close[0])}?" if close else 'such as "Europe/London" or "UTC"'
    t.report("timezone", f"unknown time zone {quote(name)} ({hint})")
    return UTC


def _tag_names(t: Table) -> Mapping[str, tuple[str, ...]]:
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


def _tag_name_list(t: Table, field_name: str, raw: object) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        t.report(field_name, f"expected a string or an array of strings, got {type_name(raw)}")
        return ()
    if not items:
        t.report(field_name, "must name at least one tag")
    names: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            shown = "an empty string" if isinstance(item, str) else type_name(item)
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
            return f"is inside daemon.state_dir ({quote(str(state))}); {own_state}"
        if _inside(state, root):
            return f"contains daemon.state_dir ({quote(str(state))}); {own_state}"
    return None


def _check_roots(sources: list[tuple[Table, SourceConfig]], state_dir: Path) -> None:
    # Both the written path and its symlink-free form are checked: a symlink must not lead
    # a source into /etc, and a written path inside /etc is refused wherever it leads.
    state_dirs = tuple(
        dict.fromkeys((PurePosixPath(os.path.normpath(state_dir)), _real(state_dir)))
    )
    seen: list[tuple[Table, SourceConfig, PurePosixPath]] = []
    for t, source in sources:
        if source.path is None:
            continue
        written, real = PurePosixPath(os.path.normpath(source.path)), _real(source.path)
        shown = quote(str(source.path))
        if reason := _forbidden(written, state_dirs):
            t.report("path", f"{shown} {reason}")
        elif reason := _forbidden(real, state_dirs):
            t.report("path", f"{shown} resolves to {quote(str(real))}, which {reason}")
        elif (alias := _state_alias(real, state_dirs[-1])) and (
            reason := _state_problem(alias, state_dirs)
        ):
            t.report(
                "path",
                f"{shown} is {quote(str(alias))} by device and inode (a bind mount or another "
                f"mount of it), which {reason}",
            )
        for other_t, other, other_real in seen:
            if _apart(source, other):
                continue
            if overlap := _overlap(real, other_real):
                t.report(
                    "path",
                    f'{shown} {overlap} the root of source "{other.name}" '
                    f"({other_t.where}, {quote(str(other.path))}); two sources must not overlap",
                )
        seen.append((t, source, real))


def _apart(source: SourceConfig, other: SourceConfig) -> bool:
    """Whether no node serves both directory sources (their ``nodes`` share no name): each
    is then another host's own directory, and the same path names different disks."""
    if source.nodes is None or other.nodes is None:
        return False
    return not set(source.nodes) & set(other.nodes)


def _state_alias(root: PurePosixPath, state: PurePosixPath) -> PurePosixPath | None:
    """Where ``root`` is, seen from the state directory's side, when a bind mount (or another
    mount of the same file system) makes it the state directory, one of its ancestors, or a
    directory inside it, which paths alone do not show; else None. Identity is (st_dev,
    st_ino); a directory that does not exist (yet) has none."""
    sides: dict[tuple[int, int], PurePosixPath] = {}
    for path in (state, *state.parents):
        if (identity := _identity(path)) is not None:
            sides.setdefault(identity, path)
    root_identity = _identity(root)
    if root_identity is None:
        return None
    if root_identity in sides:
        return sides[root_identity]
    state_identity = _identity(state)
    if state_identity is None:
        return None
    for ancestor in root.parents:
        if _identity(ancestor) == state_identity:
            return state / root.relative_to(ancestor)
    return None


def _identity(path: PurePosixPath) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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


def _check_buckets(sources: list[tuple[Table, SourceConfig]]) -> None:
    seen: list[tuple[Table, SourceConfig]] = []
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
                    f"bucket {quote(source.bucket)} prefix {quote(source.prefix)} overlaps "
                    f'source "{other.name}" ({other_t.where}, prefix {quote(other.prefix)}); '
                    "two sources must not overlap",
                )
        seen.append((t, source))
