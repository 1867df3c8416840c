"""The signals recd handles, as the items they put on the loop's queue, and keeping them off
every thread but the main one.

SIGHUP asks for a reload and SIGTERM/SIGINT for a stop; the handler only enqueues the
``Event`` (``recd.daemon.inbox``). Threads recd starts inherit a mask that blocks these signals,
so the kernel delivers them to the main thread, which runs the handler at once.
"""

from __future__ import annotations

import contextlib
import enum
import signal
from collections.abc import Iterator


class Event(enum.Enum):
    RELOAD = "reload"
    STOP = "stop"


SIGNALS = {signal.SIGHUP: Event.RELOAD, signal.SIGTERM: Event.STOP, signal.SIGINT: Event.STOP}


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block recd's signals while threads are started, so that they and every thread they
    start inherit the block and the kernel delivers SIGHUP/SIGTERM/SIGINT to the main thread.

    A signal that lands on another thread only sets CPython's flag: the main thread, asleep in
    the queue's ``get`` until the next deadline, would not run the handler until it woke up.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
