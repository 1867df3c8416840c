"""What the catalogue roles shared by both SQL adapters read of an adapter, and how they are
guarded.

A shared role (``SharedRole``: ``_breakers``, ``_marks``, ``_requests``) writes each statement
once, in SQLite's ``?`` style, and runs it through ``_q``: an adapter whose driver takes
another placeholder sets ``PARAM`` (PostgreSQL: ``%s``). So a shared statement holds no other
``?`` or ``%``, and only SQL both engines run with the same meaning (``ON CONFLICT ...
excluded`` does) is shared; what differs between the engines stays in each adapter.

``role_methods`` is what each adapter's ``guarded`` wraps: a class's own public methods and
those it inherits, not overridden, from a shared role.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol


class Cursor(Protocol):
    """What a shared role reads of a cursor (``sqlite3`` and ``psycopg`` ones alike)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> object: ...


class Db(Protocol):
    """What a shared role calls on an adapter's connection."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def cursor(self) -> Cursor: ...


class SharedRole:
    """A role written once for both SQL adapters; the adapter's ``Store`` supplies ``_db``
    and ``_tx``, and ``PARAM`` when its placeholder is not ``?``. An adapter lists
    it after its ``Store``, whose ``_db`` (its driver's connection) answers ``Db``."""

    PARAM = "?"

    if TYPE_CHECKING:  # declared only: the adapter's ``Store`` sets ``_db``

        @property
        def _db(self) -> Db: ...

    def _tx(self) -> AbstractContextManager[object]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        """``sql`` with this adapter's placeholder for each ``?``."""
        return sql if self.PARAM == "?" else sql.replace("?", self.PARAM)


def role_methods(cls: type, also: str = "") -> Iterator[tuple[str, Callable[..., Any]]]:
    """The public functions ``cls`` defines (and the one named ``also``), and those it
    inherits from a ``SharedRole`` without overriding them (not yet wrapped: a subclass's
    ``guarded`` skips them)."""
    for attr, fn in list(vars(cls).items()):
        if inspect.isfunction(fn) and (attr == also or not attr.startswith("_")):
            yield attr, fn
    for base in cls.__mro__[1:]:
        if not (issubclass(base, SharedRole) and base.__module__.startswith("recd.adapters._")):
            continue
        for attr, fn in list(vars(base).items()):
            if inspect.isfunction(fn) and not attr.startswith("_") and getattr(cls, attr) is fn:
                yield attr, fn
