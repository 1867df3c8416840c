"""Bounded one-request servers for the admin socket and the metrics port (issue 13, point 10).

One thread per endpoint runs a ``selectors`` loop: it accepts, reads each request without
blocking, drops a client that is too slow (``recd.core.admission`` decides), and writes each
reply without blocking. A few worker threads compute the replies, so a request that waits for
the daemon's loop holds a worker, never the endpoint. Nothing a client does can make recd wait:
the connections are bounded in number, time and size, and ``stop`` closes whatever is still
open after a short grace for replies already being written.

The excess is refused (closed at once, after a best-effort one-line reply) and counted; the log
gets one line when a burst of refusals (or timeouts, or failed accepts) starts and one when it is
over. ``raise_fd_limit`` lifts the soft ``RLIMIT_NOFILE`` to the hard one at start, and no
endpoint takes the last ``Limits.fd_reserve`` descriptors: erasing needs them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from recd.core.admission import Admission, Burst, Limits, Phase, Timing, admit
from recd.errors import os_reason

logger = logging.getLogger(__name__)

#: The soft limit ``raise_fd_limit`` asks for at most: plenty for recd, and no surprise for
#: anything that sizes a table by the limit.
FD_CEILING = 65536
ACCEPT_BACKOFF = 1.0  # seconds without accepting after accept itself failed (EMFILE...)
ACCEPTS_PER_WAKE = 64  # so that a flood of connections cannot starve the clients already in
_CHUNK = 65536
_TICK = 1.0  # the longest the loop sleeps: a stop or a timeout is acted on within it
Count = Callable[[str], None]  # called with "limit", "descriptors" or "timeout"
#: A reply, or a reply and open file descriptors to send with its first bytes (SCM_RIGHTS);
#: the server closes them once they are sent, or the client is gone.
Answer = bytes | tuple[bytes, tuple[int, ...]]
#: Descriptors sent with one message: the kernel's SCM_MAX_FD is 253. More go one batch per
#: byte of the reply, which the receiver reads as one message each.
FDS_PER_MESSAGE = 250


class Endpoint(Protocol):
    """What one kind of server says; ``answer`` runs on a worker thread, the rest on the loop."""

    name: str  # for the log: "admin socket", "metrics"

    def complete(self, data: bytes, eof: bool) -> bool:
        """Whether ``data`` (and end of file, when ``eof``) is a whole request."""

    def answer(self, conn: socket.socket, request: bytes) -> Answer:
        """The reply to ``request``, received on ``conn`` (read nothing more from it), with
        the descriptors to pass along, if any (the server owns them from then on)."""

    def refusal(self, why: str, *, busy: bool) -> bytes:
        """A short reply for a client about to be dropped: ``why`` is a sentence for people;
        ``busy``: refused at connect (else: dropped for being too slow)."""


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one, at most ``FD_CEILING``; returns the
    soft limit (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_CEILING)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return soft, wanted
    return soft, soft


def free_descriptors() -> int:
    """File descriptors this process may still open before ``EMFILE``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:
        return soft  # no /proc: the limit and the connection cap still bound recd
    return soft - used


class _Conn:
    """One client connection and where it is in its exchange."""

    __slots__ = ("fds", "inbox", "outbox", "sock", "timing")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.timing = Timing(Phase.READING, now, now)
        self.inbox = bytearray()
        self.outbox = memoryview(b"")
        self.fds: tuple[int, ...] = ()  # to send with the reply's first bytes

    def close_fds(self) -> None:
        fds, self.fds = self.fds, ()
        _close_fds(fds)


def _close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class BoundedServer:
    """Serves ``endpoint`` on the listening socket ``listener`` within ``limits``.

    ``count`` is told of every refused or timed-out connection (for a metric); ``free`` says
    how many descriptors are left (a parameter so that tests can make them scarce).
    """

    def __init__(
        self,
        listener: socket.socket,
        endpoint: Endpoint,
        limits: Limits,
        *,
        workers: int = 2,
        count: Count | None = None,
        free: Callable[[], int] = free_descriptors,
        thread_name: str = "recd-serve",
    ) -> None:
        self.listener = listener
        self.endpoint = endpoint
        self.limits = limits
        self._count = count or (lambda reason: None)
        self._free = free
        self._name = thread_name
        self._selector = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}  # by file descriptor
        self._jobs: queue.SimpleQueue[tuple[_Conn, bytes] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[_Conn, bytes, tuple[int, ...]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._bursts: dict[str, Burst] = {}
        self._accept_paused_until: float | None = None
        self._stop_at: float | None = None
        self._threads: list[threading.Thread] = []
        self._workers = workers

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and the workers (threads inherit the caller's signal mask)."""
        self.listener.setblocking(False)
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        loop = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._threads = [loop]
        for _ in range(self._workers):
            self._threads.append(
                threading.Thread(target=self._work, name=f"{self._name}-worker", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def stop(self, grace: float = 1.0) -> None:
        """Stop accepting, drop clients still sending, give replies being written ``grace``
        seconds, close everything; never waits on a client. Idempotent."""
        if not self._threads:
            return
        self._stop_at = time.monotonic() + grace
        self._wake()
        threads, self._threads = self._threads, []
        for _ in threads[1:]:
            self._jobs.put(None)
        threads[0].join()
        for worker in threads[1:]:  # idle ones end at once; one stuck in a handler is left
            worker.join(timeout=0.1)
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._step():
                pass
        finally:
            self._close_all()
            while True:  # replies that never went out: their descriptors are closed
                try:
                    _, _, fds = self._done.get_nowait()
                except queue.Empty:
                    break
                _close_fds(fds)

    def _step(self) -> bool:
        """One wake-up; True when the server has stopped."""
        for key, mask in self._selector.select(self._timeout()):
            if key.fileobj is self.listener:
                self._accept()
            elif key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            else:
                conn: _Conn = key.data
                if mask & selectors.EVENT_READ:
                    self._read(conn)
                else:  # registered for one event at a time: this is EVENT_WRITE
                    self._write(conn)
        while True:
            try:
                conn, reply, fds = self._done.get_nowait()
            except queue.Empty:
                break
            self._reply(conn, reply, fds)
        now = time.monotonic()
        self._expire(now)
        self._resume_accepting(now)
        self._end_bursts(now)
        return self._stopping(now)

    def _timeout(self) -> float:
        now = time.monotonic()
        times = [now + _TICK]
        times += [e for c in self._conns.values() if (e := c.timing.expiry(self.limits))]
        times += [d for b in self._bursts.values() if (d := b.deadline()) is not None]
        if self._accept_paused_until is not None:
            times.append(self._accept_paused_until)
        return max(0.0, min(times) - now)

    def _stopping(self, now: float) -> bool:
        if self._stop_at is None:
            return False
        if self.listener.fileno() >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self.listener)
            self.listener.close()
            for conn in list(self._conns.values()):
                if conn.timing.phase is Phase.READING:
                    self._close(conn)
        return now >= self._stop_at or not self._conns

    # -- accepting ----------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            now = time.monotonic()
            reading = [c for c in self._conns.values() if c.timing.phase is Phase.READING]
            verdict = admit(len(self._conns), len(reading), self._free(), self.limits)
            if verdict in (Admission.LIMIT, Admission.DESCRIPTORS):
                self._refuse(sock, verdict, now)
                continue
            if verdict is Admission.DISPLACE:
                oldest = min(reading, key=lambda c: c.timing.since)
                slowest = f"was the slowest to send its request of {len(self._conns)} held"
                self._drop(oldest, "limit", slowest, now)
            sock.setblocking(False)
            conn = _Conn(sock, now)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            self._read(conn)  # a prompt client's request is there already: never displaced

    def _refuse(self, sock: socket.socket, verdict: Admission, now: float) -> None:
        if verdict is Admission.LIMIT:
            why = f"too many connections ({self.limits.connections}, the limit)"
        else:
            why = "too few file descriptors left (kept for erasing)"
        self._count(verdict.value)  # before the reply: whoever reads it finds it counted
        with contextlib.suppress(OSError):
            refusal = self.endpoint.refusal(f"recd is busy: {why}; try again shortly", busy=True)
            sock.send(refusal, socket.MSG_DONTWAIT)
        sock.close()
        self._note(
            verdict.value,
            now,
            "%s: refusing connections: %s; recd_connections_refused_total counts them",
            self.endpoint.name,
            why,
        )

    def _accept_failed(self, exc: OSError) -> None:
        now = time.monotonic()
        self._accept_paused_until = now + ACCEPT_BACKOFF
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self.listener)
        self._note(
            "accept",
            now,
            "%s: cannot accept connections: %s; trying again every %g s",
            self.endpoint.name,
            os_reason(exc),
            ACCEPT_BACKOFF,
        )

    def _resume_accepting(self, now: float) -> None:
        paused = self._accept_paused_until
        if paused is not None and now >= paused and self._stop_at is None:
            self._accept_paused_until = None
            self._selector.register(self.listener, selectors.EVENT_READ, None)

    # -- one exchange ---------------------------------------------------------------------------

    def _read(self, conn: _Conn) -> None:
        if conn.sock.fileno() < 0:
            return  # dropped earlier in this wake-up
        room = self.limits.max_request + 1 - len(conn.inbox)
        try:
            chunk = conn.sock.recv(min(_CHUNK, max(room, 1)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""  # reset: whatever arrived is all there is
        conn.inbox += chunk
        eof = not chunk or len(conn.inbox) > self.limits.max_request
        if not self.endpoint.complete(bytes(conn.inbox), eof):
            if not chunk:  # the client closed without a whole request
                self._close(conn)
                return
            conn.timing = Timing(Phase.READING, conn.timing.since, time.monotonic())
            return
        self._selector.unregister(conn.sock)
        conn.timing = Timing(Phase.HANDLING, time.monotonic(), time.monotonic())
        self._jobs.put((conn, bytes(conn.inbox)))

    def _reply(self, conn: _Conn, reply: bytes, fds: tuple[int, ...] = ()) -> None:
        if self._conns.get(conn.sock.fileno()) is not conn:
            _close_fds(fds)
            return  # closed meanwhile (stop)
        now = time.monotonic()
        conn.outbox = memoryview(reply)
        conn.fds = fds
        conn.timing = Timing(Phase.WRITING, now, now)
        self._selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        if conn.sock.fileno() < 0:
            return
        try:
            if conn.fds and conn.outbox:
                batch, rest = conn.fds[:FDS_PER_MESSAGE], conn.fds[FDS_PER_MESSAGE:]
                data = conn.outbox[:1] if rest else conn.outbox
                sent = socket.send_fds(conn.sock, [data], list(batch))
                conn.fds = rest
                _close_fds(batch)  # the client holds its own copies now
            else:
                sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client gave up: nothing to tell
            self._close(conn)
            return
        conn.outbox = conn.outbox[sent:]
        if not conn.outbox:
            self._close(conn)
            return
        conn.timing = Timing(Phase.WRITING, conn.timing.since, time.monotonic())

    def _expire(self, now: float) -> None:
        for conn in list(self._conns.values()):
            why = conn.timing.expired(now, self.limits)
            if why is not None:
                self._drop(conn, "timeout", why, now)

    def _drop(self, conn: _Conn, reason: str, why: str, now: float) -> None:
        """Close a client recd gives up on, telling it why if it still listens (counted first,
        so that whoever reads the reply finds it counted)."""
        self._count(reason)
        if conn.timing.phase is Phase.READING:
            with contextlib.suppress(OSError):
                refusal = self.endpoint.refusal(
                    f"recd dropped the connection: it {why}", busy=False
                )
                conn.sock.send(refusal)
        self._close(conn)
        self._note(
            reason,
            now,
            "%s: dropped a client that %s",
            self.endpoint.name,
            why,
        )

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0 and self._conns.get(fd) is conn:
            del self._conns[fd]
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()
        conn.close_fds()

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        with contextlib.suppress(OSError):
            self.listener.close()

    # -- workers ------------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            conn, request = job
            fds: tuple[int, ...] = ()
            try:
                reply = self.endpoint.answer(conn.sock, request)
                if isinstance(reply, tuple):
                    reply, fds = reply
            except Exception:  # a bug in a handler: log it, drop the client, keep serving
                logger.exception("%s: cannot answer a request", self.endpoint.name)
                reply = b""
            self._done.put((conn, reply, fds))
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full or closed: the loop is awake anyway
            self._wake_w.send(b"\0")

    # -- the log --------------------------------------------------------------------------------

    def _note(self, what: str, now: float, message: str, *args: object) -> None:
        """Log ``message`` if it starts a burst of ``what``; the burst's end is summed up."""
        if self._bursts.setdefault(what, Burst()).note(now):
            logger.warning(message + " (logged once per burst)", *args)

    def _end_bursts(self, now: float) -> None:
        for what, burst in self._bursts.items():
            ended = burst.ended(now)
            if ended is not None and ended[0] > 1:
                logger.warning(
                    "%s: %d %s in %.0f s, and none for %g s now",
                    self.endpoint.name,
                    ended[0],
                    _BURST_WHAT.get(what, what),
                    ended[1],
                    burst.quiet,
                )


_BURST_WHAT = {
    "limit": "connections refused or displaced at the limit",
    "descriptors": "connections refused for want of file descriptors",
    "timeout": "slow clients dropped",
    "accept": "failed accepts",
}
