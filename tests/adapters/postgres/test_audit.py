"""What is PostgreSQL's own in the audit chain (recd.adapters.postgres.audit): the table in the
catalogue's schema, rows damaged in ways a file cannot be, a server gone or refusing (the
append's ``failure``, as a full disk is the file's), and lines that verify offline. The port
itself: tests/contracts/test_audit.py."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from recd.adapters.postgres.audit import PostgresAuditLog
from recd.adapters.postgres.catalogue import PostgresCatalogue
from recd.core.audit import AuditEntry, to_line
from recd.errors import AuditCorrupt, CatalogueUnreachable, StateError, os_reason
from recd.ports.audit import AuditExtent, AuditLog
from tests import pg
from tests.contracts.chains import NOW, drafts
from tests.pg import PgDatabase, Postgres


@pytest.fixture
def log(pg_database: PgDatabase) -> Iterator[PostgresAuditLog]:
    opened = PostgresAuditLog(pg_database.url)
    yield opened
    opened.close()


def _sql(url: str, statement: str, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(statement.encode(), params)


def _terminate(postgres: Postgres, name: str) -> None:
    """End every session on database ``name``, as a restarted server would."""
    _sql(
        postgres.url(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
        "AND pid <> pg_backend_pid()",
        name,
    )


def _failure(log: PostgresAuditLog) -> OSError | None:
    return log.failure


def _lines(url: str) -> bytes:
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT line FROM audit ORDER BY seq").fetchall()
    return b"".join(bytes(row[0]) for row in rows)


def test_the_table_is_the_catalogues_and_it_has_no_segments(pg_database: PgDatabase) -> None:
    catalogue = PostgresCatalogue(pg_database.url)
    log: AuditLog = PostgresAuditLog(pg_database.url)  # the same schema: migrated once
    try:
        entries = log.append(drafts(2), NOW)
        assert log.segment_files() == [] and log.live_start() == 0
        assert log.extent() == AuditExtent(log.end_offset(), 0) != AuditExtent(0, 0)
        with pytest.raises(FileNotFoundError):
            log.read_segment("audit.log.1-2")
        assert log.last() == entries[-1]
    finally:
        log.close()
        catalogue.close()
    log.close()  # idempotent
    for closed in (lambda: log.append(drafts(1), NOW), lambda: log.append([], NOW), log.last):
        with pytest.raises(ValueError, match="is closed"):
            closed()


def test_an_unreachable_server_is_named_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://alice:s3cret@/ledger?host={tmp_path}&connect_timeout=2"
    with pytest.raises(CatalogueUnreachable) as caught:
        PostgresAuditLog(url)
    message = str(caught.value)
    assert message.startswith(
        f'audit log in database "ledger" on {tmp_path} as user "alice": cannot reach the '
        "database: connection is bad: "
    ), message
    assert "s3cret" not in message and "\n" not in message


def test_an_append_the_server_refuses_is_the_logs_failure_until_one_succeeds(
    postgres: Postgres, pg_database: PgDatabase, log: PostgresAuditLog
) -> None:
    first = log.append(drafts(2), NOW)
    prefix = f'audit log in database "{pg_database.name}" on '
    _terminate(postgres, pg_database.name)  # the connection is lost
    with pytest.raises(OSError, match=f"^\\[Errno {errno.EIO}\\] {prefix}") as lost:
        log.append(drafts(1, start=2), NOW)
    assert _failure(log) is lost.value
    # While the database refuses connections, each try fails and says so.
    _sql(postgres.url(), f'ALTER DATABASE "{pg_database.name}" ALLOW_CONNECTIONS false')
    try:
        _terminate(postgres, pg_database.name)
        with pytest.raises(OSError) as refused:
            log.append(drafts(1, start=2), NOW)
        assert _failure(log) is refused.value
        assert os_reason(refused.value).startswith(prefix)
        assert "not currently accepting connections" in os_reason(refused.value)
        with pytest.raises(CatalogueUnreachable, match=f"^{prefix}.*: cannot reach the database"):
            log.last()
    finally:
        _sql(postgres.url(), f'ALTER DATABASE "{pg_database.name}" ALLOW_CONNECTIONS true')
    later = log.append(drafts(1, start=2), NOW)
    assert _failure(log) is None
    assert [e.seq for e in later] == [3] and later[0].prev == first[-1].hash
    assert list(log.read_all()) == first + later, "nothing of a failed append was stored"


def test_a_table_the_server_refuses_to_read_is_named(
    pg_database: PgDatabase, log: PostgresAuditLog
) -> None:
    _sql(pg_database.url, "DROP TABLE audit")
    prefix = f'^audit log in database "{pg_database.name}" on '
    with pytest.raises(StateError, match=f'{prefix}.*relation "audit" does not exist'):
        list(log.read_all())
    with pytest.raises(OSError, match='relation "audit" does not exist'):
        log.append(drafts(1), NOW)
    assert _failure(log) is not None


def test_details_json_cannot_hold_write_nothing(log: PostgresAuditLog) -> None:
    log.append(drafts(1), NOW)
    bad = drafts(1, start=1)[0]
    with pytest.raises(ValueError):
        log.append([drafts(1, start=2)[0], type(bad)("x", "y", {"nan": float("nan")})], NOW)
    assert log.failure is None
    assert [e.seq for e in log.read_all()] == [1]
    assert log.append(drafts(1, start=1), NOW)[0].seq == 2


def _start(entries: list[AuditEntry], seq: int) -> int:
    """Where entry ``seq`` of ``entries`` begins in the chain."""
    return sum(len(to_line(entry)) for entry in entries[: seq - 1])


def test_a_row_removed_is_a_gap_named_by_seq(
    pg_database: PgDatabase, log: PostgresAuditLog
) -> None:
    entries = log.append(drafts(5), NOW)
    _sql(pg_database.url, "DELETE FROM audit WHERE seq = 3")
    named = f"audit entry 4 at byte {_start(entries, 4)}: "
    with pytest.raises(AuditCorrupt, match=f"{named}sequence jumps from 2 to 4"):
        list(log.read_all())
    with pytest.raises(AuditCorrupt, match=f"{named}entries 3 to 3 are missing"):
        list(log.read_since(3))


def test_a_row_moved_is_refused_naming_it(pg_database: PgDatabase, log: PostgresAuditLog) -> None:
    entries = log.append(drafts(3), NOW)
    _sql(pg_database.url, "UPDATE audit SET pos = pos + 1 WHERE seq = 3")
    at = _start(entries, 3)
    problem = f"audit entry 3 at byte {at + 1}: the entry before it ends at byte {at}"
    with pytest.raises(AuditCorrupt, match=problem):
        list(log.read_all())
    _sql(pg_database.url, "UPDATE audit SET pos = pos - 1, seq = 9 WHERE seq = 3")
    with pytest.raises(AuditCorrupt, match=f"audit entry 9 at byte {at}: the row holds entry 3"):
        log.last()
    with pytest.raises(AuditCorrupt, match="audit entry 9 "):  # not chained after, not a failure
        log.append(drafts(1, start=3), NOW)
    assert log.failure is None
    assert _lines(pg_database.url).count(b"\n") == len(entries), "nothing was appended"


def test_the_lines_in_seq_order_verify_offline_with_the_same_head(
    pg_database: PgDatabase, tmp_path: Path
) -> None:
    writers = [PostgresAuditLog(pg_database.url) for _ in range(2)]
    try:
        for n in range(6):
            writers[n % 2].append(drafts(1 + n % 3, start=10 * n), NOW)
        last = writers[0].last()
    finally:
        for writer in writers:
            writer.close()
    assert last is not None and last.seq == 12
    exported = tmp_path / "audit.jsonl"
    exported.write_bytes(_lines(pg_database.url))
    head = f"{last.seq}:{last.hash}"

    def recctl(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "recd.cli.main", "audit", *argv, "--file", str(exported)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)

    done = recctl("verify", "--expect", head)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == (
        f"{exported}: 12 entries, chain intact, last hash {last.hash}; entry 12 as expected\n"
    )
    done = recctl("head", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"entries": 12, "seq": last.seq, "hash": last.hash}
    exported.write_bytes(exported.read_bytes().replace(b'"H10"', b'"H11"'))
    assert recctl("verify", "--expect", head).returncode != 0, "the check can fail"


def test_a_server_stopped_pauses_appends_and_reads_until_it_is_back(
    stoppable: Postgres, stoppable_database: PgDatabase
) -> None:
    """The same object: appends fail with ``failure`` kept (the daemon pauses erasing), reads
    are unreachable (exit 69), and once the server is back both work on a new connection, the
    chain unbroken."""
    log = PostgresAuditLog(stoppable_database.url)
    try:
        first = log.append(drafts(2), NOW)
        prefix = f'audit log in database "{stoppable_database.name}" on {stoppable.socket_dir} '
        with pg.down(stoppable):
            with pytest.raises(OSError, match="cannot reach the database") as caught:
                log.append(drafts(1, start=2), NOW)
            assert _failure(log) is caught.value
            assert os_reason(caught.value).startswith(prefix)
            for read in (log.last, lambda: list(log.read_all()), log.end_offset):
                with pytest.raises(CatalogueUnreachable, match=f"^{prefix}.*cannot reach the"):
                    read()
        later = log.append(drafts(1, start=2), NOW)
        assert _failure(log) is None
        assert list(log.read_all()) == first + later and later[0].prev == first[-1].hash
    finally:
        log.close()


def test_each_entry_names_the_node_that_appended_it(pg_database: PgDatabase) -> None:
    """Two hosts on one chain: each entry says which wrote it, unless its draft named a node
    itself; the chain verifies offline as any other."""
    a = PostgresAuditLog(pg_database.url, node="pbx-a")
    b = PostgresAuditLog(pg_database.url, node="pbx-b")
    try:
        a.append(drafts(2), NOW)
        b.append(drafts(1, start=2), NOW)
        own = drafts(1, start=3)[0]
        a.append([type(own)(own.action, own.subject, {**own.details, "node": "elsewhere"})], NOW)
        entries = list(b.read_all())
    finally:
        a.close()
        b.close()
    assert [e.details["node"] for e in entries] == ["pbx-a", "pbx-a", "pbx-b", "elsewhere"]
    assert [{k: v for k, v in e.details.items() if k != "node"} for e in entries] == [
        dict(d.details) for d in drafts(4)
    ]
    with PostgresAuditLog(pg_database.url) as default:  # node: the host name by default
        default.append(drafts(1, start=4), NOW)
        last = default.last()
    assert last is not None and last.details["node"] == socket.gethostname()
    command = [sys.executable, "-m", "recd.cli.main", "audit", "verify", "--url", pg_database.url]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.endswith(f": 5 entries, chain intact, last hash {last.hash}\n")
