"""sd_notify over a real datagram socket; a broken socket is logged once, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recd.adapters.systemd import Notifier, watchdog_interval
from tests.fakes import NotifyListener


def test_states_arrive_as_systemd_reads_them(tmp_path: Path) -> None:
    listener = NotifyListener(str(tmp_path / "notify"))
    try:
        notifier = Notifier(str(tmp_path / "notify"))
        assert notifier.enabled
        assert notifier.notify(ready="1", status="scanning pbx1: 40 files") is True
        assert listener.receive() == "READY=1\nSTATUS=scanning pbx1: 40 files"
    finally:
        listener.close()


def test_abstract_namespace_address() -> None:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0recd-test-notify")
    try:
        assert Notifier("@recd-test-notify").notify(watchdog="1") is True
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_no_socket_is_a_quiet_no_op() -> None:
    notifier = Notifier(None)
    assert notifier.enabled is False
    assert notifier.notify(ready="1") is False


def test_broken_socket_is_logged_once_and_recovery_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recd.adapters.systemd")
    path = str(tmp_path / "notify")
    notifier = Notifier(path)
    assert notifier.notify(ready="1") is False
    assert notifier.notify(watchdog="1") is False
    listener = NotifyListener(path)
    try:
        assert notifier.notify(watchdog="1") is True
    finally:
        listener.close()
    assert caplog.messages == [
        f"cannot notify systemd at {path}: No such file or directory "
        "(further failures are not logged)",
        f"notifying systemd at {path} works again",
    ]


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        (None, None, None),
        ("", None, None),
        ("30000000", None, 15.0),
        ("30000000", "4242", 15.0),
        ("30000000", "1", None),  # meant for another process
        ("0", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval(usec: str | None, pid: str | None, expected: float | None) -> None:
    assert watchdog_interval(usec, pid, own_pid=4242) == expected
