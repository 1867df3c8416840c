"""Where recordings live for the Source and Eraser contract suites: a directory or a bucket.

A ``Place`` writes, rewrites and removes recordings the way the world does (a PBX writing a
file, a client putting an object version, a person deleting one) without going through recd,
and builds the ``Source`` and ``Eraser`` of that place, typed as their ports. ``PLACES`` names
every kind; a new kind of source (and its eraser) joins the suites by adding its name there and
a branch to ``open_place``. A bucket place needs the moto server of ``tests.s3server``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from recd.adapters.local.directory import DirectorySource
from recd.adapters.local.erase import LocalEraser
from recd.adapters.s3.client import make_client
from recd.adapters.s3.eraser import S3Eraser
from recd.adapters.s3.source import S3Source
from recd.config.types import SourceConfig
from recd.core.classify import ClassifyRule
from recd.ports.eraser import Eraser
from recd.ports.source import Source
from tests.s3server import BucketKind, s3_client

PLACES = ["directory", "s3"]


@dataclass(frozen=True, slots=True)
class Place:
    """One place's source and eraser, and the world's hands on it (``relpath``: name or key)."""

    kind: str
    source: Source
    eraser: Eraser
    write: Callable[[str, bytes], None]
    remove: Callable[[str], None]  # the recording is gone: the file, or every version of a key
    #: Whether a full scan counts what it listed (``Source.last_scan``): S3 yes, files never.
    counts_scans: bool


def open_place(kind: str, request: pytest.FixtureRequest) -> Iterator[Place]:
    """A new, empty place of ``kind``; its eraser is closed at the end."""
    if kind == "directory":
        yield from _directory(request.getfixturevalue("tmp_path"))
    else:
        assert kind == "s3", kind
        yield from _bucket(request.getfixturevalue("s3_endpoint"), request)


def _directory(root: Path) -> Iterator[Place]:
    def write(relpath: str, data: bytes) -> None:
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)

    with contextlib.closing(LocalEraser(root)) as eraser:
        source = DirectorySource("pbx", root)
        yield Place("directory", source, eraser, write, lambda p: (root / p).unlink(), False)


def _bucket(endpoint: str, request: pytest.FixtureRequest) -> Iterator[Place]:
    make_bucket: Callable[[BucketKind], str] = request.getfixturevalue("make_bucket")
    bucket = make_bucket("versioned")
    config = SourceConfig(
        name="archive", type="s3", rule=ClassifyRule(timezone=UTC), bucket=bucket,
        endpoint_url=endpoint, region="us-east-1",
    )  # fmt: skip
    client = make_client(config)
    world = s3_client(endpoint)

    def write(key: str, data: bytes) -> None:
        world.put_object(Bucket=bucket, Key=key, Body=data)

    def remove(key: str) -> None:
        for version in _versions(world, bucket, key):
            world.delete_object(Bucket=bucket, Key=key, VersionId=version)

    with contextlib.closing(S3Eraser("archive", config, client)) as eraser:
        source = S3Source("archive", config, client)
        yield Place("s3", source, eraser, write, remove, True)


def _versions(world: Any, bucket: str, key: str) -> list[str]:
    reply = world.list_object_versions(Bucket=bucket, Prefix=key)
    entries = reply.get("Versions", []) + reply.get("DeleteMarkers", [])
    return [e["VersionId"] for e in entries if e["Key"] == key]
