"""recd.service.duty: which sources this node serves, and the scan and sweep leaving the others
alone (real files, real SQLite, real audit log). The owners of one-at-a-time sources are
``Elsewhere`` here: another node holds each one, as ``AdvisoryOwners`` answers when it does
(tests/adapters/postgres/test_owners.py)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from recd.adapters.sqlite.owners import SoleNode
from recd.config.types import CatalogueSettings, Config, SourceConfig
from recd.core.model import State
from recd.core.pgurl import parse_postgres_url
from recd.daemon.runtime import scan_all
from recd.service.duty import Duty, Serving
from recd.service.sweep import Sweeper
from tests.estate import Estate
from tests.service.helpers import rid, states


class Elsewhere:
    """Another node serves every one-at-a-time source; which were asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def serve(self, source: str) -> bool:
        self.asked.append(source)
        return False

    def release(self, source: str) -> None:
        return None

    def close(self) -> None:
        return None


def _with(config: Config, **changes: object) -> Config:
    """``config`` with its one source changed."""
    (source,) = config.sources
    return replace(config, sources=(replace(source, **changes),))  # type: ignore[arg-type]


def test_who_serves_what(estate: Estate) -> None:
    (pbx,) = estate.config.sources
    sources: tuple[SourceConfig, ...] = (
        replace(pbx, name="mine"),
        replace(pbx, name="theirs", nodes=("pbx-b",)),
        replace(pbx, name="nfs", shared=True),
        replace(pbx, name="bucket", type="s3", path=None, bucket="b", nodes=("pbx-a", "pbx-b")),
    )
    config = replace(estate.config, daemon=replace(estate.config.daemon, node="pbx-a"))
    owners = Elsewhere()
    duty = Duty(replace(config, sources=sources), owners)
    served = duty.served(["mine", "theirs", "nfs", "bucket", "gone"])
    assert served == ["mine", "gone"]  # "gone": no such source, the sweep says why it keeps it
    assert owners.asked == ["nfs", "bucket"]  # never for a source every listed node serves
    assert [duty.listed(n) for n in ("mine", "theirs", "nfs", "bucket")] == [
        True,
        False,
        True,
        True,
    ]
    assert Duty(replace(config, sources=sources), SoleNode()).served(["nfs", "bucket"]) == [
        "nfs",
        "bucket",
    ]


def test_an_s3_source_is_erased_by_every_node_it_lists_a_shared_directory_by_one(
    estate: Estate,
) -> None:
    """Keys divide among the nodes by their claims; an NFS file is erased by the one node that
    scans it (another host sees it under another device number)."""
    (pbx,) = estate.config.sources
    sources: tuple[SourceConfig, ...] = (
        replace(pbx, name="mine"),
        replace(pbx, name="nfs", shared=True),
        replace(pbx, name="bucket", type="s3", path=None, bucket="b", nodes=("pbx-a", "pbx-b")),
        replace(pbx, name="their-bucket", type="s3", path=None, bucket="c", nodes=("pbx-b",)),
    )
    config = replace(estate.config, daemon=replace(estate.config.daemon, node="pbx-a"))
    owners = Elsewhere()
    duty = Duty(replace(config, sources=sources), owners)
    names = ["mine", "nfs", "bucket", "their-bucket", "gone"]
    assert [n for n in names if duty.erases(n)] == ["mine", "bucket", "gone"]
    assert owners.asked == ["nfs"]  # the bucket's lister is not asked for: it erases anyway
    assert duty.serving("bucket") is Serving.UNKNOWN


def test_serving_says_what_the_last_answer_was_without_asking(estate: Estate) -> None:
    (pbx,) = estate.config.sources
    sources: tuple[SourceConfig, ...] = (
        replace(pbx, name="mine"),
        replace(pbx, name="theirs", nodes=("pbx-b",)),
        replace(pbx, name="nfs", shared=True),
    )
    config = replace(estate.config, daemon=replace(estate.config.daemon, node="pbx-a"))
    owners = Elsewhere()
    duty = Duty(replace(config, sources=sources), owners)
    names = ["mine", "theirs", "nfs", "gone"]
    assert [duty.serving(n) for n in names] == ["served", "not-listed", "unknown", "served"]
    assert owners.asked == []  # status and metrics never take a source
    duty.served(names)
    assert [duty.serving(n) for n in names] == ["served", "not-listed", "elsewhere", "served"]
    sole = Duty(replace(config, sources=sources), SoleNode())
    sole.served(names)
    assert sole.serving("nfs") is Serving.SERVED


def test_a_source_another_node_holds_is_neither_scanned_nor_swept(estate: Estate) -> None:
    """A shared directory another node serves now: nothing in it is indexed; what an earlier
    run here indexed as due is neither claimed, nor kept with a reason, nor erased."""
    indexed = estate.write("L1/indexed.wav", age_days=31)
    estate.configure(mode="dry-run")
    assert estate.sweep().licences["L1"].would_erase == 1  # indexed while this node served it
    estate.configure(mode="enforce")
    estate.config = _with(estate.config, shared=True)
    unseen = estate.write("L1/unseen.wav", age_days=31)
    rt = estate.runtime()
    rt.owners = owners = Elsewhere()
    try:
        assert scan_all(rt)
        report = Sweeper(
            estate.config, rt.catalogue, rt.audit, estate.clock, rt.erasers, serves=rt.duty.serves
        ).run()
        found = rt.catalogue.get(rid("L1/indexed.wav"))
        assert found is not None and found.skip_reason is None  # not even looked at
    finally:
        rt.close()
    assert owners.asked == ["pbx", "pbx"]  # once by the scan, once by the sweep
    assert indexed.exists() and unseen.exists()
    assert (report.erased, report.licences["L1"].due, report.licences["L1"].kept) == (0, 1, {})
    assert states(estate) == {"L1/indexed.wav": State.PRESENT}
    assert estate.actions() == []


def test_on_a_shared_catalogue_even_a_hosts_own_directory_is_held(
    estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    """Two hosts whose recd.toml files give one directory source name to different nodes
    would index one set of rows from two disks: every source is held on a shared catalogue,
    so the second host leaves it alone and says why, once until the answer changes. A source
    this recd.toml does not have is another host's there, never served here."""
    (pbx,) = estate.config.sources
    sources: tuple[SourceConfig, ...] = (
        replace(pbx, name="mine", nodes=("pbx-a",)),
        replace(pbx, name="theirs", nodes=("pbx-b",)),
    )
    config = replace(
        estate.config,
        daemon=replace(estate.config.daemon, node="pbx-a"),
        catalogue=CatalogueSettings(parse_postgres_url("postgresql://recd@db1/recd", passfile="-")),
        sources=sources,
    )
    owners = Elsewhere()
    duty = Duty(config, owners)
    with caplog.at_level(logging.WARNING, logger="recd.service.duty"):
        assert duty.served(["mine", "theirs", "gone"]) == []
        assert duty.served(["mine", "theirs", "gone"]) == []
    assert not duty.erases("gone")  # not in this recd.toml: another host's source
    assert owners.asked == ["mine", "mine"]  # never "theirs": nodes leaves this node out
    assert [duty.serving(n) for n in ("mine", "theirs")] == ["elsewhere", "not-listed"]
    assert [r.getMessage() for r in caplog.records] == [
        "source mine: this node (pbx-a) leaves it alone while another recd session holds it "
        "or the database cannot be reached: another host's recd.toml may give this source to "
        "another node (give each host's source its own name), or this node's recd before a "
        "restart still holds it until the database notices it gone"
    ]
    sole = Duty(config, SoleNode())
    assert sole.served(["mine", "theirs", "gone"]) == ["mine"]
    assert sole.serving("mine") is Serving.SERVED
