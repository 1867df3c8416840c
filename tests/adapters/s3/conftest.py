"""Fixtures of the S3 adapter tests: a plain boto3 client on moto's server, recd's own client
(one per test module, as ``make_client`` builds it) and one for ``Stubber`` that never
connects, a fresh versioned bucket, ``record`` (what a client hands to the handlers of an
event during a test) and ``stubbed`` (an eraser on a stubbed client with its backoff
sleeps). The endpoint, credentials and ``make_bucket`` are tests/s3server.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]

from recd.adapters.s3.client import make_client
from recd.adapters.s3.eraser import S3Eraser
from tests.adapters.s3.helpers import config
from tests.s3server import BucketKind, dummy_credentials, s3_client


@pytest.fixture
def s3(s3_endpoint: str, aws_credentials: None) -> Any:
    """A plain boto3 client to set up and inspect buckets."""
    return s3_client(s3_endpoint)


@pytest.fixture(scope="module")
def client(s3_endpoint: str) -> Iterator[Any]:
    """recd's own client (``make_client``), as the runtime builds it; one for the module (a
    client takes a tenth of a second to build), so handlers are registered through ``record``."""
    with pytest.MonkeyPatch.context() as mp:
        dummy_credentials(mp)
        yield make_client(config("unused", s3_endpoint))


@pytest.fixture(scope="module")
def stub_client() -> Iterator[Any]:
    """A client that never connects, for ``Stubber``."""
    with pytest.MonkeyPatch.context() as mp:
        dummy_credentials(mp)
        yield make_client(config("calls"))


@pytest.fixture
def bucket(make_bucket: Callable[[BucketKind], str]) -> str:
    return make_bucket("versioned")


@pytest.fixture
def record() -> Iterator[Callable[[Any, str], list[Any]]]:
    """``record(client, event)``: what ``client`` hands to handlers of ``event`` (API params,
    or the request sent) during the test."""
    registered: list[tuple[Any, str, Callable[..., None]]] = []

    def start(client: Any, event: str) -> list[Any]:
        seen: list[Any] = []

        def handler(**kwargs: Any) -> None:
            params = kwargs.get("params")
            seen.append(kwargs["request"] if params is None else dict(params))  # as given

        client.meta.events.register(event, handler)
        registered.append((client, event, handler))
        return seen

    yield start
    for client, event, handler in registered:
        client.meta.events.unregister(event, handler)


@pytest.fixture
def stubbed(stub_client) -> Iterator[tuple[S3Eraser, Any, list[float]]]:
    """An eraser on a stubbed client, its Stubber and the backoff sleeps it asked for (its
    random source is the default one)."""
    sleeps: list[float] = []
    eraser = S3Eraser("archive", config("calls"), stub_client, sleep=sleeps.append, retries=2)
    with Stubber(stub_client) as stubber:
        yield eraser, stubber, sleeps
        stubber.assert_no_pending_responses()
