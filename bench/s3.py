"""S3: erase N keys of 3 versions each against moto's server, vs a bare boto3 loop; listing rate.

Both sides run against the same in-process ``ThreadedMotoServer`` on 127.0.0.1, each on its
own bucket holding the same keys (``bench/k00000.wav``... three versions each, 1 KiB). The
buckets are filled through moto's backend directly (setup, untimed: through HTTP it would take
minutes); everything timed goes through HTTP.

- baseline: what an operator's script does with boto3 alone: list every version of the prefix
  (paginated ListObjectVersions), then DeleteObjects in requests of 1,000 versions. It confirms
  nothing and audits nothing.
- recd: a poll (the scan that indexes the keys, timed for the listing rate), then one sweep,
  timed: each batch of 1,000 keys listed in one walk, deleted in requests of 1,000 versions,
  confirmed by a listing, audited (fsync) before and after.

moto copies every version of the bucket on every ListObjectVersions call, so a listing page
costs time in proportion to the bucket, not the page: the ratios measure request counts more
than anything recd does per key. Both sides pay the same price per call.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from typing import Any

from bench.common import S3_PREFIX, ratio, s3_source, timed_scan_and_sweep, workdir, write_recd_toml

PREFIX = S3_PREFIX
MOTO_ACCOUNT = "123456789012"  # moto's default account, whose backend the server serves
VERSIONS = 3


def _fill(backend: Any, bucket: str, keys: int) -> None:
    for i in range(keys):
        for v in range(VERSIONS):
            backend.put_object(bucket, f"{PREFIX}k{i:05d}.wav", b"%d" % v * 1024)


def _baseline(client: Any, bucket: str) -> tuple[float, float, int]:
    """Seconds to list, seconds to list and delete, versions deleted."""
    start = time.perf_counter()
    pairs = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=PREFIX):
        pairs += [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
    listed = time.perf_counter() - start
    for n in range(0, len(pairs), 1000):
        reply = client.delete_objects(Bucket=bucket, Delete={"Objects": pairs[n : n + 1000]})
        assert not reply.get("Errors"), reply["Errors"][:3]
    return listed, time.perf_counter() - start, len(pairs)


class _Ahead:
    """The system clock 40 days on: the keys, written just now, are due at once (their 30 days
    run from LastModified, the last resort for ``started``)."""

    def __init__(self) -> None:
        from recd.adapters.clock import SystemClock

        self._clock = SystemClock()

    def now(self) -> datetime:
        return self._clock.now() + timedelta(days=40)

    def monotonic(self) -> float:
        return self._clock.monotonic()


def _left(client: Any, bucket: str) -> int:
    page = client.list_object_versions(Bucket=bucket, Prefix=PREFIX)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


def run(keys: int) -> dict[str, float]:
    import boto3  # type: ignore[import-untyped]
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        backend = s3_backends[MOTO_ACCOUNT]["aws"]
        for bucket in ("bench-boto3", "bench-recd"):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            _fill(backend, bucket, keys)
        t_list, t_boto3, deleted = _baseline(client, "bench-boto3")
        assert deleted == keys * VERSIONS and _left(client, "bench-boto3") == 0
        with workdir("s3") as base:
            t_scan, t_sweep = timed_scan_and_sweep(
                write_recd_toml(base, s3_source("bench-recd", endpoint)), keys, _Ahead()
            )
        assert _left(client, "bench-recd") == 0
    finally:
        server.stop()
    return {
        "keys": keys,
        "versions": keys * VERSIONS,
        "boto3_list_s": t_list,
        "boto3_list_delete_s": t_boto3,
        "recd_poll_s": t_scan,
        "recd_sweep_s": t_sweep,
        "ratio_erase": ratio(t_boto3, t_sweep),
        "boto3_list_keys_per_s": keys / t_list,
        "recd_poll_keys_per_s": keys / t_scan,
        "ratio_list": ratio(t_list, t_scan),
    }
