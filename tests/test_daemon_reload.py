"""Reloads that cannot take effect leave the daemon serving with the configuration before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier
from recd.client import call
from recd.config import Config
from recd.daemon import Daemon, Event
from recd.protocol import Request
from tests.estate import Estate
from tests.fakes import FakeClock


def test_a_state_dir_that_cannot_be_used_is_refused_and_the_old_one_kept(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    estate = Estate(tmp_path, fake_clock)
    kept = estate.write("L1/a.wav", age_days=1)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = replace(estate.config.daemon, state_dir=blocker / "state")

    def loader(path: Path) -> Config:
        return replace(estate.config, daemon=bad)

    daemon = Daemon(estate.config, estate.clock, Notifier(None), loader=loader)
    daemon.start()
    try:
        daemon.step(Event.RELOAD)
        assert "reload failed: " in caplog.text
        assert "cannot create the state directory" in caplog.text
        assert daemon.config is estate.config
        reply = call(estate.config.daemon.socket, Request("status"), timeout=10).unwrap()
        assert reply["recordings"] == 1 and kept.exists()
    finally:
        daemon.stop()
