"""recd.core.backup: segment names and their order, the manifest's round trip, and every problem
a manifest or a copied file can have, said as recctl backup verify prints it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from recd.core.audit import GENESIS
from recd.core.backup import (
    BackupFile,
    Manifest,
    audit_order,
    file_mode,
    file_problems,
    manifest_json,
    manifest_problems,
    parse_manifest,
    segment_range,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64
MANIFEST = Manifest(
    recd_version="1.0",
    created="2026-12-06T07:00:00.000000Z",
    state_dir="/var/lib/recd",
    files=(
        BackupFile("catalog.db", 4096, A),
        BackupFile("audit.log.1-10.gz", 300, B),
        BackupFile("audit.log", 200, C),
    ),
    entries=12,
    seq=12,
    hash=B,
    mark_seq=11,
    mark_hash=C,
)


@pytest.mark.parametrize(
    ("name", "span"),
    [
        ("audit.log.1-10", (1, 10)),
        ("audit.log.11-11.gz", (11, 11)),
        ("audit.log", None),
        ("audit.log.10-1", None),
        ("audit.log.0-3", None),
        ("audit.log.1-10.bz2", None),
        ("audit.log.1-10/../x", None),
        ("catalog.db", None),
    ],
)
def test_segment_range(name: str, span: tuple[int, int] | None) -> None:
    assert segment_range(name) == span


def test_audit_files_are_in_chain_order_with_the_live_log_last_and_a_plain_copy_preferred() -> None:
    names = ["audit.log", "audit.log.101-250.gz", "catalog.db", "audit.log.1-100",
             "audit.log.1-100.gz", "MANIFEST.json", "audit.log.251-300"]  # fmt: skip
    assert audit_order(names) == [
        "audit.log.1-100", "audit.log.101-250.gz", "audit.log.251-300", "audit.log",
    ]  # fmt: skip
    assert audit_order(["audit.log.1-2.gz"]) == ["audit.log.1-2.gz"]


def test_modes_follow_the_state_directory() -> None:
    assert (file_mode("catalog.db"), file_mode("audit.log"), file_mode("MANIFEST.json")) == (
        0o600, 0o640, 0o640,
    )  # fmt: skip


def test_a_manifest_reads_back_as_written_and_says_its_head() -> None:
    data = manifest_json(MANIFEST)
    assert parse_manifest(data) == MANIFEST
    doc = json.loads(data)
    assert doc["audit"] == {"entries": 12, "seq": 12, "hash": B}
    assert doc["catalogue_mark"] == {"seq": 11, "hash": C}
    assert MANIFEST.head == f"12:{B}"
    empty = replace(MANIFEST, entries=0, seq=0, hash=None, mark_seq=None, mark_hash=None)
    assert parse_manifest(manifest_json(empty)) == empty
    assert empty.head == f"0:{GENESIS}"


def edited(change: dict[str, object]) -> bytes:
    doc = json.loads(manifest_json(MANIFEST))
    for key, value in change.items():
        where = doc
        *path, last = key.split(".")
        for part in path:
            where = where[int(part)] if part.isdigit() else where[part]
        where[int(last) if last.isdigit() else last] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff",
         "not JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        (b"[]", "not a JSON object"),
        (edited({"format": 2}), "format 2, this recctl reads 1"),
        (edited({"audit": None}), "audit, catalogue_mark or files missing"),
        (edited({"created": 5}), "created: text expected"),
        (edited({"audit.seq": -1}), "audit.seq: a whole number expected, not -1"),
        (edited({"audit.entries": True}), "audit.entries: a whole number expected, not True"),
        (edited({"audit.hash": "x"}), "audit.hash: a SHA-256 in hex expected, not 'x'"),
        (edited({"files.0": "catalog.db"}), "files[0]: an object expected"),
        (edited({"files.1.name": "../etc/passwd"}),
         "files[1].name: not a file a backup holds: '../etc/passwd'"),
        (edited({"files.2.sha256": None}), "files[2].sha256: a SHA-256 in hex expected, not None"),
        (edited({"files.2.size": "200"}), "files[2].size: a whole number expected, not '200'"),
    ],
)  # fmt: skip
def test_a_manifest_that_cannot_be_read_says_why(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_manifest(data)
    assert str(exc.value) == problem


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        ({}, []),
        ({"files": (*MANIFEST.files, MANIFEST.files[0])}, ["a file is listed twice"]),
        ({"files": MANIFEST.files[1:]}, ["catalog.db is not listed"]),
        ({"entries": 11}, ["audit.entries 11 but the head is seq 12"]),
        ({"hash": None}, [f"head 12:{GENESIS} is not an entry"]),
        ({"mark_seq": 13},
         ["the catalogue's mark (seq 13) is after the copied log's head (seq 12)"]),
    ],
)  # fmt: skip
def test_manifest_problems(change: dict[str, object], problems: list[str]) -> None:
    assert manifest_problems(replace(MANIFEST, **change)) == problems  # type: ignore[arg-type]


def test_file_problems_name_each_file_that_differs_or_does_not_belong() -> None:
    found: dict[str, tuple[int, str] | str] = {
        "catalog.db": (4096, B),
        "audit.log.1-10.gz": (301, B),
        "audit.log": "cannot read it: Permission denied",
    }
    present = ["catalog.db", "audit.log.1-10.gz", "audit.log", "MANIFEST.json", "notes.txt"]
    assert file_problems(MANIFEST, found, present) == [
        f"catalog.db: SHA-256 {B}, the manifest says {A}",
        "audit.log.1-10.gz: 301 bytes, the manifest says 300",
        "audit.log: cannot read it: Permission denied",
        "notes.txt: not in the manifest",
    ]
    whole = {f.name: (f.size, f.sha256) for f in MANIFEST.files}
    assert file_problems(MANIFEST, whole, present[:4]) == []
    assert file_problems(MANIFEST, {}, ["MANIFEST.json"])[0] == "catalog.db: missing"
