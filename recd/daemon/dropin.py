"""The systemd drop-in a site adds so the shipped unit may write its recording roots.

The unit runs with ``ProtectSystem=strict`` (every path read-only but recd's state and runtime
directories) and ``ProtectHome=yes`` (/home, /root and /run/user hidden). Each directory
source's root must be listed in ``ReadWritePaths=`` (a root below a hidden directory also needs
``ProtectHome=read-only``, since a hidden path cannot be made writable). `recd check-config`
prints the drop-in; the daemon names the line for a root it finds it cannot write.

Paths are written as systemd.exec(5) reads them: prefixed ``-`` (a root missing at start, e.g.
an NFS mount not there yet, does not stop the unit: recd reports it), inside double quotes
with C escapes when they hold a space, a quote, a backslash or a control character, and ``%``
doubled (specifiers are expanded in these settings).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from recd.config.load import Config

#: What ``ProtectHome=yes`` hides; a root below one of them needs ``ProtectHome=read-only``.
HIDDEN = ("/home", "/root", "/run/user")
#: How the drop-in is added (and recd-once's, for the timer), shown above it.
HOW = "# systemctl edit recd   (and recd-once, if the timer runs); then: systemctl restart recd"


def unit_path(path: str) -> str:
    """``path`` as one word of a ``ReadWritePaths=`` list (prefixed ``-``)."""
    word = "-" + path.replace("%", "%%")
    if not any(c in word for c in " \t\"\\'") and word.isprintable():
        return word
    out = []
    for c in word:
        if c in '"\\':
            out.append("\\" + c)
        elif not c.isprintable() or c == "\t":
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape"))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def writable_line(roots: Iterable[str]) -> str:
    """``ReadWritePaths=`` for ``roots``."""
    return "ReadWritePaths=" + " ".join(unit_path(r) for r in roots)


def hidden(root: str) -> bool:
    """Whether ``ProtectHome=yes`` hides ``root`` (as given, or once its symlinks resolve)."""
    paths = {os.path.abspath(root), os.path.realpath(root)}
    return any(p == h or p.startswith(h + "/") for p in paths for h in HIDDEN)


def service_lines(roots: Iterable[str]) -> list[str]:
    """The ``[Service]`` settings that make ``roots`` writable under the shipped unit."""
    roots = list(dict.fromkeys(roots))
    lines = [writable_line(roots)]
    if any(hidden(r) for r in roots):
        lines.insert(0, "ProtectHome=read-only")
    return lines


def source_roots(config: Config) -> list[str]:
    """The configured directory sources' roots, in order, once each."""
    paths = (s.path for s in config.sources if s.type == "directory")
    return list(dict.fromkeys(str(p) for p in paths if p is not None))


def drop_in(config: Config) -> list[str]:
    """The drop-in for ``config``'s directory sources, with how to add it; [] when none."""
    roots = source_roots(config)
    if not roots:
        return []
    return [HOW, "[Service]", *service_lines(roots)]


def fix_for(root: Path | str) -> str:
    """The drop-in settings that make ``root`` writable, on one line (for a log line)."""
    return "; ".join(["[Service]", *service_lines([str(root)])])
