"""sd_notify: READY, STATUS, WATCHDOG, RELOADING, STOPPING to systemd; a no-op outside it.

A few lines in-tree instead of the sdnotify package (SPEC section 12 allows either): sdnotify
swallows socket errors silently, and a notify socket that is set but broken must be logged —
once, not on every watchdog ping — and must never stop the daemon.
"""

from __future__ import annotations

import logging
import socket

from recd.errors import os_reason

logger = logging.getLogger(__name__)


class Notifier:
    """Sends state lines to ``$NOTIFY_SOCKET`` (given by the caller: adapters read no env)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, **states: str) -> bool:
        """Send ``KEY=value`` lines (``ready="1"`` becomes ``READY=1``); True when sent."""
        if not self.address:
            return False
        message = "\n".join(f"{k.upper()}={v}" for k, v in states.items()).encode()
        target = self.address
        if target.startswith("@"):  # abstract namespace
            target = "\0" + target[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                # Never block the loop on a notify socket nobody reads (systemd always does).
                sock.send(message, socket.MSG_DONTWAIT)
        except OSError as exc:
            if not self._failed:
                logger.error(
                    "cannot notify systemd at %s: %s (further failures are not logged)",
                    self.address,
                    os_reason(exc),
                )
            self._failed = True
            return False
        if self._failed:
            logger.info("notifying systemd at %s works again", self.address)
            self._failed = False
        return True


def watchdog_interval(usec: str | None, pid: str | None, own_pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``WATCHDOG_USEC``), or None when systemd
    asked for none or asked another process (``WATCHDOG_PID``)."""
    if not usec:
        return None
    if pid and pid != str(own_pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        logger.warning("ignoring WATCHDOG_USEC=%r: not a number", usec)
        return None
    return value / 2_000_000 if value > 0 else None
