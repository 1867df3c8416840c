"""A directory source's root recd cannot write, said once with what fixes it.

Under the shipped unit (``ProtectSystem=strict``) every path is read-only but the state and
runtime directories and what a drop-in's ``ReadWritePaths=`` lists; an eraser finds its root
read-only or not writable when it is made (``Eraser.blocked``: at start and at each reload), the
sweep then leaves the root's recordings alone (still indexed, deadlines known) instead of
failing each erase with EROFS. This says so once per start, again when a reload finds another
reason, and once more when a reload finds the root writable again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from recd.adapters.local.probes import READ_ONLY
from recd.daemon.dropin import fix_for

if TYPE_CHECKING:
    from recd.daemon.runtime import Runtime

logger = logging.getLogger(__name__)


def unwritable_roots(runtime: Runtime) -> dict[str, str]:
    """Source name -> why recd cannot write its root, for the sources the runtime erases."""
    return {n: e.blocked for n, e in runtime.erasers.items() if e.blocked is not None}


def report_unwritable(runtime: Runtime, said: dict[str, str]) -> dict[str, str]:
    """Log each root that cannot be written and was not already said so (``said``: what the
    last start or reload found); returns what this one found, for the next."""
    found = unwritable_roots(runtime)
    for source in runtime.config.sources:
        name, root = source.name, source.path
        if root is None:
            continue
        why = found.get(name)
        if why is None:
            if name in said:
                logger.warning("source %s: root %s is writable again; erasing there resumes",
                               name, root)  # fmt: skip
            continue
        if said.get(name) == why:
            continue
        if why == READ_ONLY:
            fix = (
                "the unit may write only what ReadWritePaths= lists: systemctl edit recd, add "
                f"{fix_for(root)}, then systemctl restart recd (recd check-config prints it)"
            )
        else:
            fix = (
                "give recd's group write access (chmod g+w, or setfacl -m g:recd:rwX -m "
                f"d:g:recd:rwX {root}), then systemctl reload recd"
            )
        logger.error(
            "source %s: recd cannot write its root %s (%s): its recordings are indexed but "
            "none is erased; %s",
            name,
            root,
            why,
            fix,
        )
    return found
