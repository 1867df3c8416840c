"""Small fakes for the tests: a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """A Clock whose wall and monotonic time move only when a test says so."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, now: datetime) -> None:
        """Move only the wall clock (as a clock step would)."""
        self._now = now


class NotifyListener:
    """A datagram socket bound where NOTIFY_SOCKET points; records what systemd would get."""

    def __init__(self, path: str) -> None:
        import socket

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[str] = []

    def receive(self, timeout: float = 5.0) -> str | None:
        """The next message, or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        self.messages.append(data.decode())
        return self.messages[-1]

    def wait_for(self, line: str, timeout: float = 10.0) -> list[str]:
        """Receive until a message holds ``line``; returns every message received so far."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if message is not None and line in message.splitlines():
                return self.messages
        raise AssertionError(f"no {line!r} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
