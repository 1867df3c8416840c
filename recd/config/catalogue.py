"""``[catalogue]`` and ``daemon.node``: which catalogue recd keeps, and this host's name in it.

Without ``[catalogue] url`` the catalogue is SQLite, ``catalog.db`` in ``daemon.state_dir``, as
on one host. A ``url`` names a PostgreSQL database shared by several hosts (issue 18), written as
a libpq URL. Only its shape is checked here, with no connection (loading has no side effects);
libpq reads it again when it connects. A password in it is refused, so recd.toml never holds one
and the URL may be shown and logged; no message here repeats the URL. ``daemon.node`` names this
host in the shared catalogue's leases and audit entries; its default is the host name.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from recd.config.tables import Table, quote
from recd.config.types import CatalogueSettings, PostgresURL
from recd.errors import InvalidValue

SCHEMES = ("postgresql://", "postgres://")
EXAMPLE = "postgresql://recd@db1.example.com/recd"
#: libpq parameters that carry a secret: recd.toml is no place for one.
SECRETS = ("password", "sslpassword")
PASSFILE = (
    "put the password in a password file instead: PGPASSFILE=FILE in recd's environment "
    "(systemctl edit recd), or passfile=FILE in the URL's query"
)
NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NODE_RULE = 'up to 64 letters, digits, ".", "_" and "-", starting with a letter or digit'
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


def read_catalogue(t: Table) -> CatalogueSettings:
    """``[catalogue]``; no ``url``: SQLite in ``daemon.state_dir``."""
    url = None
    text = t.string("url")
    if text is not None:
        try:
            url = parse_postgres_url(text)
        except InvalidValue as exc:
            t.report("url", str(exc))
    t.finish()
    return CatalogueSettings(url)


def read_node(t: Table, hostname: str, *, shared: bool) -> str:
    """``daemon.node`` from ``[daemon]``, else ``hostname``. A host name that cannot be a node
    name is a problem only for a ``shared`` catalogue: on one host nothing reads the node."""
    text = t.string("node")
    if text is None:
        if shared and not NODE.fullmatch(hostname):
            t.report(
                "node",
                f"the host name {quote(hostname)} cannot name this node in the shared "
                f"catalogue; set daemon.node ({NODE_RULE})",
            )
        return hostname
    if not NODE.fullmatch(text):
        t.report("node", f"must be {NODE_RULE}, got {quote(text)}")
    return text


def parse_postgres_url(text: str) -> PostgresURL:
    """The libpq URL ``text`` (``postgresql://[user@][host][:port][,...]/database[?k=v&...]``).

    Raises InvalidValue saying what is wrong, without repeating the URL (it may hold a
    password).
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
        raise InvalidValue(f"must not hold a password: {PASSFILE}")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidValue("must not contain spaces or control characters (write a space as %20)")
    if _BAD_ESCAPE.search(text):
        raise InvalidValue('has a "%" that is not followed by two hex digits (or is %00)')
    params = _query(query)
    if any(secret in params for secret in SECRETS):
        raise InvalidValue(f"must not hold a password: {PASSFILE}")
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
