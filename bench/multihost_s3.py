"""recd on several hosts erasing one S3 bucket (issue 18): 1, 2 and 3 real daemons on one
PostgreSQL catalogue and one bucket of moto's server, against a bare boto3 ``delete_objects``
of the same keys, in the same run.

An S3 source is listed by one node at a time but erased by every node its ``nodes`` lists,
each due key by the node that claims it (``recd.service.duty.Duty.erases``). Each run: a
fresh database and a fresh versioned bucket; ``k`` daemons (nodes ``node1``..``nodek``, each
with its own state directory, socket and metrics port) are started on it and have finished
their first poll of the empty bucket; then ``count`` keys (one version each) whose names carry
a start 30 days before one whole second ``T`` (``lead_s`` ahead) are put straight into moto's
backend (setup, untimed), and the node holding the source lists them (``poll = "1s"``) before
``T``. At ``T`` every node sweeps, claiming disjoint batches of the due keys. Time = the last
``erase.done`` entry in the shared audit table - ``T``; ``files_per_s`` = count / time;
``scaling`` = k daemons' rate / 1 daemon's; ``most_by_one_node`` = the busiest node's share of
the ``erase.done`` entries (``details.node``): 1.0 with k > 1 would mean the erasing was not
divided. A sweep claims a batch of 1,000 keys at a time (the S3 eraser's batch): that is the
unit the nodes divide, so ``count`` below 1,000 x k leaves some idle. A node that erased nothing
though a batch was there for it is named in a warning with the gist of its log.

``poll = "1s"`` matters beyond the listing: a node that does not list the source learns of the
deadlines its lister found only when it next wakes (its next poll, rescan or known deadline;
``recd.daemon.waits``). Keys listed while the other nodes sleep towards a later wake-up (here:
an empty catalogue, so the next poll) are erased by the lister alone until then: with
``poll = "1h"`` and the keys listed at start, one node erased all 6,000 of 3 daemons' keys.

``boto3_delete_s`` is the baseline: the same keys, in a bucket of their own, deleted by version
in ``delete_objects`` requests of 1,000 (the listing before, ``boto3_list_s``, not counted:
recd's keys were listed before ``T`` too); ``ratio_boto3`` = its time over recd's.

Every daemon and the baseline talk to ONE in-process ``ThreadedMotoServer`` (one Python
process, its GIL shared with this bench's own polling), so it bounds what more daemons can
gain; and moto copies the whole bucket on every listing, which recd's sweep makes to confirm
each batch, so listings, not deletes, dominate both sides' times.

Counts that must stay 0: ``twice`` (a key with more than one ``erase.done``), ``early`` (an
``erase.intent`` before ``T``), ``left`` (versions or delete markers still in the bucket),
``failed`` (``erase.failed`` entries), ``not_erased`` (still in the catalogue).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import S3_PREFIX, RecdDaemon, pg_query, s3_source, workdir, write_recd_toml
from tests.tools import free_port

logger = logging.getLogger(__name__)
PREFIX = S3_PREFIX
KEY_PATTERN = "^bench/(?P<started>\\d{8}T\\d{6})_(?P<call_id>\\d+)\\.wav$"
RETENTION = timedelta(days=30)
MOTO_ACCOUNT = "123456789012"  # moto's default account, whose backend the server serves
#: Counts of a run that must be 0 (summed over the rounds).
MUST_BE_ZERO = ("not_erased", "twice", "early", "left", "failed")
_buckets = itertools.count(1)


@dataclass(frozen=True)
class Moto:
    """moto's server in this process: its URL, a boto3 client and its backend (to fill a
    bucket without HTTP)."""

    endpoint: str
    client: Any
    backend: Any


class Missing(Exception):
    """moto or boto3 is not installed (``str``: what to install)."""


@contextlib.contextmanager
def moto_server() -> Iterator[Moto]:
    """An in-process moto S3 server on 127.0.0.1: its endpoint URL, a boto3 client and moto's
    backend (to fill buckets without HTTP); dummy credentials in this process's environment,
    which the daemons inherit."""
    try:
        import boto3  # type: ignore[import-untyped]
        from moto.s3.models import s3_backends
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise Missing(f"{exc.name} missing: pip install 'moto[server]' boto3") from exc
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ |= {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line a request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        yield Moto(endpoint, client, s3_backends[MOTO_ACCOUNT]["aws"])
    finally:
        server.stop()


def erase(
    new_database: Callable[[], str],
    count: int,
    ks: Sequence[int],
    *,
    lead_s: float | None = None,
    repeat: int = 1,
) -> dict[str, float]:
    """``count`` keys due at once, erased by each of ``ks`` daemons in turn, and deleted by
    boto3, ``repeat`` rounds (each: every ``k``, then boto3); medians over the rounds as in
    ``bench.multihost.erase``. ``new_database()`` gives the URL of a fresh database."""
    count = max(1, count)
    lead = max(8.0, count / 200) if lead_s is None else lead_s
    runs: dict[int, list[dict[str, float]]] = {k: [] for k in ks}
    lists: list[float] = []
    deletes: list[float] = []
    with moto_server() as moto:
        for _ in range(repeat):
            for k in ks:
                runs[k].append(_erase_with(new_database(), k, count, lead, moto))
            listed, deleted = _boto3(moto.client, moto.backend, count)
            lists.append(listed)
            deletes.append(deleted)
    t_boto3 = statistics.median(deletes)
    row: dict[str, float] = {"keys": count, "rounds": repeat}
    row |= {"boto3_list_s": statistics.median(lists), "boto3_delete_s": t_boto3}
    row |= {"boto3_spread_s": max(deletes) - min(deletes), "boto3_keys_per_s": count / t_boto3}
    from bench.multihost import per_daemons  # not at the top: it imports this module

    row |= per_daemons(runs, repeat, MUST_BE_ZERO, t_boto3, "ratio_boto3")
    return row


def _bucket(client: Any) -> str:
    name = f"bench-multihost-{os.getpid()}-{next(_buckets)}"
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _keys(count: int, due: int) -> list[str]:
    """``count`` key names whose start (in the name) puts their deadline at ``due``."""
    started = (datetime.fromtimestamp(due, UTC) - RETENTION).strftime("%Y%m%dT%H%M%S")
    return [f"{PREFIX}{started}_{n:06d}.wav" for n in range(count)]


def _fill(backend: Any, bucket: str, keys: Sequence[str]) -> None:
    for key in keys:
        backend.put_object(bucket, key, b"x" * 64)


def _boto3(client: Any, backend: Any, count: int) -> tuple[float, float]:
    """Seconds to list ``count`` keys of a bucket of their own, and to delete them by version
    in requests of 1,000 (``delete_objects``), as an operator's script would."""
    bucket = _bucket(client)
    _fill(backend, bucket, _keys(count, math.ceil(time.time())))
    start = time.perf_counter()
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=PREFIX)
    pairs = [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for page in pages
        for v in page.get("Versions", [])
    ]
    listed = time.perf_counter()
    for n in range(0, len(pairs), 1000):
        reply = client.delete_objects(Bucket=bucket, Delete={"Objects": pairs[n : n + 1000]})
        assert not reply.get("Errors"), reply["Errors"][:3]
    deleted = time.perf_counter()
    assert len(pairs) == count and _left(client, bucket) == 0
    return listed - start, deleted - listed


def _left(client: Any, bucket: str) -> int:
    """Versions and delete markers still in ``bucket``."""
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages)


def _say_idle(daemons: Sequence[RecdDaemon], lines: Sequence[bytes], count: int) -> None:
    """Log the gist of each node's log that erased nothing though a batch was there for it."""
    done = (json.loads(line) for line in lines if b'"erase.done"' in line)
    erasing = {entry["details"].get("node") for entry in done}
    for n, daemon in enumerate(daemons, 1):
        if f"node{n}" not in erasing and count > 1000 * (n - 1):
            logger.warning("node%d erased nothing; its log:\n%s", n, _gist(daemon.log))


def _gist(log: Path) -> str:
    """A daemon's log without its lines per key (why a node took no batch, for the reader)."""
    per_key = ("recd.service.sweep: erased ", "recd.service.indexing: scan ")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else ["(no log)"]
    return "\n".join([line for line in lines if not any(k in line for k in per_key)][-40:])


def _erase_with(url: str, k: int, count: int, lead_s: float, moto: Moto) -> dict[str, float]:
    """One run of ``k`` daemons on the database ``url`` and a new bucket (see the module)."""
    client = moto.client
    bucket = _bucket(client)
    from bench.multihost import audited, wait_scanned  # not at the top: it imports this module

    with workdir(f"multihost-s3-{k}") as base, contextlib.ExitStack() as stack:
        daemons = []
        for n in range(1, k + 1):
            node_base, port = base / f"node{n}", free_port()
            extra = f'poll = "1s"\npattern = \'{KEY_PATTERN}\'\nstarted_format = "%Y%m%dT%H%M%S"\n'
            config = write_recd_toml(
                node_base, s3_source(bucket, moto.endpoint, extra), metrics_port=port,
                catalogue_url=url, node=f"node{n}",
            )  # fmt: skip
            daemons.append(stack.enter_context(RecdDaemon(config, node_base, port, url)))
        for daemon in daemons:
            wait_scanned(daemon)
        due = math.ceil(time.time() + lead_s)
        _fill(moto.backend, bucket, _keys(count, due))
        leader = daemons[0]
        while leader.recordings() < count and time.time() < due:
            time.sleep(0.1)
        indexed_margin = due - time.time()
        end = due + 120.0 + count / 20
        while leader.recordings() > 0 and time.time() < end:
            time.sleep(0.2)
        left = leader.recordings()
        audited(url, count, end)
        lines = [bytes(line) for (line,) in pg_query(url, "SELECT line FROM audit ORDER BY seq")]
        codes = [daemon.stop() for daemon in daemons]
        _say_idle(daemons, lines, count)
    intents: list[float] = []
    done: Counter[str] = Counter()  # subject -> erase.done entries
    done_by: Counter[str] = Counter()  # node -> erase.done entries
    last = math.nan
    failed = 0
    for line in lines:
        entry = json.loads(line)
        when = datetime.fromisoformat(entry["time"]).timestamp()
        if entry["action"] == "erase.intent":
            intents.append(when)
        elif entry["action"] == "erase.failed":
            failed += 1
        elif entry["action"] == "erase.done":
            done[entry["subject"]] += 1
            done_by[entry["details"].get("node", "")] += 1
            last = when if math.isnan(last) else max(last, when)
    return {
        "erase_s": last - due,
        "files_per_s": count / (last - due),
        "first_intent_s": min(intents, default=math.nan) - due,
        "indexed_margin_s": indexed_margin,  # > 0: all listed and indexed before the deadline
        "erased": len(done),
        "not_erased": left,
        "twice": sum(done.values()) - len(done),
        "early": sum(when < due for when in intents),
        "left": _left(client, bucket),
        "failed": failed,
        "nodes_erasing": len(done_by),
        "most_by_one_node": max(done_by.values(), default=0) / count,
        "exit_max": float(max(c if c is not None else -1 for c in codes)),
    }
