"""`recd` as a real daemon process on a real S3 HTTP endpoint (moto's server on 127.0.0.1).

A versioned bucket: a recording indexed before its deadline is erased, every version and delete
marker of exactly its key, within seconds of the deadline; one written already overdue is
erased within seconds of the next poll; neighbours (``a.wav.meta``, ``a.wav2``) keep every
version; the audit log, ``recctl status`` and the metrics tell the story.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests import tools
from tests.e2e.helpers import (
    audit_entries,
    env,
    recctl,
    scrape,
    start_daemon,
    stop_daemon,
    wait_until,
)
from tests.fakes import NotifyListener
from tests.s3server import s3_client
from tests.tools import free_port

CONFIG = """\
[daemon]
state_dir = "{base}/state"
socket = "{base}/recd.sock"

[metrics]
listen = "127.0.0.1:{port}"

[erase]
settle = "1s"

[[source]]
name = "archive"
type = "s3"
bucket = "{bucket}"
prefix = "tenants/"
endpoint_url = "{endpoint}"
region = "us-east-1"
poll = "2s"
pattern = '^tenants/(?P<licence>[^/]+)/(?P<started>\\d{{8}}T\\d{{6}})_(?P<call_id>\\d+)\\.wav$'
started_format = "%Y%m%dT%H%M%S"
"""

RETENTION = timedelta(days=30)


def key_due_at(deadline: datetime, call_id: int) -> str:
    started = (deadline - RETENTION).strftime("%Y%m%dT%H%M%S")
    return f"tenants/L1/{started}_{call_id}.wav"


def versions_of(client: Any, bucket: str, key: str) -> list[str]:
    """Every version id and delete marker of exactly ``key``."""
    page = client.list_object_versions(Bucket=bucket, Prefix=key)
    found = [v for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if v["Key"] == key]
    return [v["VersionId"] for v in found]


def test_the_daemon_erases_every_version_of_due_keys_and_nothing_else(
    tmp_path: Path, s3_endpoint: str, make_bucket: Any, listener: NotifyListener
) -> None:
    # Credentials reach the daemon as on a real host: boto3's usual chain, here the
    # environment (make_bucket puts dummy ones there).
    bucket = make_bucket("versioned")
    client = s3_client(s3_endpoint)
    base = tmp_path
    (base / "licences.d").mkdir()
    (base / "licences.d" / "l1.toml").write_text('id = "L1"\nname = "One"\nretention = "30d"\n')
    port = free_port()
    config = base / "recd.toml"
    config.write_text(CONFIG.format(base=base, port=port, bucket=bucket, endpoint=s3_endpoint))
    # Whole seconds: the key holds the start time to the second.
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    soon = key_due_at(deadline, 1)
    for n in range(3):  # three versions, then a delete marker on top
        client.put_object(Bucket=bucket, Key=soon, Body=b"v%d" % n)
    client.delete_object(Bucket=bucket, Key=soon)
    neighbours = [soon + ".meta", soon[:-4] + ".wav2"]
    for key in neighbours:
        client.put_object(Bucket=bucket, Key=key, Body=b"keep")
        client.put_object(Bucket=bucket, Key=key, Body=b"keep again")
    later = key_due_at(datetime.now(UTC) + timedelta(days=3), 2)
    client.put_object(Bucket=bucket, Key=later, Body=b"not yet")

    proc = start_daemon(config, listener, base / "recd.log")
    try:
        listener.wait_for("READY=1", timeout=60)
        wait_until("the first poll", lambda: _indexed(base) >= 2, timeout=30)
        wait_until("the deadline", lambda: versions_of(client, bucket, soon) == [], timeout=30)
        erased_at = datetime.now(UTC)
        assert erased_at - deadline < timedelta(seconds=4), "erased within seconds of it"
        for key in neighbours:
            assert len(versions_of(client, bucket, key)) == 2, f"{key} must keep every version"
        assert len(versions_of(client, bucket, later)) == 1

        # Written already overdue: erased within seconds of the next poll (poll = 2s).
        overdue = key_due_at(datetime.now(UTC) - timedelta(hours=1), 3)
        client.put_object(Bucket=bucket, Key=overdue, Body=b"late")
        written = time.monotonic()
        wait_until("the next poll", lambda: versions_of(client, bucket, overdue) == [],
                   timeout=30)  # fmt: skip
        assert time.monotonic() - written < 2 + 1 + 5  # poll, settle, and a margin

        status = recctl("--socket", str(base / "recd.sock"), "status", "--json")
        assert status.returncode == 0, status.stderr
        (archive,) = json.loads(status.stdout)["sources"]
        assert (archive["name"], archive["type"], archive["watch"]) == ("archive", "s3", "poll")
        code, text = scrape(port)
        assert code == 200
        assert 'recd_s3_objects{source="archive"}' in text
        assert "recd_overdue_recordings 0.0" in text
        _promtool(text)
    finally:
        stop_daemon(proc, listener)

    log = (base / "recd.log").read_text()
    assert "source archive: bucket " + bucket + ": versioned, no Object Lock" in log
    done = [e for e in audit_entries(base) if e["action"] == "erase.done"]
    assert {e["details"]["location"] for e in done} == {
        f"s3://{bucket}/{soon}", f"s3://{bucket}/{overdue}",
    }  # fmt: skip
    first = next(e for e in done if e["details"]["key"] == soon)["details"]
    assert first["method"] == "s3-delete"
    assert first["effective"] is False
    assert (first["deleted_versions"], first["deleted_delete_markers"]) == (3, 1)
    assert first["confirmed"]["remaining"] == 0
    assert len(first["versions"]) == 4
    verified = recctl("audit", "verify", "--file", str(base / "state" / "audit.log"))
    assert verified.returncode == 0, verified.stderr


def _indexed(base: Path) -> int:
    import sqlite3

    db = base / "state" / "catalog.db"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (n,) = conn.execute("SELECT count(*) FROM recordings").fetchone()
    return int(n)


def _promtool(text: str) -> None:
    promtool = tools.optional("promtool")
    if promtool is None:
        return  # tests/daemon/test_metrics.py skips, naming the package, where promtool is required
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False,
        env=env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
