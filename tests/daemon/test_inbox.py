"""The loop's queue: urgency counting, batching that holds the first other item, closing."""

from __future__ import annotations

import threading

import pytest

from recd.daemon.inbox import Command, Inbox
from recd.errors import DaemonUnavailable


def urgent(inbox: Inbox) -> bool:
    return inbox.urgent


def test_signals_and_commands_are_urgent_until_taken() -> None:
    inbox = Inbox()
    assert not urgent(inbox)
    inbox.signal("stop")
    assert urgent(inbox)
    inbox.took("file event", file_event=True)
    assert urgent(inbox)
    inbox.took(inbox.get(0), file_event=False)
    assert not urgent(inbox)
    inbox.took("stray", file_event=False)  # never counted as sent: no debt is left behind
    inbox.signal("stop")
    assert urgent(inbox)


def test_more_takes_file_events_and_holds_the_first_other_item() -> None:
    inbox = Inbox()
    for item in (1, 2, "stop", 3):
        inbox.queue.put(item)
    assert inbox.more(lambda i: isinstance(i, int), limit=10) == [1, 2]
    assert inbox.get(0) == "stop"  # held items come first
    assert inbox.more(lambda i: isinstance(i, int), limit=10) == [3]
    assert inbox.get(0.01) is None


def test_call_runs_on_the_loop_and_close_answers_the_rest() -> None:
    inbox = Inbox()
    results: list[object] = []
    caller = threading.Thread(target=lambda: results.append(inbox.call(lambda: 42)))
    caller.start()
    command = inbox.get(10)
    assert isinstance(command, Command) and inbox.urgent
    command.run()
    caller.join()
    assert results == [42]
    waiting = threading.Thread(target=lambda: results.append(_catch(lambda: inbox.call(int))))
    waiting.start()
    while inbox.queue.empty():
        pass
    inbox.close()
    waiting.join()
    assert results[-1] == "recd stopped before running it"
    with pytest.raises(DaemonUnavailable, match="recd is stopping; try again when it is back"):
        inbox.call(int)


def test_a_failing_or_cancelled_command() -> None:
    failing = Command(lambda: 1 / 0)
    failing.run()
    with pytest.raises(ZeroDivisionError):
        failing.future.result()
    ran: list[int] = []
    cancelled = Command(lambda: ran.append(1))
    cancelled.future.cancel()
    cancelled.run()
    assert ran == []


def _catch(fn: object) -> object:
    try:
        return fn()  # type: ignore[operator]
    except DaemonUnavailable as exc:
        return str(exc)
