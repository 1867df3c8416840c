"""`recctl audit verify|head|ls|export --url` (recd.cli.audittable): the chain in the audit table
of a real PostgreSQL database (tests/pg.py), filled by the daemon's own PostgresAuditLog, reads
and checks exactly as the same chain in an audit.log written by FileAuditLog; a damaged or
missing row is named by seq and byte; every way --url can fail is one line with its exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.adapters.postgres.audit import PostgresAuditLog
from recd.cli import audittable
from recd.core.audit import AuditDraft, AuditEntry, to_line
from recd.errors import ExitCode, Unavailable
from tests.cli.helpers import run, usage
from tests.contracts.chains import NOW, drafts
from tests.pg import PgDatabase

#: The batches both logs append: several, as daemons commit them.
BATCHES = [
    drafts(3),
    [AuditDraft("erase.done", "rec-1", {"size": 10})],
    drafts(2, start=3),
]
PASSFILE = (
    "put the password in a password file instead: ~/.pgpass, or PGPASSFILE=FILE in recctl's "
    "environment, or passfile=FILE in the URL's query"
)


@dataclass(frozen=True)
class Twins:
    """One chain twice: in the database's audit table and in an audit.log file."""

    url: str
    name: str  # how recctl names the table
    file: Path
    entries: list[AuditEntry]


def _fill(url: str, file: Path, batches: list[list[AuditDraft]]) -> list[AuditEntry]:
    """The batches appended to the table by node "pbx-a", and to the file as that node
    wrote them (its name in each entry's details)."""
    table = PostgresAuditLog(url, node="pbx-a")
    written: list[AuditEntry] = []
    try:
        with FileAuditLog.open(file, NOW) as log:
            for batch in batches:
                written += table.append(batch, NOW)
                signed = [replace(d, details={**d.details, "node": "pbx-a"}) for d in batch]
                assert log.append(signed, NOW) == written[-len(batch) :]
    finally:
        table.close()
    return written


@pytest.fixture
def twins(pg_database: PgDatabase, tmp_path: Path) -> Twins:
    file = tmp_path / "state" / "audit.log"
    file.parent.mkdir()
    entries = _fill(pg_database.url, file, BATCHES)
    where = pg_database.url.split("host=")[1].split("&")[0]
    name = f'audit table of database "{pg_database.name}" on {where} as user "recd"'
    return Twins(pg_database.url, name, file, entries)


def _sql(url: str, statement: str, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(statement.encode(), params)


def _start(entries: list[AuditEntry], seq: int) -> int:
    """Where entry ``seq`` begins in the chain: the bytes of the entries before it."""
    return sum(len(to_line(entry)) for entry in entries[: seq - 1])


def test_verify_and_head_print_what_they_print_for_the_file(capsys, twins):
    for argv in (["verify"], ["head"]):
        from_file = run(capsys, "audit", *argv, "--file", str(twins.file))
        from_table = run(capsys, "audit", *argv, "--url", twins.url)
        assert from_file[0] == from_table[0] == ExitCode.OK
        assert from_table[1] == from_file[1].replace(str(twins.file), twins.name, 1)
        assert from_table[2] == from_file[2] == ""
    last = twins.entries[-1]
    assert run(capsys, "audit", "head", "--url", twins.url) == (
        ExitCode.OK,
        f"{twins.name}: 6 entries, chain intact; head 6:{last.hash}\n",
        "",
    )
    assert run(capsys, "audit", "head", "--json", "--url", twins.url) == run(
        capsys, "audit", "head", "--json", "--file", str(twins.file)
    )


@pytest.mark.parametrize(
    "options",
    [[], ["--json"], ["--action", "erase.*"], ["--since", "2026-11-23T12:00:00Z", "--json"]],
)
def test_ls_lists_what_it_lists_for_the_file(capsys, twins, options):
    from_table = run(capsys, "audit", "ls", *options, "--url", twins.url)
    assert from_table == run(capsys, "audit", "ls", *options, "--file", str(twins.file))
    assert from_table[0] == ExitCode.OK and "rec-1" in from_table[1]


def test_the_table_is_read_a_page_at_a_time(capsys, twins, monkeypatch):
    monkeypatch.setattr(audittable, "PAGE", 2)  # 6 rows: three pages, and an empty fetch
    expected = run(capsys, "audit", "verify", "--file", str(twins.file))[1]
    assert run(capsys, "audit", "verify", "--url", twins.url)[1] == expected.replace(
        str(twins.file), twins.name, 1
    )
    assert run(capsys, "audit", "ls", "--url", twins.url)[1].count("hold.placed") == 5


def test_expect_holds_and_finds_a_cut_tail(capsys, twins):
    third, last = twins.entries[2], twins.entries[-1]
    assert run(capsys, "audit", "verify", "--url", twins.url, "--expect", f"3:{third.hash}") == (
        ExitCode.OK,
        f"{twins.name}: 6 entries, chain intact, last hash {last.hash}; entry 3 as expected\n",
        "",
    )
    _sql(twins.url, "DELETE FROM audit WHERE seq = 6")
    assert run(capsys, "audit", "verify", "--url", twins.url, "--expect", f"6:{last.hash}") == (
        ExitCode.FAILED,
        "",
        f"recctl: {twins.name}: the log ends at seq 5, before the expected entry 6: its tail "
        "was cut\n",
    )
    code, _, err = run(capsys, "audit", "verify", "--url", twins.url, "--expect", "3:zz")
    assert (code, err) == (
        ExitCode.USAGE,
        'recctl: --expect: HASH is not a SHA-256 hash (64 hex digits): "3:zz" (give SEQ:HASH '
        "as `recctl audit head` prints it)\n",
    )


def test_a_changed_line_is_named_by_seq_and_byte_as_in_the_file(capsys, twins):
    line = to_line(twins.entries[3])
    forged = line.replace(b'"size":10', b'"size":99')
    assert forged != line
    _sql(twins.url, "UPDATE audit SET line = %s WHERE seq = 4", forged)
    twins.file.write_bytes(twins.file.read_bytes().replace(line, forged))
    at = _start(twins.entries, 4)
    _, _, file_error = run(capsys, "audit", "verify", "--file", str(twins.file))
    reason = file_error.split("(line 4): ", 1)[1]
    for command in ("verify", "head"):
        assert run(capsys, "audit", command, "--url", twins.url) == (
            ExitCode.FAILED,
            "",
            f"recctl: {twins.name}: entry 4 (byte {at}): {reason}",
        )


def test_a_row_missing_or_misplaced_is_named(capsys, twins):
    _sql(twins.url, "UPDATE audit SET pos = pos + 1 WHERE seq = 5")
    at = _start(twins.entries, 5)
    assert run(capsys, "audit", "verify", "--url", twins.url)[1:] == (
        "",
        f"recctl: {twins.name}: entry 5 (byte {at}): its row says it begins at byte {at + 1}, "
        f"but the entries before it end at byte {at}\n",
    )
    _sql(twins.url, "DELETE FROM audit WHERE seq = 2")
    at = _start(twins.entries, 2)
    for command in ("verify", "ls"):
        assert run(capsys, "audit", command, "--url", twins.url) == (
            ExitCode.FAILED,
            "",
            f"recctl: {twins.name}: entry 2 (byte {at}): missing: the row after entry 1 is seq 3\n",
        )


def test_ls_refuses_a_line_that_does_not_parse(capsys, twins):
    _sql(twins.url, "UPDATE audit SET line = %s WHERE seq = 3", b"{not json\n")
    at = _start(twins.entries, 3)
    code, out, err = run(capsys, "audit", "ls", "--url", twins.url)
    assert (code, out) == (ExitCode.FAILED, "")
    assert err.startswith(f"recctl: {twins.name}: entry 3 (byte {at}): ")
    assert err.endswith(" (run `recctl audit verify` with the same --url)\n")


def test_export_writes_the_file_the_daemon_would_have_written(capsys, twins, tmp_path):
    out = tmp_path / "audit.jsonl"
    last = twins.entries[-1]
    assert run(capsys, "audit", "export", "--file", str(out), "--url", twins.url) == (
        ExitCode.OK,
        f"{out}: 6 entries exported from {twins.name}, chain intact; head 6:{last.hash}\n",
        "",
    )
    assert out.read_bytes() == twins.file.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    assert run(capsys, "audit", "verify", "--file", str(out))[1] == (
        f"{out}: 6 entries, chain intact, last hash {last.hash}\n"
    )


def test_an_export_of_a_damaged_table_writes_nothing(capsys, twins, tmp_path):
    _sql(twins.url, "UPDATE audit SET line = %s WHERE seq = 2", to_line(twins.entries[2]))
    out = tmp_path / "out" / "audit.jsonl"
    out.parent.mkdir()
    code, _, err = run(capsys, "audit", "export", "--file", str(out), "--url", twins.url)
    assert code == ExitCode.FAILED
    assert err.startswith(f"recctl: {twins.name}: entry ")
    assert list(out.parent.iterdir()) == []


def test_the_chain_is_read_in_one_snapshot(twins):
    with audittable.opened(twins.url) as chain:
        before = chain.checked().result
        appender = PostgresAuditLog(twins.url)  # a daemon, committing meanwhile
        try:
            assert [e.seq for e in appender.append(drafts(2, start=9), NOW)] == [7, 8]
        finally:
            appender.close()
        assert chain.checked().result == before  # appended meanwhile: not in this snapshot
        assert [seq for seq, _ in chain.entries()] == [1, 2, 3, 4, 5, 6]
    with audittable.opened(twins.url) as chain:
        assert chain.checked().result.entries == 8


def test_an_empty_table_is_an_empty_chain(capsys, pg_database):
    PostgresAuditLog(pg_database.url).close()  # the schema, no entry
    code, out, _ = run(capsys, "audit", "head", "--json", "--url", pg_database.url)
    assert (code, json.loads(out)) == (ExitCode.OK, {"entries": 0, "seq": 0, "hash": "0" * 64})


def test_a_database_without_the_table_is_named(capsys, pg_database):
    code, out, err = run(capsys, "audit", "verify", "--url", pg_database.url)
    assert (code, out) == (ExitCode.FAILED, "")
    assert err.startswith(f'recctl: audit table of database "{pg_database.name}" on ')
    assert err.endswith(
        ": there is no audit table (is this recd's database? recd creates it when it first "
        "starts with [catalogue] url)\n"
    )


def test_an_unreachable_server_is_one_line_exit_69(capsys, tmp_path):
    url = f"postgresql://alice@/ledger?host={tmp_path}&connect_timeout=2"
    code, out, err = run(capsys, "audit", "verify", "--url", url)
    assert (code, out) == (ExitCode.UNAVAILABLE, "")
    assert err.startswith(
        f'recctl: --url: cannot connect to database "ledger" on {tmp_path} as user "alice": '
    )
    assert err.count("\n") == 1 and "No such file or directory" in err


@pytest.mark.parametrize(
    "url",
    ["postgresql://alice:s3cret@db1/ledger", "postgresql://db1/ledger?password=s3cret"],
)
def test_a_password_in_the_url_is_refused_unshown(capsys, url, tmp_path):
    for argv in (["verify"], ["export", "--file", str(tmp_path / "out.jsonl")]):
        assert run(capsys, "audit", *argv, "--url", url) == (
            ExitCode.USAGE,
            "",
            f"recctl: --url: must not hold a password: {PASSFILE}\n",
        )
    assert not (tmp_path / "out.jsonl").exists()


def test_a_url_of_another_shape_is_refused(capsys):
    assert run(capsys, "audit", "head", "--url", "mysql://db1/recd") == (
        ExitCode.USAGE,
        "",
        "recctl: --url: must be a PostgreSQL URL starting with postgresql:// or postgres://, "
        'such as "postgresql://recd@db1.example.com/recd", got "mysql://"\n',
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--file", "x", "--url", "postgresql:///r"], "argument --url: not allowed "
         "with argument --file"),
        (["ls", "--url", "postgresql:///r", "--file", "x"], "argument --file: not allowed "
         "with argument --url"),
        (["export", "--file", "o", "--from", "x", "--url", "postgresql:///r"], "argument "
         "--url: not allowed with argument --from"),
    ],
)  # fmt: skip
def test_url_and_a_file_together_are_a_usage_error(capsys, argv, message):
    assert run(capsys, "audit", *argv) == (
        ExitCode.USAGE,
        "",
        usage(f"audit {argv[0]}", message),
    )


def test_without_psycopg_the_url_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` finds uninstalled
    for argv in (["verify"], ["export", "--file", str(tmp_path / "out.jsonl")]):
        assert run(capsys, "audit", *argv, "--url", "postgresql://db1/recd") == (
            ExitCode.UNAVAILABLE,
            "",
            "recctl: --url: reading the audit table needs psycopg, which is not installed: "
            "pip install 'recd[postgres]'\n",
        )


def _recctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recd.cli.main", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_recctl_as_a_process_verifies_and_exports_the_table(twins, tmp_path):
    last = twins.entries[-1]
    done = _recctl("audit", "verify", "--url", twins.url, "--expect", f"6:{last.hash}")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"{twins.name}: 6 entries, chain intact, last hash {last.hash}; entry 6 as expected\n",
        "",
    )
    out = tmp_path / "audit.jsonl"
    done = _recctl("audit", "export", "--file", str(out), "--url", twins.url)
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_bytes() == twins.file.read_bytes()


def test_recctl_loads_psycopg_only_for_url(log_path):
    probe = (
        "import sys\nfrom recd.cli.main import main\n"
        f"code = main(['audit', 'verify', '--file', {str(log_path)!r}])\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported without --url'\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_user_not_allowed_to_read_the_table_exits_77(capsys, twins, pg_database):
    role = f"auditor_{pg_database.name}"  # roles belong to the server: one per test database
    _sql(twins.url, f'CREATE ROLE "{role}" LOGIN')
    try:
        url = twins.url.replace("user=recd", f"user={role}")
        name = twins.name.replace('user "recd"', f'user "{role}"')
        assert run(capsys, "audit", "verify", "--url", url) == (
            ExitCode.NO_PERMISSION,
            "",
            f"recctl: {name}: permission denied for table audit (grant SELECT on it)\n",
        )
    finally:
        _sql(twins.url, f'DROP ROLE "{role}"')


def test_a_server_lost_during_the_read_is_one_line_exit_69(capsys, twins, pg_database):
    with audittable.opened(twins.url) as chain:
        assert chain.checked().result.entries == 6
        _sql(
            twins.url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()",
            pg_database.name,
        )
        with pytest.raises(Unavailable) as lost:
            chain.checked()
    message = str(lost.value)
    assert message.startswith(f"{twins.name}: cannot read it: ")
    assert "\n" not in message and lost.value.exit_code == ExitCode.UNAVAILABLE


def test_the_snapshot_is_read_only(twins):
    with audittable.opened(twins.url) as chain:
        chain.checked()
        shown = chain._db.execute("SHOW transaction_isolation").fetchone()
        read_only = chain._db.execute("SHOW transaction_read_only").fetchone()
    assert (shown, read_only) == (("repeatable read",), ("on",))
