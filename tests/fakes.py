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
    """A datagram socket bound where NOTIFY_SOCKET points; records what systemd would get.

    Like systemd, it reads every datagram as it arrives (a thread of its own): a Unix datagram
    socket queues only ``net.unix.max_dgram_qlen`` (10) unread messages, and recd sends without
    blocking, so a listener that read only when asked would lose what comes after ten, such as
    the ``STOPPING=1`` of a daemon that sent many ``STATUS=`` lines meanwhile.
    """

    def __init__(self, path: str) -> None:
        import queue
        import socket
        import threading

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._arrived: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="notify-listener", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self._arrived.put(data.decode())

    def receive(self, timeout: float = 5.0) -> str | None:
        """The next message, or None after ``timeout`` seconds."""
        import queue

        try:
            message = self._arrived.get(timeout=timeout)
        except queue.Empty:
            return None
        self.messages.append(message)
        return message

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
        self._closed.set()
        self._reader.join(timeout=5)
        self.sock.close()
