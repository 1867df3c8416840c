"""SIGHUP: load the configuration again and run with it, or keep the one before.

``RELOADING=1``; a configuration that does not load is refused with every problem logged; one
that loads but cannot be used (a new state directory or socket that cannot be opened) is
dropped for the one before; when neither can open the shared catalogue's database, the daemon
waits for it (``dbwait``). ``READY=1`` in every case: ``systemctl reload`` waits for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from recd.config.load import Config
from recd.errors import CatalogueUnreachable, ConfigInvalid, RecdError

if TYPE_CHECKING:
    from recd.daemon.loop import Daemon

logger = logging.getLogger(__name__)


def reload(daemon: Daemon) -> None:
    daemon.notifier.notify(reloading="1", status="reloading configuration")
    try:
        config = daemon.loader(daemon.config.path)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            logger.error("reload refused: %s", problem)
        logger.error("keeping the configuration loaded before")
    else:
        try:
            reopen(daemon, config)
        except CatalogueUnreachable as exc:  # neither the new nor the old could open it
            daemon.catalogue_lost(exc)
    daemon.notifier.notify(ready="1", status=daemon.status())  # systemctl reload waits for it


def reopen(daemon: Daemon, config: Config) -> None:
    """Run with ``config`` from now on, or with the one before if it cannot be used."""
    old, reloaded = daemon.config, True
    daemon.watching.stop()
    daemon.close_runtime()
    try:
        daemon.open_state(config, reload=True)
        daemon.serve(config, old)
        daemon.endpoints.count_rebuilds(daemon.opening.rebuilt)
    except RecdError as exc:  # e.g. a new state_dir or socket that cannot be used
        logger.error("reload failed: %s; going back to the configuration before", exc)
        daemon.close_runtime()
        daemon.open_state(old, reload=True)
        daemon.serve(old, config)
        config, reloaded = old, False
    daemon.watch()
    daemon.scans.next_scan = 0.0  # sources or patterns may have changed
    daemon.sweeps.needed = True
    if reloaded:
        logger.info("configuration reloaded from %s", config.path)
    else:
        logger.warning("still running with the configuration loaded before")
