"""Source path patterns compiled for RE2, so that no file name can stall recd.

Python's ``re`` backtracks: ``(a+)+$`` against one hostile name of a few thousand characters
holds the daemon's loop for seconds per match (issue 13). RE2 (the ``google-re2`` package)
matches in time linear in the name's length whatever the pattern, and keeps named groups. It
has no backreferences and no lookaround; a pattern that needs them is refused at load with
what to write instead.

Names are matched as UTF-8. A name that is not valid UTF-8 reaches recd with lone surrogates
(``os.fsdecode``); each is matched as U+FFFD (``recd.core.classify.matchable``), so a match never
raises and a group holding one can never be a licence id (``licence_id_problem`` refuses U+FFFD).

``re2`` ships no type stubs: it is used only here, through the Protocol below. Matching calls
the package's compiled core (``re2._re2.RE2``, which its own ``re2.compile`` wraps) directly: the
pure-Python wrapper costs three times the match itself on a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol, cast

import re2
from re2 import _re2

from recd.core.classify import matchable
from recd.errors import InvalidValue

__all__ = ["LinearMatch", "LinearPattern", "compile_pattern"]

_Span = tuple[int, int]


class _RE2(Protocol):
    """The part of ``re2._re2.RE2`` used here."""

    def ok(self) -> bool: ...

    def error(self) -> bytes: ...

    def NamedCapturingGroups(self) -> list[tuple[bytes, int]]: ...

    def Match(self, anchor: object, text: bytes, pos: int, endpos: int) -> list[_Span]: ...


_UNANCHORED: object = _re2.RE2.Anchor.UNANCHORED


# RE2's own words for what it cannot take -> what to write instead.
_HINTS = (
    (re.compile(r"\\[1-9]|\(\?P$"), "backreferences are not supported; match the repeated "
     "text with its own group or character class"),
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind are not supported; match the "
     "characters themselves, such as [^_/]+ for a field up to the next _ or /"),
    (re.compile(r"\\Z"), r"use $ (or \z) for the end of the name"),
    (re.compile(r"\(\?[a-z]*x"), "verbose mode (?x) is not supported; write the pattern "
     "without spaces and comments"),
)  # fmt: skip
_SYNTAX = "see https://github.com/google/re2/wiki/Syntax for what RE2 takes"


class LinearMatch:
    """The named groups of one match."""

    __slots__ = ("_data", "_names", "_spans")

    def __init__(self, names: tuple[tuple[str, int], ...], data: bytes, spans: list[_Span]) -> None:
        self._names = names
        self._data = data
        self._spans = spans

    def groupdict(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for name, index in self._names:
            start, end = self._spans[index]
            found[name] = None if start < 0 else self._data[start:end].decode(errors="replace")
        return found


class LinearPattern:
    """A path pattern compiled by RE2: ``search`` takes time linear in the text's length.

    It has what ``recd.core.classify.PathPattern`` asks of a pattern (``pattern``,
    ``groupindex``, ``search``) and never raises on a text, surrogates included. Equal when
    the pattern text is.
    """

    __slots__ = ("_names", "_regexp", "groupindex", "pattern")

    def __init__(self, pattern: str) -> None:
        """Compile ``pattern``; raises InvalidValue with one line saying what to write instead."""
        options = re2.Options()
        options.log_errors = False  # RE2 would print its own copy of the error on stderr
        regexp = cast(_RE2, _re2.RE2(matchable(pattern).encode(), options))
        if not regexp.ok():
            raise InvalidValue(_refusal(regexp.error()))
        self.pattern = pattern
        self._names = tuple((name.decode(), index) for name, index in regexp.NamedCapturingGroups())
        self.groupindex: Mapping[str, int] = dict(self._names)
        self._regexp = regexp

    def search(self, string: str, /) -> LinearMatch | None:
        """The first match anywhere in ``string``, or None."""
        try:
            data = string.encode()
        except UnicodeEncodeError:
            data = matchable(string).encode()
        spans = self._regexp.Match(_UNANCHORED, data, 0, len(data))
        return None if spans[0][0] < 0 else LinearMatch(self._names, data, spans)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LinearPattern):
            return NotImplemented
        return self.pattern == other.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r})"


def compile_pattern(text: str) -> LinearPattern:
    """``text`` compiled for RE2; raises InvalidValue (one line) when RE2 cannot take it."""
    return LinearPattern(text)


def _refusal(error: bytes) -> str:
    detail = error.decode(errors="replace")
    hint = next((text for found, text in _HINTS if found.search(detail)), _SYNTAX)
    return (
        f"not supported by RE2, the linear-time engine recd matches names with ({detail}); {hint}"
    )
