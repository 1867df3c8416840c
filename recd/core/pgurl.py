"""The shape of a libpq URL naming recd's PostgreSQL database (issue 18), checked with no
connection: ``[catalogue] url`` in recd.toml and ``recctl audit ... --url`` read it alike.

Pure (no I/O): libpq reads the text again when it connects. A password in it is refused, so the
URL may be shown and logged; no message here repeats the URL. The caller says where the
password belongs instead (``passfile``): recd's environment is not recctl's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote

from recd.errors import InvalidValue

SCHEMES = ("postgresql://", "postgres://")
EXAMPLE = "postgresql://recd@db1.example.com/recd"
#: libpq parameters that carry a secret: neither recd.toml nor a command line is a place for one.
SECRETS = ("password", "sslpassword")
#: The start of the message refusing a password; the caller's advice follows it.
REFUSAL = "must not hold a password"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class PostgresURL:
    """A libpq URL whose shape was checked. libpq reads ``text`` again when it connects. It
    holds no password (refused), so it may be shown."""

    text: str
    database: str
    #: "host", "host:port", "[v6]:port" or a unix socket directory, as libpq will try them;
    #: empty: libpq's default unix socket.
    servers: tuple[str, ...] = ()
    user: str | None = None  # None: libpq's default, the operating-system user

    def __str__(self) -> str:
        """``database "recd" on db1:5432 as user "recd"``, for messages and the log."""
        where = ", ".join(self.servers) or "the default unix socket"
        who = f" as user {quote(self.user)}" if self.user is not None else ""
        return f"database {quote(self.database)} on {where}{who}"


def parse_postgres_url(text: str, *, passfile: str) -> PostgresURL:
    """The libpq URL ``text`` (``postgresql://[user@][host][:port][,...]/database[?k=v&...]``).

    Raises InvalidValue saying what is wrong, without repeating the URL (it may hold a
    password); for a password, ``passfile`` is the advice that follows ``REFUSAL``.
    """
    scheme = next((s for s in SCHEMES if text.startswith(s)), None)
    if scheme is None:
        found = _SCHEME.match(text)
        got = f", got {quote(found[0])}" if found else ""
        raise InvalidValue(
            f"must be a PostgreSQL URL starting with postgresql:// or postgres://, such as "
            f"{quote(EXAMPLE)}{got}"
        )
    rest, _, query = text[len(scheme) :].partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostlist = netloc.rpartition("@")
    # Before any other check: the first thing to say about a URL holding a password.
    if ":" in userinfo or any(item.partition("=")[0] in SECRETS for item in query.split("&")):
        raise InvalidValue(f"{REFUSAL}: {passfile}")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidValue("must not contain spaces or control characters (write a space as %20)")
    if _BAD_ESCAPE.search(text):
        raise InvalidValue('has a "%" that is not followed by two hex digits (or is %00)')
    params = _query(query)
    if any(secret in params for secret in SECRETS):
        raise InvalidValue(f"{REFUSAL}: {passfile}")
    database = params.get("dbname", unquote(path))
    if not database:
        raise InvalidValue(f"names no database: write it after the host, as in {quote(EXAMPLE)}")
    user = params.get("user", unquote(userinfo)) or None
    return PostgresURL(text, database, _servers(hostlist, params), user)


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in query.split("&") if query else ():
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise InvalidValue(
                f"query parameter {quote(unquote(key))} is not key=value (join several with &)"
            )
        params[unquote(key)] = unquote(value)
    return params


def _servers(hostlist: str, params: dict[str, str]) -> tuple[str, ...]:
    """The servers libpq will try, as shown: the URL's hosts and ports, or the query's
    ``host=`` and ``port=`` (comma-separated lists, as libpq takes them) in their place."""
    pairs = [_host_port(entry) for entry in hostlist.split(",")] if hostlist else []
    hosts = params["host"].split(",") if "host" in params else [host for host, _ in pairs]
    ports = params["port"].split(",") if "port" in params else [port for _, port in pairs]
    for port in ports:
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
            raise InvalidValue(f"port must be a number from 1 to 65535, got {quote(port)}")
    if len(ports) == 1:
        ports *= max(len(hosts), 1)
    if not hosts:
        hosts = [""] * len(ports)
    if len(ports) not in (0, len(hosts)):
        raise InvalidValue(f"gives {len(ports)} ports for {len(hosts)} hosts")
    if not any(hosts) and not any(ports):
        return ()
    ports = ports or [""] * len(hosts)
    return tuple(_server(host, port) for host, port in zip(hosts, ports, strict=True))


def _host_port(entry: str) -> tuple[str, str]:
    """``host[:port]`` or ``[v6][:port]`` of the URL's host list, the host percent-decoded."""
    if entry.startswith("["):
        host, bracket, after = entry[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise InvalidValue('write an IPv6 address in brackets, as in "[::1]:5432"')
        return unquote(host), after[1:]
    host, _, port = entry.partition(":")
    return unquote(host), port


def _server(host: str, port: str) -> str:
    if not host:
        return f"the default unix socket, port {port}" if port else "the default unix socket"
    shown = f"[{host}]" if ":" in host and not host.startswith("/") else host
    return f"{shown}:{port}" if port else shown
