"""Early-deletion request runs as the loop drives them (``recd.daemon.runs``): a stop during a
run fails the waiting admin and the next start finishes it; a resumed run yields again."""

from __future__ import annotations

import signal

import pytest

from recd.core.requeststate import RequestState
from recd.daemon.inbox import Inbox
from recd.daemon.loop import Daemon
from recd.errors import DaemonUnavailable
from recd.ports.records import Actor
from tests.daemon.helpers import ALICE, make
from tests.estate import Estate
from tests.fakes import NotifyListener

BOB = Actor("bob", 1002, admin=True)


def approve_request(daemon: Daemon) -> None:
    """REQ-1, for every recording of licence L1, registered by alice and approved by bob."""
    desk = daemon.requests()
    desk.register(
        {
            "request_id": "REQ-1",
            "licence": "L1",
            "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
            "received": "2026-11-20T10:00:00Z",
            "reason": "Erasure requested by the data subject",
            "evidence": "letter 77",
            "scope": {"all": True},
        },
        ALICE,
    )
    desk.approve("REQ-1", BOB)


def request_state(daemon: Daemon) -> RequestState:
    stored = daemon.runtime.catalogue.request("REQ-1")
    assert stored is not None
    return stored.state


def test_a_stop_during_a_run_fails_the_waiting_admin_and_the_next_start_finishes_it(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recd.service.requestruns.BATCH", 2)  # a batch every 2 files, not 256
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(5)]
    daemon = make(estate, listener)
    daemon.start()
    try:
        approve_request(daemon)
        daemon.handle_signal(signal.SIGTERM, None)  # the stop arrives as the run starts
        future = daemon.run_request("REQ-1", ALICE)
        assert sum(not p.exists() for p in paths) == 2  # one batch, then it yielded
        assert not future.done()
        daemon.step(daemon.next_event())
        assert daemon.stopping
    finally:
        daemon.stop()
    error = future.exception(timeout=0)
    assert type(error) is DaemonUnavailable
    assert str(error) == "recd stopped during the run; it resumes when recd starts"
    again = make(estate, listener)
    again.start()
    try:
        assert not any(p.exists() for p in paths)
        assert request_state(again) is RequestState.COMPLETED
    finally:
        again.stop()


def test_a_resumed_run_yields_again_to_a_signal_and_ends_after_it(
    estate: Estate, listener: NotifyListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recd.service.requestruns.BATCH", 2)
    paths = [estate.write(f"L1/{n}_c1.wav", age_days=1) for n in range(7)]
    daemon = make(estate, listener, loader=lambda path: estate.config)
    daemon.start()
    try:
        approve_request(daemon)
        daemon.handle_signal(signal.SIGHUP, None)
        future = daemon.run_request("REQ-1", ALICE)
        assert sum(not p.exists() for p in paths) == 2
        # A second SIGHUP lands while the loop resumes the run, once it has erased 2 more:
        # nothing real times a signal between two batches, so the inbox, asked whether
        # anything urgent waits, sends it.
        urgent = Inbox.urgent
        sent: list[int] = []

        def second_sighup_mid_run(inbox: Inbox) -> bool:
            if inbox is daemon.inbox and not sent and sum(not p.exists() for p in paths) == 4:
                sent.append(1)
                daemon.handle_signal(signal.SIGHUP, None)
            return bool(urgent.fget(inbox))  # type: ignore[attr-defined]

        monkeypatch.setattr(Inbox, "urgent", property(second_sighup_mid_run))
        daemon.step(daemon.next_event())  # the first reload, then the run resumes
        assert sent and sum(not p.exists() for p in paths) == 4
        assert not future.done() and request_state(daemon) is RequestState.EXECUTING
        for _ in range(20):  # the erasures' file events, the second reload, then the run ends
            if future.done():
                break
            daemon.step(daemon.next_event())
        assert not any(p.exists() for p in paths)
        stored, _items = future.result(timeout=0)
        assert stored.state is RequestState.COMPLETED
    finally:
        daemon.stop()
