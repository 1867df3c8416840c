"""The S3 plumbing (recd.adapters.s3.client): the client ``make_client`` builds, one-line
``S3Error``s of unreachable endpoints, missing credentials and bare HTTP errors, the
Content-MD5 on the wire and against a demanding endpoint (moto behind a WSGI filter
answering ``MissingContentMD5`` as older MinIO and Ceph RGW do), and the streamed
ListObjectVersions continued or refused when a truncated page does not advance.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from recd.adapters.s3.client import S3Error, make_client, s3_error
from recd.adapters.s3.eraser import TRANSIENT, S3Eraser, S3EraseResult
from recd.adapters.s3.source import S3Source
from recd.core.model import ErasePattern
from recd.ports.eraser import EraseError, EraseTarget
from tests.adapters.s3.helpers import (
    ERASE,
    MISSING_MD5,
    NOWHERE,
    _delete_params,
    _entry,
    _list_params,
    _listing,
    _md5,
    config,
    erase_keys,
    listed,
    prepared,
    put,
)
from tests.s3server import bucket_name, s3_client
from tests.tools import free_port

BAD_DIGEST = "The Content-MD5 you specified did not match what we received."


def test_unreachable_endpoint_is_one_line(aws_credentials) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # closed again: nothing listens there
    client = make_client(config("calls", url), max_attempts=0)  # no retries: no backoff
    with pytest.raises(S3Error) as caught:
        list(S3Source("archive", config("calls", url), client).scan())
    assert caught.value.filename == "s3://calls/"
    assert caught.value.code == "EndpointConnection"
    assert caught.value.strerror.startswith(  # type: ignore[union-attr]
        f'EndpointConnection: Could not connect to the endpoint URL: "{url}/calls?'
    )
    eraser = S3Eraser("archive", config("calls", url), client)
    (failed,) = eraser.prepare_many([EraseTarget("a.wav", 0, 0, 1)])
    assert isinstance(failed, S3Error)  # an OSError: the sweep tries again, it refuses nothing
    assert (failed.filename, failed.code) == ("s3://calls/a.wav", "EndpointConnection")
    with pytest.raises(S3Error):
        eraser.locate("a.wav", "tmp", 0, 0)
    with pytest.raises(S3Error) as caught_prepare:
        eraser.prepare("a.wav", 0, 0, 1)
    assert caught_prepare.value.strerror == failed.strerror


def test_missing_credentials(monkeypatch, aws_credentials) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = make_client(config("calls", NOWHERE))
    with pytest.raises(S3Error) as caught:
        S3Eraser("archive", config("calls", NOWHERE), client).bucket_state()
    assert caught.value.strerror == "NoCredentials: Unable to locate credentials"
    assert caught.value.filename == "s3://calls"


def test_content_md5_on_the_wire(s3, client, bucket, record) -> None:
    put(s3, bucket, "a.wav", b"1", b"2")
    sent = record(client, "before-send.s3.DeleteObjects")
    (done,) = erase_keys(S3Eraser("archive", config(bucket), client), "a.wav")
    assert isinstance(done, S3EraseResult)
    (request,) = sent
    assert request.body.startswith(b"<Delete")
    assert request.headers["Content-MD5"].decode() == _md5(request.body)
    assert [name for name in request.headers if name.lower() == "content-md5"] == ["Content-MD5"]
    assert b"content-md5" in request.headers["Authorization"]  # signed with the rest


# -- a demanding endpoint: moto behind a filter that insists on Content-MD5 --------------------


def _demand_md5(app: Any) -> Callable[..., Any]:
    """Answer ``POST ?delete`` without a right Content-MD5 as older MinIO and Ceph RGW do."""

    def filtered(environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        if environ["REQUEST_METHOD"] == "POST" and "delete" in query.split("&"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            given = environ.get("HTTP_CONTENT_MD5")
            if given is None:
                return _xml_error(start_response, "MissingContentMD5", MISSING_MD5)
            if given != _md5(body):
                return _xml_error(start_response, "BadDigest", BAD_DIGEST)
        return app(environ, start_response)

    return filtered


def _xml_error(start_response: Any, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>demanding</HostId></Error>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "application/xml"),
                                       ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]


@pytest.fixture(scope="module")
def demanding_endpoint() -> Iterator[str]:
    app = _demand_md5(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_store_that_demands_content_md5(demanding_endpoint, aws_credentials) -> None:
    plain = s3_client(demanding_endpoint)
    bucket = bucket_name("demanding")
    plain.create_bucket(Bucket=bucket)
    plain.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put(plain, bucket, "a.wav", b"1", b"2")
    put(plain, bucket, "b.wav", b"3")
    objects = [{"Key": "b.wav", "VersionId": v} for v in listed(plain, bucket)["b.wav"]]
    with pytest.raises(ClientError, match="MissingContentMD5"):  # boto3 alone is refused
        plain.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    # recd's eraser on a client without the handler: every pair fails with the request's code
    bare = S3Eraser("archive", config(bucket), s3_client(demanding_endpoint))
    (refused,) = erase_keys(bare, "a.wav")
    assert isinstance(refused, EraseError)
    assert refused.reason == (f"MissingContentMD5: {MISSING_MD5} (2 of 2 versions not deleted)")
    assert refused.codes == {"MissingContentMD5": 2}
    client = make_client(config(bucket, demanding_endpoint))
    a, b = erase_keys(S3Eraser("archive", config(bucket), client), "a.wav", "b.wav")
    assert isinstance(a, S3EraseResult) and isinstance(b, S3EraseResult)
    assert listed(plain, bucket) == {}


def test_a_truncated_listing_that_does_not_advance(stubbed) -> None:
    eraser, stub, _ = stubbed
    stub.add_response("list_object_versions", _listing("a.wav", IsTruncated=True))
    (failed,) = eraser.prepare_many([EraseTarget("a.wav", 0, 0, 1)])
    assert isinstance(failed, S3Error)
    assert failed.strerror == "InvalidListing: a truncated listing did not advance"


def test_a_page_ending_at_a_key_boundary_is_continued_by_key_alone(stubbed) -> None:
    eraser, stub, _ = stubbed
    page = _listing("a", _entry("a1.wav", "x", 0), IsTruncated=True, NextKeyMarker="a1.wav")
    stub.add_response("list_object_versions", page, _list_params("a"))
    stub.add_response(
        "list_object_versions", _listing("a", _entry("a2.wav", "y", 0)),
        _list_params("a", KeyMarker="a1.wav"),
    )  # fmt: skip
    first, second = prepared(eraser, "a1.wav", "a2.wav")
    assert (first.facts.versions[0].version_id, second.facts.versions[0].version_id) == ("x", "y")
    stub.add_response("delete_objects", {}, _delete_params(("a1.wav", "x")))
    stub.add_client_error("list_object_versions", "AccessDenied", "Access Denied", 403)
    with pytest.raises(EraseError) as caught:
        eraser.erase(first, ERASE, pattern=ErasePattern.ZEROS, verify=False, temp_name="t")
    assert caught.value.reason == (
        "deleted, but the confirmation listing failed: AccessDenied: Access Denied; not confirmed"
    )


def test_make_client(aws_credentials) -> None:
    aws = make_client(config("calls", None))
    assert aws.meta.config.s3 == {"addressing_style": "auto"}
    assert aws.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert aws.meta.region_name == "us-east-1"
    local = make_client(config("calls", "http://127.0.0.1:9000"))
    assert local.meta.config.s3 == {"addressing_style": "path"}
    assert local.meta.endpoint_url == "http://127.0.0.1:9000"
    assert (local.meta.config.connect_timeout, local.meta.config.read_timeout) == (10, 60)


def test_s3_error_of_an_error_without_code_or_message() -> None:
    exc = ClientError({"ResponseMetadata": {"HTTPStatusCode": 503}}, "ListObjectVersions")
    err = s3_error(exc, "s3://calls/")
    assert (err.code, err.strerror, str(err)) == (
        "503", "503: HTTP 503", "s3://calls/: 503: HTTP 503",
    )  # fmt: skip
    assert {"SlowDown", "InternalError", "503"} <= TRANSIENT
