"""``Notifier``: how the daemon tells its service manager what it is doing.

The daemon's loop says when it is ready, reloading or stopping, pings the watchdog and keeps a
one-line status (systemd's ``sd_notify``: ``recd.adapters.systemd.Notifier``). A notifier never
raises and never blocks the loop: a state line that cannot be delivered is dropped (and said
once, by the implementation), and outside a service manager every call is a no-op.
"""

from __future__ import annotations

from typing import Protocol


class Notifier(Protocol):
    """Sends state lines to the service manager; a no-op where there is none."""

    def notify(self, **states: str) -> bool:
        """Send one message of ``KEY=value`` lines (``ready="1"`` is ``READY=1``,
        ``status=...`` the status line); True when it was sent, never raises."""
