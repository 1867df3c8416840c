"""Errors of the PostgreSQL catalogue, naming the database and never its password.

``describe`` names a libpq URL the way an operator finds it again (database, servers, user);
``guarded`` puts the translation around every public method of a catalogue class: the server
unreachable or the connection lost (``lost``) is ``CatalogueUnreachable`` naming the database,
and the connection is dropped (``_lose``) so that the next call connects again; another
``psycopg.OperationalError`` (a deadlock, a cancelled statement) a ``StateError`` naming it;
a row no codec decodes is ``CatalogueCorrupt`` naming it and the table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from recd.adapters._rows import BadRow
from recd.adapters._sql import role_methods
from recd.errors import CatalogueCorrupt, CatalogueUnreachable, StateError

C = TypeVar("C", bound=type)
P = ParamSpec("P")
R = TypeVar("R")


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    def _lose(self) -> None: ...


S = TypeVar("S", bound=_Named)


def describe(url: str) -> str:
    """``database "recd" on db1:5432 as user "recd"``: the URL without its password (or any
    other parameter), for messages and the log."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL catalogue (its URL does not parse)"
    database = str(params.get("dbname") or params.get("user") or "")
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    servers = [
        f"{host}:{ports[min(n, len(ports) - 1)]}" if ports != [""] else host
        for n, host in enumerate(hosts)
        if host
    ]
    where = ", ".join(servers) or "the default unix socket"
    user = params.get("user")
    who = f" as user {json.dumps(str(user))}" if user else ""
    return f"database {json.dumps(database)} on {where}{who}"


def reason(exc: psycopg.Error) -> str:
    """The server's or libpq's message on one line (a connection error spans several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


#: SQLSTATEs that mean the session is over: class 08 (connection exception) and the server
#: shutting down or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
#: cannot_connect_now). libpq's own errors (the socket closed, no server) have none.
_GONE = ("57P01", "57P02", "57P03")


def lost(exc: psycopg.Error) -> bool:
    """Whether ``exc`` says the server cannot be reached or the session was lost (rather than
    a statement failing on a live session: a deadlock, a lock or statement timeout)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _GONE


def unreachable(what: str, exc: psycopg.Error) -> CatalogueUnreachable:
    """``catalogue database "recd" on db1 ...: cannot reach the database: <why>``, where
    ``what`` is ``catalogue <describe(url)>`` or the like."""
    return CatalogueUnreachable(f"{what}: cannot reach the database: {reason(exc)}")


def guarded(cls: C) -> C:
    """``cls`` (with ``name``: ``describe`` of its URL, and ``_lose``: drop the connection)
    with every public method raising ``CatalogueUnreachable`` when the server cannot be
    reached, ``StateError`` for another operational failure and ``CatalogueCorrupt`` for a
    bad row."""
    for attr, fn in list(role_methods(cls)):
        setattr(cls, attr, _guard(fn))
    return cls


def _guard(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(fn)
    def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except BadRow as exc:
            raise CatalogueCorrupt(self.name, str(exc)) from exc
        except psycopg.OperationalError as exc:
            if lost(exc):
                self._lose()
                raise unreachable(f"catalogue {self.name}", exc) from exc
            raise StateError(f"catalogue {self.name}: {reason(exc)}") from exc

    return call
