"""The audit log port (``recd.ports.audit.AuditLog``) on every implementation in ``AUDIT_LOGS``:
the file of a state directory and the table of a PostgreSQL database (``tests.contracts.chains``).
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from recd.core.audit import GENESIS, AuditEntry, link_problem, parse_sealed, to_line
from recd.errors import AuditCorrupt
from tests.contracts.chains import NOW, Chain, drafts

WRITERS = 2  # objects on one chain
THREADS = 2  # threads appending through each
BATCHES = 15  # batches of 1-3 entries per thread


def _starts(entries: list[AuditEntry]) -> list[int]:
    """Where each entry begins in the chain, and where the chain ends."""
    starts = [0]
    for entry in entries:
        starts.append(starts[-1] + len(to_line(entry)))
    return starts


def test_an_empty_log(chain: Chain) -> None:
    log = chain.log
    assert log.last() is None
    assert log.end_offset() == 0
    assert list(log.read_all()) == []
    assert list(log.read_from(0)) == []
    assert log.digests([0]) == [hashlib.sha256(b"").hexdigest()]


def test_append_seals_entries_with_consecutive_seqs(chain: Chain) -> None:
    log = chain.log
    first = log.append(drafts(3), NOW)
    second = log.append(drafts(2, start=3), NOW)
    entries = first + second
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for number, entry in enumerate(entries):
        assert link_problem(entry, number, prev) is None
        assert parse_sealed(to_line(entry)) == entry
        assert entry.subject == f"H{number}"
        prev = entry.hash
    assert log.last() == entries[-1]
    assert log.append([], NOW) == []
    assert chain.lines() == b"".join(to_line(e) for e in entries), "stored as the file holds it"
    assert log.failure is None


def test_reads_give_back_what_was_appended(chain: Chain) -> None:
    log = chain.log
    first = log.append(drafts(3), NOW)
    middle = log.end_offset()
    second = log.append(drafts(4, start=3), NOW)
    entries = first + second
    assert log.end_offset() == _starts(entries)[-1] == len(chain.lines())
    assert list(log.read_all()) == entries
    assert list(log.read_since(0)) == entries
    assert list(log.read_since(3)) == second
    assert list(log.read_since(7)) == []
    assert list(log.read_from(0)) == entries
    assert list(log.read_from(middle)) == second
    assert list(log.read_from(log.end_offset())) == []
    with pytest.raises(ValueError, match="not the start of an audit entry"):
        log.read_from(middle + 1)
    with pytest.raises(ValueError, match="outside the audit log"):
        log.read_from(log.end_offset() + 1)


def test_digests_are_of_the_lines_concatenated(chain: Chain) -> None:
    log = chain.log
    entries = log.append(drafts(5), NOW)
    stored = chain.lines()
    starts = _starts(entries)
    ends = [0, starts[2], starts[2], starts[4] + 7, starts[5]]
    assert log.digests(ends) == [hashlib.sha256(stored[:end]).hexdigest() for end in ends]
    with pytest.raises(ValueError):
        log.digests([starts[5] + 1])


def test_a_tampered_entry_is_refused_naming_it(chain: Chain) -> None:
    log = chain.log
    entries = log.append(drafts(5), NOW)
    at = _starts(entries)[2]  # entry 3
    chain.tamper(3, b'"H2"', b'"H9"')
    for read in (log.read_all, lambda: log.read_from(0), lambda: log.read_since(1)):
        with pytest.raises(AuditCorrupt, match=f"at byte {at}: hash does not match"):
            list(read())
    assert list(log.read_from(0, skip_damaged=True)) == entries[:2] + entries[3:]
    assert log.last() == entries[-1]


# Only a shared log has several writers: the file log is locked (flock) to one process.
@pytest.mark.parametrize("chain", ["postgres"], indirect=True)
def test_writers_on_one_chain_make_one_chain(chain: Chain) -> None:
    assert chain.another is not None
    writers = [chain.log] + [chain.another() for _ in range(WRITERS - 1)]
    returned: list[AuditEntry] = []
    failures: list[BaseException] = []
    guard = threading.Lock()

    def write(n: int) -> None:
        log = writers[n % WRITERS]
        try:
            for batch in range(BATCHES):
                made = log.append(drafts(1 + batch % 3, start=1000 * n + 10 * batch), NOW)
                with guard:
                    returned.extend(made)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS * THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    whole = list(writers[-1].read_all())  # checks every seal and link
    total = WRITERS * THREADS * sum(1 + batch % 3 for batch in range(BATCHES))
    assert [e.seq for e in whole] == list(range(1, total + 1)), "no gap, no fork"
    assert sorted(returned, key=lambda e: e.seq) == whole, "each append got what was stored"
    assert [log.last() for log in writers] == [whole[-1]] * WRITERS
    assert writers[0].end_offset() == len(chain.lines())
