"""Reading one TOML file or table of the configuration, with every problem named by file and key.

The generic machinery under recd.config.load: ``read_toml`` turns a file into a dict (or a problem),
and ``Table`` hands out typed values, reporting each bad or unknown key as a ConfigProblem
instead of stopping at the first. What the keys are is for the readers that use it.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from recd.core.auditsegments import parse_size
from recd.core.periods import Period, parse_duration, parse_period
from recd.errors import ConfigProblem, InvalidValue, os_reason

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


def type_name(value: object) -> str:
    for kind, name in _TOML_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # datetime, date or time


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class Table:
    """One TOML table being read: typed values out, a problem for each bad one.

    Every key a reader asks for, present or not, becomes known; ``finish`` then reports every
    other key as unknown, so the readers that ask are the one list of valid keys.
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
        bare = name if _BARE_KEY.fullmatch(name) else quote(name)
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
                hint = f" (did you mean {quote(close[0])}?)" if close else ""
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
            self.report(name, f"expected {expected}, got {type_name(raw)}")
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
            self.report(name, f"expected a number, got {type_name(raw)}")
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
        self.report(name, f"{quote(text)} is not one of {', '.join(map(quote, allowed))}")
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

    def size(self, name: str, default: int) -> int:
        """Bytes, written as a string such as ``"64MiB"``."""
        text = self.value(name, str, 'a string such as "64MiB"')
        if text is None:
            return default
        try:
            return parse_size(text)
        except ValueError as exc:
            self.report(name, f"{exc}, got {quote(text)}")
            return default

    def period(self, name: str, *, required: bool = False) -> Period | None:
        text = self.value(name, str, 'a string such as "30d" or "3mo"', required=required)
        if text is None:
            return None
        try:
            period = parse_period(text)
        except InvalidValue as exc:
            self.report(name, str(exc))
            return None
        if not period.never and not period.months and not period.seconds:
            # A zero retention makes every recording due the moment it is indexed.
            self.report(
                name,
                f"a retention of {quote(period.text)} erases every recording as soon as it is "
                'found; write a length such as "30d", or "never" to keep recordings',
            )
            return None
        return period

    def abspath(self, name: str, *, required: bool = False) -> Path | None:
        text = self.string(name, required=required)
        if text is None:
            return None
        if not text.startswith("/"):
            self.report(name, f"must be an absolute path, got {quote(text)}")
            return None
        return Path(text)

    def table(self, name: str) -> Table:
        """The sub-table ``name``; an empty one when absent or not a table (reported)."""
        data = self.value(name, dict, "a table")
        return Table(self.file, self.key(name), data or {}, self.problems)

    def tables(self, name: str) -> list[Table]:
        """The array of tables ``[[name]]``; bad elements are reported and left out."""
        items = self.value(name, list, f"an array of tables ([[{name}]])")
        found: list[Table] = []
        for index, item in enumerate(items or ()):
            if isinstance(item, dict):
                found.append(Table(self.file, f"{self.key(name)}[{index}]", item, self.problems))
            else:
                self.report_item(name, index, f"expected a table, got {type_name(item)}")
        return found


def read_toml(path: Path, problems: list[ConfigProblem]) -> dict[str, object] | None:
    def report(message: str) -> None:
        problems.append(ConfigProblem(str(path), "", message))

    try:
        raw = path.read_bytes()
    except OSError as exc:
        report(f"cannot read: {os_reason(exc)}")
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
