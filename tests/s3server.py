"""A real S3 endpoint on loopback for tests: moto's server, started once per session.

Load it as a pytest plugin (``pytest_plugins = ["tests.s3server"]`` or ``-p tests.s3server``).
``s3_endpoint`` is the URL of a ``ThreadedMotoServer`` on 127.0.0.1 (a free port);
``make_bucket(kind)`` creates a fresh bucket of one kind and returns its name (and, through
``aws_credentials``, puts dummy credentials in the environment). moto copies
every version of a bucket on each ListObjectVersions call, so keep test buckets small.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer

SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
BucketKind = Literal["versioned", "unversioned", "suspended", "locked"]
REGION = "us-east-1"
#: moto accepts any credentials; these keep boto3 from looking for real ones.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_serial = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of one moto S3 server for the whole session (stopped at the end)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # Its threads block the signals recd handles, as recd's own threads do: tests that send
    # recd signals in-process, or check every thread's mask, must not see them taken here.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        server.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # type: ignore[union-attr]  # release the socket


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials in the environment, so recd's ``make_client`` (boto3's usual chain)
    finds them and never the caller's own (nor asks an instance metadata service)."""
    dummy_credentials(monkeypatch)


def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace every ``AWS_*`` variable with dummy credentials (also for wider scopes, through
    ``pytest.MonkeyPatch.context()``)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@functools.cache
def s3_client(url: str) -> Any:
    """A plain boto3 client for setting up and inspecting buckets (not recd's); one per URL,
    as building a client takes a tenth of a second."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
        **CREDENTIALS,
    )


def bucket_name(kind: str) -> str:
    """A unique valid bucket name (3-63 characters, lower case)."""
    return f"recd-{kind}-{next(_serial)}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bucket(s3_endpoint: str, aws_credentials: None) -> Callable[[BucketKind], str]:
    """``make_bucket(kind)`` creates a bucket: "versioned", "unversioned", "suspended"
    (versioning enabled, then suspended) or "locked" (Object Lock, hence versioned)."""
    client = s3_client(s3_endpoint)

    def make(kind: BucketKind) -> str:
        name = bucket_name(kind)
        if kind == "locked":
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
            return name
        client.create_bucket(Bucket=name)
        if kind in ("versioned", "suspended"):
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if kind == "suspended":
            client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Suspended"}
            )
        return name

    return make
