"""S3 sources through the service, on a real S3 HTTP endpoint (moto's server on loopback), the
real catalogue and audit log: polls, sweeps, refusals with the store's reason, recovery of an
interrupted erase, request certificates with every version's SHA-256, legal holds mirrored,
and the bucket report at start."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recd.core.model import State, recording_id
from recd.core.requeststate import RequestState
from recd.core.scope import Scope
from recd.daemon.metrics import Metrics
from recd.daemon.runtime import Runtime, report_buckets, scan_all
from recd.ports.eraser import EraseError, EraseJob, EraseOutcome
from recd.service.recovery import Recovery
from recd.service.requests import Requests
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.intentshape import per_recording
from tests.service.helpers import ALICE, BOB, NEW, put, s3_estate

OLD = "L1/20260901120000_"  # 30-day licence L1: due long ago


@pytest.fixture
def estate(tmp_path: Path, s3_endpoint: str, make_bucket: Any) -> Estate:
    """An estate on a versioned bucket."""
    return s3_estate(tmp_path, make_bucket("versioned"), s3_endpoint)


@pytest.fixture
def rt(estate: Estate) -> Iterator[Runtime]:
    runtime = estate.runtime()
    yield runtime
    runtime.close()


def bucket(estate: Estate) -> str:
    return str(estate.bucket)  # type: ignore[attr-defined]


def left(client: Any, bucket: str, key: str) -> list[str]:
    page = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [
        v["VersionId"]
        for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        if v["Key"] == key
    ]


def rid(key: str) -> str:
    return recording_id("archive", key)


def sweep(estate: Estate, rt: Runtime, telemetry: Any = None) -> Any:
    extra = {} if telemetry is None else {"telemetry": telemetry}
    return Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers, **extra).run()


def test_a_poll_indexes_keys_and_a_sweep_erases_every_version_of_due_ones(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b = bucket(estate)
    due = [f"{OLD}{n}.wav" for n in range(3)]
    for key in due:
        put(client, b, key, b"one", b"two")
    client.delete_object(Bucket=b, Key=due[0])  # a delete marker on top: still a recording
    put(client, b, due[1] + ".meta", b"keep")
    put(client, b, f"{NEW}9.wav", b"not yet")
    assert scan_all(rt)
    assert rt.catalogue.get(rid(due[0])).size == 6  # type: ignore[union-attr]
    report = sweep(estate, rt)
    assert (report.erased, report.failed) == (3, 0)
    assert all(left(client, b, key) == [] for key in due)
    assert len(left(client, b, due[1] + ".meta")) == 1
    assert len(left(client, b, f"{NEW}9.wav")) == 1
    done = [e for e in estate.audit() if e["action"] == "erase.done"]
    assert len(done) == 3
    first = next(e["details"] for e in done if e["details"]["key"] == due[0])
    assert first["location"] == f"s3://{b}/{due[0]}"
    assert (first["method"], first["effective"]) == ("s3-delete", False)
    assert (first["deleted_versions"], first["deleted_delete_markers"]) == (2, 1)
    assert first["confirmed"]["remaining"] == 0
    intents = [e for e in per_recording(estate.audit()) if e["action"] == "erase.intent"]
    assert len(intents) == 3  # each key's versions recorded before they are deleted
    assert all([v["version_id"] for v in i["details"]["versions"]] for i in intents)
    assert rt.catalogue.get(rid(due[0])).state is State.ERASED  # type: ignore[union-attr]
    assert rt.catalogue.get(rid(f"{NEW}9.wav")).state is State.PRESENT  # type: ignore[union-attr]


def test_a_key_that_vanished_between_polls_is_missing_not_erased(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b = bucket(estate)
    (version,) = put(client, b, f"{OLD}1.wav", b"x")
    assert scan_all(rt)
    client.delete_object(Bucket=b, Key=f"{OLD}1.wav", VersionId=version)
    report = sweep(estate, rt)
    assert report.erased == 0
    assert report.licences["L1"].kept == {"vanished before erasure": 1}
    assert rt.catalogue.get(rid(f"{OLD}1.wav")).state is State.MISSING  # type: ignore[union-attr]
    assert not [e for e in estate.audit() if e["action"].startswith("erase.")]


def test_a_new_version_since_the_poll_waits_for_the_next_poll(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b = bucket(estate)
    put(client, b, f"{OLD}1.wav", b"x")
    assert scan_all(rt)
    put(client, b, f"{OLD}1.wav", b"re-uploaded")
    report = sweep(estate, rt)
    assert report.erased == 0
    assert "versions changed since it was indexed" in next(iter(report.licences["L1"].kept))
    assert len(left(client, b, f"{OLD}1.wav")) == 2
    assert scan_all(rt)  # the next poll sees both versions; the sweep erases both
    assert sweep(estate, rt).erased == 1
    assert left(client, b, f"{OLD}1.wav") == []


def test_an_object_lock_refusal_fails_with_the_reason_and_counts_the_code(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any, client: Any
) -> None:
    locked = make_bucket("locked")
    e = s3_estate(tmp_path, locked, s3_endpoint)
    kept, free = f"{OLD}1.wav", f"{OLD}2.wav"
    (version,) = put(client, locked, kept, b"court")
    put(client, locked, free, b"free")
    client.put_object_legal_hold(
        Bucket=locked, Key=kept, VersionId=version, LegalHold={"Status": "ON"}
    )
    metrics = Metrics(lambda: None)  # type: ignore[arg-type,return-value]
    runtime = e.runtime()
    try:
        assert scan_all(runtime)
        report = sweep(e, runtime, telemetry=metrics)
    finally:
        runtime.close()
    assert (report.erased, report.failed) == (1, 1)
    assert left(client, locked, free) == []
    assert left(client, locked, kept) == [version]
    (failed,) = [x for x in e.audit() if x["action"] == "erase.failed"]
    assert failed["details"]["location"] == f"s3://{locked}/{kept}"
    assert failed["details"]["error"].startswith("AccessDenied: ")
    assert "object lock" in failed["details"]["error"].lower()
    sample = metrics.registry.get_sample_value(
        "recd_s3_erase_errors_total", {"source": "archive", "code": "AccessDenied"}
    )
    assert sample == 1


class Delegating:
    """The real eraser, every call passed on; subclasses change ``erase_many``."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Crashing(Delegating):
    """The real eraser, but the process 'dies' after the first version of the batch is
    deleted: what a SIGKILL mid-DeleteObjects leaves behind."""

    def __init__(self, real: Any, client: Any, bucket: str) -> None:
        super().__init__(real)
        self.client, self.bucket = client, bucket

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: Any, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        facts = jobs[0].prepared.facts
        first = facts.versions[0]  # type: ignore[union-attr]
        self.client.delete_object(Bucket=self.bucket, Key=facts.key, VersionId=first.version_id)  # type: ignore[union-attr]
        raise SystemExit("killed")


def crash_mid_erase(estate: Estate, rt: Runtime, client: Any) -> None:
    erasers = {"archive": Crashing(rt.erasers["archive"], client, bucket(estate))}
    with pytest.raises(SystemExit):
        Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, erasers).run()
    assert rt.catalogue.pending_intents()


def test_recovery_deletes_what_an_interrupted_erase_left(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b, key = bucket(estate), f"{OLD}1.wav"
    put(client, b, key, b"a", b"b", b"c")
    assert scan_all(rt)
    crash_mid_erase(estate, rt, client)
    assert len(left(client, b, key)) == 2
    report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    assert report.finished == 1
    assert left(client, b, key) == []
    (done,) = [e for e in estate.audit() if e["action"] == "erase.done"]
    assert done["details"]["recovered"] is True
    assert done["details"]["deleted_versions"] == 2  # what was left of the three
    assert not rt.catalogue.pending_intents()


def test_recovery_never_deletes_a_version_written_after_the_erase_began(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b, key = bucket(estate), f"{OLD}1.wav"
    put(client, b, key, b"a", b"b")
    assert scan_all(rt)
    crash_mid_erase(estate, rt, client)
    (newer,) = put(client, b, key, b"a new call under the same key")
    report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    assert report.failed == 1
    assert newer in left(client, b, key) and len(left(client, b, key)) == 2
    (failed,) = [e for e in estate.audit() if e["action"] == "erase.failed"]
    assert "written after the erase began" in failed["details"]["error"]


def test_recovery_finishes_an_interrupted_batch_in_a_few_requests(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    """A killed sweep leaves a whole batch of intents; recovery lists, deletes and confirms
    them together, as the sweep's batch would have, not each key on its own (four or five
    requests a key made a thousand-key batch take minutes, before READY). Each key still gets
    its own outcome: what was left deleted, nothing left (done), a new version (failed,
    kept)."""
    b = bucket(estate)
    keys = [f"{OLD}{n:02d}.wav" for n in range(40)]
    for key in keys:
        put(client, b, key, b"a", b"b")
    assert scan_all(rt)
    crash_mid_erase(estate, rt, client)
    assert len(rt.catalogue.pending_intents()) == len(keys)
    gone, renewed = keys[1], keys[2]  # the crash deleted one version of keys[0]
    for version in left(client, b, gone):
        client.delete_object(Bucket=b, Key=gone, VersionId=version)
    (newer,) = put(client, b, renewed, b"a new call under the same key")
    requests: list[str] = []
    eraser_client = rt.erasers["archive"]._client  # type: ignore[attr-defined]
    count = lambda model, **_: requests.append(model.name)  # noqa: E731
    eraser_client.meta.events.register("before-call.s3", count)
    try:
        report = Recovery(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers).run()
    finally:
        eraser_client.meta.events.unregister("before-call.s3", count)
    assert (report.finished, report.failed) == (len(keys) - 1, 1)
    assert len(requests) <= 3, requests  # one listing walk, DeleteObjects, confirmation
    assert [k for k in keys if left(client, b, k)] == [renewed]
    assert newer in left(client, b, renewed) and len(left(client, b, renewed)) == 3
    outcomes = {e["subject"]: e for e in estate.audit() if e["action"].startswith("erase.")}
    assert outcomes[rid(gone)]["action"] == "erase.done"
    assert "deleted_versions" not in outcomes[rid(gone)]["details"]  # nothing was left
    assert outcomes[rid(keys[0])]["details"]["deleted_versions"] == 1
    assert outcomes[rid(keys[3])]["details"]["deleted_versions"] == 2
    assert "written after the erase began" in outcomes[rid(renewed)]["details"]["error"]
    assert not rt.catalogue.pending_intents()


def test_a_request_certificate_lists_every_version_with_its_sha256(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b, key = bucket(estate), f"{NEW}1.wav"
    versions = put(client, b, key, b"first take", b"second take")
    assert scan_all(rt)
    desk = Requests(estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers)
    document = {
        "request_id": "REQ-S3", "licence": "L1",
        "requested_by": {"name": "Jane Doe", "email": "dpo@x.example", "role": "DPO"},
        "received": "2026-11-20T10:00:00Z", "reason": "Erasure requested by the data subject",
        "evidence": "letter 77", "scope": {"recordings": [rid(key)]},
    }  # fmt: skip
    desk.register(document, ALICE)
    desk.approve("REQ-S3", BOB)
    stored, _ = desk.execute("REQ-S3", ALICE)
    assert stored.state is RequestState.COMPLETED
    assert left(client, b, key) == []
    (erased,) = json.loads(desk.certificate("REQ-S3").text)["erased"]
    assert erased["location"] == f"s3://{b}/{key}"
    assert erased["sha256"] == hashlib.sha256(b"second take").hexdigest()  # the current one
    s3 = erased["s3"]
    assert (s3["bucket"], s3["key"], s3["deleted_versions"]) == (b, key, 2)
    assert s3["confirmed"]["remaining"] == 0
    by_id = {v["version_id"]: v.get("sha256") for v in s3["versions"]}
    assert by_id == {
        versions[0]: hashlib.sha256(b"first take").hexdigest(),
        versions[1]: hashlib.sha256(b"second take").hexdigest(),
    }


def test_the_bucket_report_at_start(
    estate: Estate, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        report_buckets(rt)
    assert f"source archive: bucket {bucket(estate)}: versioned, no Object Lock" in caplog.messages


def test_an_unreachable_store_fails_the_poll_and_the_sweep_tries_again_later(
    estate: Estate, rt: Runtime, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from tests.tools import free_port

    put(client, bucket(estate), f"{OLD}1.wav", b"due")
    assert scan_all(rt)
    rt.close()
    gone = replace(estate.config.sources[0], endpoint_url=f"http://127.0.0.1:{free_port()}")
    estate.configure(sources=(gone,))
    runtime = estate.runtime()
    try:
        report_buckets(runtime)
        assert not scan_all(runtime)
        report = sweep(estate, runtime)
    finally:
        runtime.close()
    assert any("cannot read the settings of bucket" in m for m in caplog.messages)
    assert any(m.startswith("source archive: cannot scan s3://") for m in caplog.messages)
    (why,) = report.licences["L1"].kept
    assert why.startswith("cannot open: EndpointConnection: Could not connect")
    assert not [e for e in estate.audit() if e["action"].startswith("erase.")]  # not refused
    assert left(client, bucket(estate), f"{OLD}1.wav")


LAZY = """
import sys
from pathlib import Path
from recd.adapters.clock import SystemClock
from recd.config.load import load
from recd.daemon.runtime import open_runtime
runtime = open_runtime(load(Path(sys.argv[1])), SystemClock())
runtime.close()
print(sorted(m for m in ("boto3", "botocore", "mutagen") if m in sys.modules))
"""


@pytest.mark.parametrize(("kind", "loaded"), [("directory", []), ("s3", ["boto3", "botocore"])])
def test_boto3_is_imported_only_when_an_s3_source_is_configured(
    tmp_path: Path, kind: str, loaded: list[str]
) -> None:
    import subprocess
    import sys

    source = (
        f'type = "directory"\npath = "{tmp_path / "rec"}"'
        if kind == "directory"
        else 'type = "s3"\nbucket = "recordings"\nendpoint_url = "http://127.0.0.1:9"'
    )
    config = tmp_path / "recd.toml"
    (tmp_path / "licences.d").mkdir()
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n\n[[source]]\nname = "a"\n{source}\n'
    )
    out = subprocess.run(
        [sys.executable, "-c", LAZY, str(config)], capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
    )  # fmt: skip
    assert json.loads(out.stdout.replace("'", '"')) == loaded


def test_the_daemon_polls_a_bucket_every_poll_and_mirrors_what_it_finds(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any, client: Any
) -> None:
    """In-process: the start report, the first poll, a poll `poll` later that finds a new key
    a hold matches (mirrored at once), the status and the metrics snapshot."""
    from recd.adapters.systemd import Notifier
    from recd.daemon.loop import Daemon

    locked = make_bucket("locked")
    e = s3_estate(
        tmp_path, locked, s3_endpoint, mirror_legal_holds=True, poll=timedelta(seconds=30)
    )
    put(client, locked, f"{NEW}1.wav", b"a")
    put(client, locked, f"{OLD}2.wav", b"due")
    daemon = Daemon(e.config, e.clock, Notifier(None))
    daemon.start()
    try:
        (status,) = daemon.state().sources
        assert (status.name, status.watch, status.last_scan) == ("archive", "poll", e.clock.now())
        assert status.objects is not None and (status.objects.objects, status.objects.bytes) == (
            2, 4,
        )  # fmt: skip
        assert left(client, locked, f"{OLD}2.wav") == []  # the first sweep erased it
        daemon.holds().place(Scope("L1"), case="C", reason="r", until=None, actor=ALICE)
        daemon.holds_changed()
        (late,) = put(client, locked, f"{NEW}3.wav", b"late")
        e.clock.advance(29)
        daemon.step(None)
        assert daemon.state().sources[0].last_scan != e.clock.now()  # not yet
        e.clock.advance(2)
        daemon.step(None)
        assert daemon.state().sources[0].last_scan == e.clock.now()
        reply = client.get_object_legal_hold(Bucket=locked, Key=f"{NEW}3.wav", VersionId=late)
        assert reply["LegalHold"]["Status"] == "ON"
        snapshot = daemon.snapshot()
        assert snapshot.sources[0].objects is not None
        assert snapshot.sources[0].objects.objects == 2  # the erased key is gone
    finally:
        daemon.stop()


class Answering(Delegating):
    """The real eraser, with what a real store can answer but moto cannot: ``retried`` error
    codes overcome before the delete succeeded, or an exception out of the whole batch."""

    def __init__(self, real: Any, retried: dict[str, int] | None, fails: OSError | None) -> None:
        super().__init__(real)
        self.retried, self.fails = retried, fails

    def erase_many(
        self, jobs: Sequence[EraseJob], *, pattern: Any, verify: bool
    ) -> list[EraseOutcome | EraseError]:
        if self.fails is not None:
            raise self.fails
        out = self.real.erase_many(jobs, pattern=pattern, verify=verify)
        for result in out:
            result.details["retried_errors"] = self.retried
        return list(out)


def test_errors_a_retry_overcame_are_counted_and_a_failed_batch_fails_every_erase(
    estate: Estate, rt: Runtime, client: Any
) -> None:
    b = bucket(estate)
    for n in range(2):
        put(client, b, f"{OLD}{n}.wav", b"x")
    assert scan_all(rt)
    metrics = Metrics(lambda: None)  # type: ignore[arg-type,return-value]
    down = {"archive": Answering(rt.erasers["archive"], None, OSError(5, "Input/output error"))}
    report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, down,
                     telemetry=metrics).run()  # fmt: skip
    assert (report.erased, report.failed) == (0, 2)
    failed = [e["details"]["error"] for e in estate.audit() if e["action"] == "erase.failed"]
    assert failed == ["Input/output error", "Input/output error"]
    busy = {"archive": Answering(rt.erasers["archive"], {"SlowDown": 2}, None)}
    report = Sweeper(estate.config, rt.catalogue, rt.audit, estate.clock, busy,
                     telemetry=metrics).run()  # fmt: skip
    assert report.erased == 2
    slow = metrics.registry.get_sample_value(
        "recd_s3_erase_errors_total", {"source": "archive", "code": "SlowDown"}
    )
    assert slow == 4  # two per key, both keys
