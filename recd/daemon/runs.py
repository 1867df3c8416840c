"""Early-deletion request runs as the daemon's loop drives them, and the admins who wait on them.

A run erases a verified request's recordings in batches; an urgent item on the loop's queue (a
signal, an admin command) interrupts it between batches, and the loop resumes it once that item
is handled. Each admin who asked for a run (`recctl request execute`) holds a ``Future`` that
ends when the run does, however many times it was interrupted; at stop, every future still
waiting fails with ``DaemonUnavailable`` (the run resumes at the next start). Runs only happen
on the loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from recd.core.requeststate import RequestState
from recd.daemon.admin.legal import Run
from recd.errors import DaemonUnavailable
from recd.ports.records import RECD, Actor
from recd.service.requests import Requests


class RequestRuns:
    """The runs under way and their waiters; ``resume_needed`` while one was interrupted."""

    def __init__(self, requests: Callable[[], Requests], urgent: Callable[[], bool]) -> None:
        self._requests = requests  # the use case over the current runtime
        self.urgent = urgent  # whether an item waits that must interrupt a run
        self._waiting: dict[str, list[Future[Run]]] = {}  # request id -> admins waiting
        self.resume_needed = False

    def start(self, request_id: str, actor: Actor) -> Future[Run]:
        """Start (or continue) a request's run; the future ends when the run does."""
        future: Future[Run] = Future()
        future.set_running_or_notify_cancel()
        self._waiting.setdefault(request_id, []).append(future)
        self._settle(request_id, self._requests().execute(request_id, actor, self.urgent))
        return future

    def resume(self) -> bool:
        """Continue every interrupted run (at start, and after what interrupted it); False
        when one was interrupted again."""
        self.resume_needed = False
        requests = self._requests()
        for stored in requests.resumable():
            run = requests.execute(stored.id, RECD, self.urgent)
            self._settle(stored.id, run)
            if run[0].state is RequestState.EXECUTING:
                return False
        return True

    def _settle(self, request_id: str, run: Run) -> None:
        if run[0].state is RequestState.EXECUTING:
            self.resume_needed = True
            return
        for future in self._waiting.pop(request_id, []):
            future.set_result(run)

    def abandon(self) -> None:
        """At stop: every admin still waiting is told the run resumes at the next start."""
        for futures in self._waiting.values():
            for future in futures:
                future.set_exception(
                    DaemonUnavailable("recd stopped during the run; it resumes when recd starts")
                )
        self._waiting.clear()
