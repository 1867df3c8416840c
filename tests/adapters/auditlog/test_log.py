"""FileAuditLog (recd.adapters.auditlog.log) on real files: opening and its lock, durable appends
and a failed write cut back, repairing a torn tail, and ``read_from`` on the live log. Rotation:
test_rotate.py; reading across segments: test_chain.py; the file steps: test_files.py."""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.auditlog.log import FileAuditLog
from recd.core.audit import GENESIS, AuditDraft, from_line, to_line, verify
from recd.core.times import format_time
from recd.errors import AuditCorrupt, StateError
from tests import tools

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def drafts(n: int, start: int = 0) -> list[AuditDraft]:
    return [AuditDraft("erase.done", f"pbx1:{i}.wav", {"size": i}) for i in range(start, start + n)]


@pytest.fixture
def log(path: Path) -> Iterator[FileAuditLog]:
    with FileAuditLog.open(path, NOW) as opened:
        yield opened


def verified(path: Path) -> int:
    with path.open("rb") as file:
        result = verify(file)
    assert result.ok, result
    return result.entries


# opening ----------------------------------------------------------------------------------------


def test_a_new_log_is_empty_and_readable_by_the_admin_group_only(path: Path):
    old = os.umask(0o077)
    try:
        with FileAuditLog.open(path, NOW) as log:
            assert log.last() is None
            assert log.end_offset() == 0
            assert list(log.read_from(0)) == []
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b""


def test_an_existing_log_keeps_its_mode(path: Path):
    path.touch(mode=0o600)
    with FileAuditLog.open(path, NOW):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_open_reports_a_missing_directory(tmp_path: Path):
    path = tmp_path / "missing" / "audit.log"
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(path, NOW)
    assert str(exc.value) == f"{path}: cannot open the audit log: No such file or directory"


def test_open_reports_a_directory_in_the_way(tmp_path: Path):
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(tmp_path, NOW)
    assert str(exc.value) == f"{tmp_path}: cannot open the audit log: Is a directory"


def test_a_second_open_is_refused_while_the_first_holds_the_log(path: Path):
    first = FileAuditLog.open(path, NOW)
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(path, NOW)
    assert str(exc.value) == f"{path}: in use by another recd process"
    first.close()
    with FileAuditLog.open(path, NOW) as again:
        assert again.last() is None


def test_another_process_cannot_open_the_log(path: Path):
    holder = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        from recd.adapters.auditlog.log import FileAuditLog
        log = FileAuditLog.open(Path({str(path)!r}), datetime.now(UTC))
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"locked\n"
        with pytest.raises(StateError) as exc:
            FileAuditLog.open(path, NOW)
        assert str(exc.value) == f"{path}: in use by another recd process"
    finally:
        proc.communicate(b"")
    assert proc.returncode == 0
    with FileAuditLog.open(path, NOW):
        pass


def test_close_is_idempotent_and_releases_the_lock(path: Path):
    log = FileAuditLog.open(path, NOW)
    log.close()
    log.close()
    with FileAuditLog.open(path, NOW):
        pass


# appending --------------------------------------------------------------------------------------


def test_append_seals_a_chain_and_writes_exactly_its_lines(path: Path, log: FileAuditLog):
    first = log.append(drafts(2), NOW)
    second = log.append([AuditDraft("hold.placed", "H1", {"case": "C1"}, actor="alice")], NOW)
    assert [e.seq for e in first + second] == [1, 2, 3]
    assert [e.prev for e in first + second] == [GENESIS, first[0].hash, first[1].hash]
    assert {e.time for e in first + second} == {"2026-11-23T12:00:00.000000Z"}  # NOW
    assert second[0].actor == "alice"
    assert log.last() == second[0]
    data = b"".join(to_line(e) for e in first + second)
    assert path.read_bytes() == data
    assert log.end_offset() == len(data)


def test_an_empty_batch_writes_nothing(path: Path, log: FileAuditLog):
    assert log.append([], NOW) == []
    assert log.last() is None
    assert path.read_bytes() == b""


def test_entries_survive_reopening_and_the_chain_continues(path: Path):
    with FileAuditLog.open(path, NOW) as log:
        written = log.append(drafts(3), NOW)
        end = log.end_offset()
    with FileAuditLog.open(path, NOW + timedelta(hours=1)) as log:
        assert log.last() == written[-1]
        assert log.end_offset() == end
        more = log.append(drafts(1, start=3), NOW + timedelta(hours=1))
    assert (more[0].seq, more[0].prev) == (4, written[-1].hash)
    assert verified(path) == 4


def test_details_json_cannot_hold_write_nothing(path: Path, log: FileAuditLog):
    log.append(drafts(1), NOW)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        log.append([*drafts(1), AuditDraft("x", "y", {"bad": float("nan")})], NOW)
    assert path.read_bytes() == before
    assert log.append(drafts(1), NOW)[0].seq == 2


@pytest.fixture
def file_size_limit() -> Iterator[None]:
    """Lets a test lower RLIMIT_FSIZE; a write past it fails with EFBIG (SIGXFSZ ignored)."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)


def failure(log: FileAuditLog) -> OSError | None:
    """``log.failure`` afresh (an assert on it must not narrow its type for later lines)."""
    return log.failure


@pytest.mark.usefixtures("file_size_limit")
def test_a_failed_write_is_cut_back_and_the_chain_does_not_advance(path: Path, log: FileAuditLog):
    kept = log.append(drafts(1), NOW)
    end = log.end_offset()
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    # The kernel writes up to the limit (a short write), then refuses the rest with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (end + 100, hard))
    with pytest.raises(OSError) as exc:
        log.append(drafts(5, start=1), NOW)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard))
    assert exc.value.errno == errno.EFBIG
    assert log.failure is exc.value  # the daemon pauses erasing on it
    assert path.stat().st_size == end
    assert (log.end_offset(), log.last()) == (end, kept[0])
    assert log.append(drafts(1, start=1), NOW)[0].seq == 2
    assert failure(log) is None  # a successful append ends the outage
    assert verified(path) == 2


def test_a_write_that_cannot_be_undone_stops_further_appends():
    # /dev/full refuses every write (ENOSPC) and cannot be truncated (EINVAL).
    log = FileAuditLog.open(Path("/dev/full"), NOW)
    try:
        with pytest.raises(OSError) as exc:
            log.append(drafts(1), NOW)
        assert exc.value.errno == errno.ENOSPC
        with pytest.raises(StateError) as refused:
            log.append(drafts(1), NOW)  # the cut back is tried again first, and fails again
        assert log.failure is exc.value  # the write's error, not the cut's
        assert str(refused.value) == (
            "/dev/full: an append failed and could not be undone (Invalid argument); "
            "restart recd to repair the log"
        )
        assert log.last() is None
    finally:
        log.close()


@pytest.mark.root
def test_a_log_that_cannot_be_cut_back_takes_appends_again_once_it_can(
    log: FileAuditLog, path: Path
):
    """``chattr +i`` refuses the write and the cut back (EPERM): appends stop with one line
    naming the log; once the flag is cleared the next append cuts back first and goes on."""
    chattr = tools.need("chattr")
    log.append(drafts(1), NOW)
    subprocess.run([chattr, "+i", str(path)], check=True)
    try:
        with pytest.raises(OSError) as exc:
            log.append(drafts(1, start=1), NOW)
        assert exc.value.errno == errno.EPERM
        with pytest.raises(StateError) as refused:
            log.append(drafts(1, start=1), NOW)
        assert str(refused.value) == (
            f"{path}: an append failed and could not be undone (Operation not permitted); "
            "restart recd to repair the log"
        )
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)
    assert log.append(drafts(1, start=1), NOW)[0].seq == 2
    assert log.failure is None
    assert verified(path) == 2


def test_a_closed_log_refuses_appends_and_reads(path: Path):
    log = FileAuditLog.open(path, NOW)
    log.close()
    with pytest.raises(ValueError) as exc:
        log.append(drafts(1), NOW)
    assert str(exc.value) == f"{path}: the audit log is closed"
    with pytest.raises(ValueError) as exc:
        log.read_from(0)
    assert str(exc.value) == f"{path}: the audit log is closed"


def test_ten_thousand_entries_in_batches_verify(path: Path):
    sizes = [1, 7, 64, 97, 250]
    written = 0
    with FileAuditLog.open(path, NOW) as log:
        while written < 10_000:
            n = min(sizes[written % len(sizes)], 10_000 - written)
            log.append(drafts(n, start=written), NOW + timedelta(seconds=written))
            written += n
        assert sum(1 for _ in log.read_from(0)) == 10_000
    assert verified(path) == 10_000
    with FileAuditLog.open(path, NOW) as log:
        last = log.last()
        assert last is not None
        assert last.seq == 10_000


# repairing a torn tail --------------------------------------------------------------------------


def test_a_torn_last_line_is_cut_off_and_recorded(path: Path):
    with FileAuditLog.open(path, NOW) as log:
        written = log.append(drafts(2), NOW)
        end = log.end_offset()
    torn = to_line(written[-1])[:37]
    with path.open("ab") as file:
        file.write(torn)
    later = NOW + timedelta(minutes=5)
    with FileAuditLog.open(path, later) as log:
        recovered = log.last()
        assert recovered is not None
        assert log.end_offset() == path.stat().st_size
    assert (recovered.seq, recovered.prev, recovered.time) == (
        3,
        written[-1].hash,
        format_time(later),
    )
    assert (recovered.actor, recovered.action, recovered.subject) == (
        "recd",
        "audit.recovered",
        str(path),
    )
    assert recovered.details == {
        "offset": end,
        "torn_bytes": 37,
        "torn_sha256": hashlib.sha256(torn).hexdigest(),
    }
    assert torn not in path.read_bytes()[end:]
    assert verified(path) == 3


def test_a_log_holding_only_a_torn_line_restarts_the_chain(path: Path):
    path.write_bytes(b'{"action":"erase.do')
    with FileAuditLog.open(path, NOW) as log:
        recovered = log.last()
    assert recovered is not None
    assert (recovered.seq, recovered.prev) == (1, GENESIS)
    assert recovered.details["torn_bytes"] == 19
    assert verified(path) == 1


def test_long_lines_are_found_from_the_end(path: Path):
    big = "x" * 200_000  # several read chunks, both for the last entry and for a torn tail
    with FileAuditLog.open(path, NOW) as log:
        written = log.append([AuditDraft("note", "big", {"text": big}), *drafts(1)], NOW)
        log.append([AuditDraft("note", "big", {"text": big})], NOW)
    torn = b'{"details":{"text":"' + big.encode()
    with path.open("ab") as file:
        file.write(torn)
    with FileAuditLog.open(path, NOW) as log:
        recovered = log.last()
        assert recovered is not None
        assert recovered.details["torn_sha256"] == hashlib.sha256(torn).hexdigest()
        assert [e.seq for e in log.read_from(0)] == [1, 2, 3, 4]
        assert next(log.read_from(0)) == written[0]
    assert verified(path) == 4


def test_a_damaged_last_entry_is_left_alone_and_the_chain_goes_on_before_it(path: Path):
    # Issue 14: recd refused to start before; now it starts with erasing paused (the check
    # at start reports the damaged entry) and the damage stays in the file as evidence.
    with FileAuditLog.open(path, NOW) as log:
        written = log.append(drafts(3), NOW)
    damaged = path.read_bytes().replace(b'"size":2', b'"size":7')
    path.write_bytes(damaged + b'{"torn')
    with FileAuditLog.open(path, NOW) as log:
        recovered = log.last()
        assert recovered is not None
        assert (recovered.seq, recovered.prev) == (3, written[1].hash)
        assert recovered.action == "audit.recovered"
    data = path.read_bytes()
    assert data.startswith(damaged), "the damaged entry was changed or removed"
    with path.open("rb") as file:
        result = verify(file)
    assert (result.ok, result.bad_seq, result.reason) == (
        False, 3, "hash does not match the entry's content",
    )  # fmt: skip


def test_a_log_with_no_intact_entry_is_refused_and_left_alone(path: Path):
    data = b'{"seq":1}\n{"seq":2}\n'
    path.write_bytes(data)
    with pytest.raises(StateError) as exc:
        FileAuditLog.open(path, NOW)
    assert str(exc.value) == (
        f'{path}: no entry is intact (the last: missing field "time"); '
        f"run `recctl audit verify --file {path}` to find the first bad entry"
    )
    assert path.read_bytes() == data
    with pytest.raises(StateError) as again:
        FileAuditLog.open(path, NOW)  # the same refusal, not "in use": the lock was released
    assert str(again.value) == str(exc.value)


def test_digests_hash_the_bytes_up_to_each_offset_in_one_pass(path: Path):
    with FileAuditLog.open(path, NOW) as log:
        log.append(drafts(2), NOW)
        middle = log.end_offset()
        log.append(drafts(2), NOW)
        data = path.read_bytes()
        assert log.digests([0, middle, log.end_offset()]) == [
            hashlib.sha256(b"").hexdigest(),
            hashlib.sha256(data[:middle]).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        ]
        with pytest.raises(ValueError, match="outside the live audit log"):
            log.digests([log.end_offset() + 1])


def test_open_reads_only_the_last_line(path: Path):
    with FileAuditLog.open(path, NOW) as log:
        log.append(drafts(3), NOW)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"not json at all\n" + b"".join(lines[1:]))
    with FileAuditLog.open(path, NOW) as log:
        last = log.last()
        assert last is not None
        assert last.seq == 3


# reading ----------------------------------------------------------------------------------------


def test_offsets_from_end_offset_read_what_was_appended_after_them(log: FileAuditLog):
    log.append(drafts(2), NOW)
    offset = log.end_offset()
    batch = log.append(drafts(3, start=2), NOW)
    assert list(log.read_from(offset)) == batch
    assert list(log.read_from(log.end_offset())) == []
    assert [e.seq for e in log.read_from(0)] == [1, 2, 3, 4, 5]


def test_read_from_sees_entries_appended_while_iterating(log: FileAuditLog):
    log.append(drafts(1), NOW)
    entries = log.read_from(0)
    assert next(entries).seq == 1
    log.append(drafts(1, start=1), NOW)
    assert [e.seq for e in entries] == [2]


@pytest.mark.parametrize("offset", [-1, 10_000])
def test_read_from_refuses_an_offset_outside_the_log(log: FileAuditLog, offset: int):
    log.append(drafts(1), NOW)
    with pytest.raises(ValueError) as exc:
        log.read_from(offset)
    assert str(exc.value) == f"offset {offset} is outside the audit log (0 to {log.end_offset()})"


def test_read_from_refuses_an_offset_inside_an_entry(log: FileAuditLog):
    log.append(drafts(2), NOW)
    with pytest.raises(ValueError) as exc:
        log.read_from(5)
    assert str(exc.value) == "offset 5 is not the start of an audit entry"


def test_read_from_reports_an_entry_changed_on_disk(path: Path, log: FileAuditLog):
    first = log.append(drafts(1), NOW)
    log.append(drafts(2, start=1), NOW)
    line = len(to_line(first[0]))
    data = path.read_bytes()
    at = data.index(b'"size":1', line)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"9", at + 7)
    finally:
        os.close(fd)
    entries = log.read_from(0)
    assert next(entries) == first[0]
    with pytest.raises(AuditCorrupt) as exc:
        next(entries)
    assert (
        str(exc.value) == f"{path}: entry at byte {line}: hash does not match the entry's content"
    )


def test_read_from_reports_a_log_cut_short_by_another_program(path: Path, log: FileAuditLog):
    first = log.append(drafts(2), NOW)
    log.append(drafts(1, start=2), NOW)
    short = sum(len(to_line(e)) for e in first)
    os.truncate(path, short)
    entries = log.read_from(0)
    assert [next(entries).seq, next(entries).seq] == [1, 2]
    with pytest.raises(AuditCorrupt) as exc:
        next(entries)
    assert str(exc.value) == (
        f"{path}: ends at byte {short}, before the {log.end_offset()} bytes recd wrote "
        "(changed by another program?)"
    )
    with pytest.raises(ValueError) as refused:
        log.read_from(log.end_offset())
    assert str(refused.value) == f"offset {log.end_offset()} is not the start of an audit entry"


def test_read_from_reports_a_newline_overwritten_by_another_program(path: Path, log: FileAuditLog):
    first = log.append(drafts(1), NOW)
    log.append(drafts(1, start=1), NOW)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b" ", log.end_offset() - 1)
    finally:
        os.close(fd)
    entries = log.read_from(0)
    assert next(entries) == first[0]
    with pytest.raises(AuditCorrupt) as exc:
        next(entries)
    line = len(to_line(first[0]))
    assert str(exc.value) == (
        f"{path}: entry at byte {line}: no newline where recd wrote one "
        "(changed by another program?)"
    )


def test_read_from_streams_entries_as_the_file_holds_them(path: Path, log: FileAuditLog):
    log.append(drafts(300), NOW)
    lines = path.read_bytes().splitlines(keepends=True)
    assert list(log.read_from(0)) == [from_line(line) for line in lines]
