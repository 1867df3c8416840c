"""``[catalogue]`` and ``daemon.node``: which catalogue recd keeps, and this host's name in it.

Without ``[catalogue] url`` the catalogue is SQLite, ``catalog.db`` in ``daemon.state_dir``, as
on one host. A ``url`` names a PostgreSQL database shared by several hosts (issue 18), written as
a libpq URL. Only its shape is checked (``recd.core.pgurl``, which recctl's ``--url`` shares),
with no connection (loading has no side effects); libpq reads it again when it connects. A
password in it is refused, so recd.toml never holds one and the URL may be shown and logged; no
message here repeats the URL. ``daemon.node`` names this
host in the shared catalogue's leases and audit entries; its default is the host name.
"""

from __future__ import annotations

import re

from recd.config.tables import Table, quote
from recd.config.types import CatalogueSettings
from recd.core.pgurl import parse_postgres_url
from recd.errors import InvalidValue

PASSFILE = (
    "put the password in a password file instead: PGPASSFILE=FILE in recd's environment "
    "(systemctl edit recd), or passfile=FILE in the URL's query"
)
NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NODE_RULE = 'up to 64 letters, digits, ".", "_" and "-", starting with a letter or digit'


def read_catalogue(t: Table) -> CatalogueSettings:
    """``[catalogue]``; no ``url``: SQLite in ``daemon.state_dir``."""
    url = None
    text = t.string("url")
    if text is not None:
        try:
            url = parse_postgres_url(text, passfile=PASSFILE)
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
