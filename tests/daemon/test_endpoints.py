"""The daemon's endpoints (``recd.daemon.endpoints``): a reload that moves the admin socket and
changes the metrics keeps the one ``Metrics`` and its counters."""

from __future__ import annotations

from dataclasses import replace

from recd.cli.client import call
from recd.daemon.metrics import Metrics
from recd.daemon.signals import Event
from recd.protocol import Request
from tests.daemon.helpers import make
from tests.estate import Estate
from tests.fakes import NotifyListener


def test_reload_moves_the_admin_socket_and_the_metrics(
    estate: Estate, listener: NotifyListener
) -> None:
    moved = replace(
        estate.config,
        daemon=replace(estate.config.daemon, socket=estate.base / "moved.sock"),
        metrics=replace(estate.config.metrics, per_licence=False),
    )
    estate.write("L1/a.wav", age_days=1)
    daemon = make(estate, listener, loader=lambda path: moved)
    daemon.start()
    try:
        before = daemon.metrics
        assert before is not None
        assert before.registry.get_sample_value("recd_recordings", {"licence": "L1"}) == 1.0
        daemon.step(Event.RELOAD)
        assert not estate.config.daemon.socket.exists()
        assert call(moved.daemon.socket, Request("status")).unwrap()["recordings"] == 1
        after: Metrics | None = daemon.metrics
        assert after is before  # the same counters live on
        assert after.address is not None  # same listen address: still served
        assert after.registry.get_sample_value("recd_recordings", {"licence": "L1"}) is None
        assert after.registry.get_sample_value("recd_recordings") == 1.0  # one total, no labels
    finally:
        daemon.stop()
