"""recd.service.certificates: a run's deletion certificate is kept while nothing changes, written
again when lost or altered (an altered one is refused), and says how each recording was erased."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recd.core.model import EraseMethod
from recd.core.requeststate import ItemOutcome, RequestState
from recd.core.scope import Scope
from recd.daemon.runtime import Runtime, scan_all
from recd.errors import RecdError
from recd.service.holds import Holds
from tests.estate import Estate
from tests.fakes import FakeClock
from tests.service.helpers import ALICE, BOB, approved, certificates, keyed_estate, requests


@pytest.fixture
def estate(tmp_path: Path, fake_clock: FakeClock, keys: dict[str, Ed25519PrivateKey]) -> Estate:
    return keyed_estate(tmp_path, fake_clock, keys)


def test_running_again_with_nothing_left_keeps_the_certificate(estate: Estate, rt: Runtime) -> None:
    """The customer's copy stays the one to check: no new file, no new audit entry, no run."""
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    first, items = desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    audited = estate.audit()
    estate.clock.advance(3600)
    again, same = desk.execute("REQ-1", BOB)
    assert (again, same) == (first, items)
    assert rt.catalogue.request("REQ-1") == first  # not even its time of update
    assert desk.certificate("REQ-1") == cert
    assert cert.path.read_text() == cert.text
    assert estate.audit() == audited
    # A recording indexed later that the scope matches is erased by the next run, which
    # certifies it: a new certificate, audited.
    estate.write("L1/b_c1.wav", age_days=1)
    scan_all(rt)
    stored, items = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert [i.outcome for i in items] == [ItemOutcome.ERASED, ItemOutcome.ERASED]
    renewed = desk.certificate("REQ-1")
    assert renewed.sha256 != cert.sha256
    assert [e["details"]["sha256"] for e in certificates(estate)] == [cert.sha256, renewed.sha256]


def test_a_lost_certificate_is_written_again_by_a_run(estate: Estate, rt: Runtime) -> None:
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    cert.path.unlink()
    desk.execute("REQ-1", ALICE)
    assert desk.certificate("REQ-1").seq > cert.seq
    assert len(certificates(estate)) == 2


def test_a_partial_request_keeps_its_certificate_until_a_hold_changes(
    estate: Estate, rt: Runtime
) -> None:
    """Held by a hold: nothing changes while it holds. Released: the recording is kept for
    the grace, which the certificate must now say, so the next run renews it."""
    estate.write("L1/h_c1.wav", age_days=1)
    scan_all(rt)
    holds = Holds(estate.config, rt.catalogue, rt.audit, estate.clock)
    hold, _ = holds.place(Scope("L1"), case="C", reason="r", until=None, actor=BOB)
    desk = approved(estate, rt)
    stored, _ = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL
    audited = estate.audit()
    assert desk.execute("REQ-1", ALICE)[0] == stored
    assert estate.audit() == audited
    holds.release(hold.id, reason="settled", actor=BOB)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.PARTIAL and item.holds == ()
    assert [e["details"]["sha256"] for e in certificates(estate)][-1] == (
        desk.certificate("REQ-1").sha256
    )
    assert len(certificates(estate)) == 2


def test_an_unlink_erase_is_certified_not_effective_with_its_reason(
    estate: Estate, rt: Runtime
) -> None:
    path = estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    approved(estate, rt)
    estate.configure(erase=replace(estate.config.erase, method=EraseMethod.UNLINK))
    desk = requests(estate, rt)
    stored, (item,) = desk.execute("REQ-1", ALICE)
    assert stored.state is RequestState.COMPLETED and not path.exists()
    assert (item.method, item.effective) == ("unlink", False)
    (erased,) = json.loads(desk.certificate("REQ-1").text)["erased"]
    assert (erased["method"], erased["effective"], erased["ineffective_reason"]) == (
        "unlink", False, "method is unlink (no overwrite)",
    )  # fmt: skip
    assert "s3" not in erased


def test_an_altered_certificate_is_refused_and_the_next_run_writes_it_again(
    estate: Estate, rt: Runtime
) -> None:
    estate.write("L1/a_c1.wav", age_days=1)
    scan_all(rt)
    desk = approved(estate, rt)
    desk.execute("REQ-1", ALICE)
    cert = desk.certificate("REQ-1")
    cert.path.write_text(cert.text.replace('"erased": 1', '"erased": 2'))
    with pytest.raises(RecdError) as altered:
        desk.certificate("REQ-1")
    assert str(altered.value) == (
        f"{cert.path} does not match the digest audited in entry #{cert.seq} ({cert.sha256}): "
        "it was altered after recd wrote it"
    )
    desk.execute("REQ-1", ALICE)
    renewed = desk.certificate("REQ-1")
    assert renewed.seq > cert.seq
    assert json.loads(renewed.text)["summary"]["erased"] == 1
    assert [e["details"]["sha256"] for e in certificates(estate)][-1] == renewed.sha256
