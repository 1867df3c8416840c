"""recd.core.audit: canonical form, sealing, parsing and chain verification."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recd.core.audit import (
    GENESIS,
    Anchor,
    AuditDraft,
    AuditEntry,
    VerifyResult,
    anchor_problem,
    canonical_json,
    from_line,
    parse_anchor,
    parse_sealed,
    seal,
    seal_line,
    to_line,
    verify,
)
from recd.core.times import parse_time

T0 = datetime(2026, 11, 23, 13, 43, 9, 123456, tzinfo=UTC)
GOLDEN_HASH = "681a9c9c61746dd06a233a38e04808efd4e370dd4200db5bff0741b5b8818d88"


def chain(drafts: list[AuditDraft], start: datetime = T0) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS
    for n, draft in enumerate(drafts, start=1):
        entries.append(seal(draft, seq=n, prev=prev, time=start + timedelta(seconds=n)))
        prev = entries[-1].hash
    return entries


def log_lines(n: int) -> list[bytes]:
    drafts = [AuditDraft("erase.done", f"pbx1:{i}.wav", {"size": i}) for i in range(1, n + 1)]
    return [to_line(e) for e in chain(drafts)]


def reseal(entry: AuditEntry, **changes: Any) -> AuditEntry:
    """``entry`` with ``changes`` and a recomputed hash: a forgery that checks on its own."""
    changed = replace(entry, **changes)
    draft = AuditDraft(changed.action, changed.subject, changed.details, changed.actor)
    return seal(draft, seq=changed.seq, prev=changed.prev, time=parse_time(changed.time))


def line_of(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry).encode() + b"\n"


def fields(line: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(line)
    return obj


# canonical_json ---------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_non_ascii():
    assert canonical_json({"b": [1, 2.5, None], "a": {"z": True, "y": "ä"}}) == (
        '{"a":{"y":"ä","z":true},"b":[1,2.5,null]}'.encode()
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_canonical_json_refuses_nan_and_infinities(value):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        canonical_json({"x": value})


def test_canonical_json_refuses_lone_surrogates():
    with pytest.raises(UnicodeEncodeError):
        canonical_json("\ud800")


def test_canonical_json_refuses_values_json_cannot_hold():
    with pytest.raises(TypeError):
        canonical_json({"x": {1, 2}})


# seal, to_line, from_line -----------------------------------------------------------------------


def test_seal_and_to_line_write_the_documented_form():
    draft = AuditDraft(
        "erase.done", "pbx1:7/a.wav", {"size": 3, "location": "/r/ä.wav", "effective": True}
    )
    entry = seal(draft, seq=1, prev=GENESIS, time=T0)
    body = (
        '{"action":"erase.done","actor":"recd","details":{"effective":true,'
        '"location":"/r/ä.wav","size":3},"prev":"' + GENESIS + '","seq":1,'
        '"subject":"pbx1:7/a.wav","time":"2026-11-23T13:43:09.123456Z"}'
    ).encode()
    assert entry.hash == hashlib.sha256(body).hexdigest() == GOLDEN_HASH
    assert (
        to_line(entry)
        == (
            '{"action":"erase.done","actor":"recd","details":{"effective":true,'
            '"location":"/r/ä.wav","size":3},"hash":"' + GOLDEN_HASH + '","prev":"' + GENESIS + '",'
            '"seq":1,"subject":"pbx1:7/a.wav","time":"2026-11-23T13:43:09.123456Z"}\n'
        ).encode()
    )
    assert entry == AuditEntry(
        seq=1,
        time="2026-11-23T13:43:09.123456Z",
        actor="recd",
        action="erase.done",
        subject="pbx1:7/a.wav",
        details={"effective": True, "location": "/r/ä.wav", "size": 3},
        prev=GENESIS,
        hash=GOLDEN_HASH,
    )


def test_seal_keeps_the_actor_and_links_to_prev():
    first, second = chain(
        [AuditDraft("hold.placed", "H1"), AuditDraft("hold.released", "H1", actor="alice")]
    )
    assert (first.seq, first.prev, first.actor) == (1, GENESIS, "recd")
    assert (second.seq, second.prev, second.actor) == (2, first.hash, "alice")
    assert first.hash != second.hash


def test_seal_normalises_details_to_what_reading_back_gives():
    entry = seal(
        AuditDraft("x", "y", {"t": (1, 2), "n": {"k": (3,)}}), seq=1, prev=GENESIS, time=T0
    )
    assert entry.details == {"t": [1, 2], "n": {"k": [3]}}
    assert from_line(to_line(entry)) == entry


def test_seal_refuses_sequence_numbers_below_one():
    with pytest.raises(ValueError) as exc:
        seal(AuditDraft("x", "y"), seq=0, prev=GENESIS, time=T0)
    assert str(exc.value) == "sequence numbers start at 1, not 0"


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({"x": float("nan")}, ValueError),
        ({"x": "\udc80"}, ValueError),
        ({"x": object()}, TypeError),
    ],
)
def test_seal_refuses_details_canonical_json_cannot_hold(details, error):
    with pytest.raises(error):
        seal(AuditDraft("x", "y", details), seq=1, prev=GENESIS, time=T0)


def test_from_line_reads_with_or_without_the_newline():
    line = log_lines(1)[0]
    assert from_line(line) == from_line(line[:-1]) == parse_sealed(line) == parse_sealed(line[:-1])


GOOD = fields(log_lines(1)[0])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty line"),
        (b"\n", "empty line"),
        (b'{"seq":\xff}\n', "not valid UTF-8"),
        (b"{\n", "not valid JSON"),
        (line_of(GOOD)[:-2] + b"} {}\n", "not valid JSON"),
        (line_of(GOOD | {"details": {"x": float("nan")}}), "not valid JSON"),
        (line_of(GOOD | {"details": {"x": float("-inf")}}), "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", "not valid JSON"),
        (b'{"details":{"n":' + b"9" * 5000 + b"}}\n", "not valid JSON"),
        (b"[1]\n", "not a JSON object"),
        (b'"seq"\n', "not a JSON object"),
        (line_of({k: v for k, v in GOOD.items() if k != "prev"}), 'missing field "prev"'),
        (line_of({}), 'missing field "seq"'),
        (line_of(GOOD | {"zz": 1, "extra": 2}), 'unexpected field "extra"'),
        (line_of(GOOD | {"seq": "1"}), 'field "seq" is not a positive integer'),
        (line_of(GOOD | {"seq": True}), 'field "seq" is not a positive integer'),
        (line_of(GOOD | {"seq": 0}), 'field "seq" is not a positive integer'),
        (line_of(GOOD | {"seq": 1.0}), 'field "seq" is not a positive integer'),
        (
            line_of(GOOD | {"time": 1}),
            'field "time" is not a UTC time like 2026-11-23T13:43:09.123456Z',
        ),
        (
            line_of(GOOD | {"time": "2026-11-23T13:43:09Z"}),
            'field "time" is not a UTC time like 2026-11-23T13:43:09.123456Z',
        ),
        (
            line_of(GOOD | {"time": "2026-02-30T13:43:09.123456Z"}),
            'field "time" is not a UTC time like 2026-11-23T13:43:09.123456Z',
        ),
        (line_of(GOOD | {"actor": None}), 'field "actor" is not a string'),
        (line_of(GOOD | {"action": 5}), 'field "action" is not a string'),
        (line_of(GOOD | {"subject": ["a"]}), 'field "subject" is not a string'),
        (line_of(GOOD | {"details": []}), 'field "details" is not a JSON object'),
        (line_of(GOOD | {"details": "{}"}), 'field "details" is not a JSON object'),
        (line_of(GOOD | {"prev": "0" * 63}), 'field "prev" is not a SHA-256 hex digest'),
        (
            line_of(GOOD | {"prev": GENESIS.upper() + "A"}),
            'field "prev" is not a SHA-256 hex digest',
        ),
        (
            line_of(GOOD | {"hash": GOOD["hash"].upper()}),
            'field "hash" is not a SHA-256 hex digest',
        ),
        (line_of(GOOD | {"hash": None}), 'field "hash" is not a SHA-256 hex digest'),
    ],
)
def test_from_line_gives_the_reason_a_line_is_malformed(line, reason):
    with pytest.raises(ValueError) as exc:
        from_line(line)
    assert str(exc.value) == reason


def test_parse_sealed_checks_the_hash():
    line = to_line(replace(from_line(log_lines(1)[0]), subject="pbx1:other.wav"))
    with pytest.raises(ValueError) as exc:
        parse_sealed(line)
    assert str(exc.value) == "hash does not match the entry's content"
    assert from_line(line).subject == "pbx1:other.wav"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"seq":1', b'"seq": 1'),  # whitespace
        (b"\\u001f", b"\\u001F"),  # another spelling of the same text
        (b"\xc3\xa4", b"\\u00e4"),  # an escape where canonical JSON keeps the character
    ],
)
def test_parse_sealed_refuses_another_spelling_of_the_same_content(old, new):
    entry = seal(AuditDraft("x", "ä\x1f"), seq=1, prev=GENESIS, time=T0)
    line = to_line(entry).replace(old, new)
    assert line != to_line(entry)
    assert from_line(line) == entry
    with pytest.raises(ValueError) as exc:
        parse_sealed(line)
    assert str(exc.value) == "not in canonical JSON form"


def test_parse_sealed_refuses_escaped_lone_surrogates():
    line = to_line(seal(AuditDraft("x", "y"), seq=1, prev=GENESIS, time=T0))
    line = line.replace(b'"subject":"y"', b'"subject":"\\ud800"')
    with pytest.raises(ValueError) as exc:
        parse_sealed(line)
    assert str(exc.value) == "text is not valid Unicode"


# verify -----------------------------------------------------------------------------------------


def test_verify_accepts_an_intact_chain():
    lines = log_lines(5)
    assert verify(lines) == VerifyResult(True, 5, from_line(lines[-1]).hash, None, None, None)


def test_verify_accepts_an_empty_log():
    assert verify([]) == VerifyResult(True, 0, None, None, None, None)


def test_verify_streams_lines_from_any_iterable():
    lines = log_lines(3)
    assert verify(iter(lines)).entries == 3


def bad(lines: list[bytes]) -> tuple[int | None, int | None, str | None, int]:
    result = verify(lines)
    assert not result.ok
    return result.bad_seq, result.bad_line, result.reason, result.entries


def test_verify_finds_a_flipped_byte():
    lines = log_lines(5)
    lines[2] = lines[2].replace(b'"size":3', b'"size":4')
    assert bad(lines) == (3, 3, "hash does not match the entry's content", 2)
    assert verify(lines).last_hash == from_line(lines[1]).hash


def test_verify_finds_a_line_that_is_not_json():
    lines = log_lines(3)
    lines[1] = lines[1][:10] + b"\x00" + lines[1][11:]
    assert bad(lines) == (2, 2, "not valid JSON", 1)


def test_verify_finds_a_removed_entry():
    lines = log_lines(6)
    del lines[4]
    assert bad(lines) == (6, 5, "sequence jumps from 4 to 6 (entries removed or reordered?)", 4)


def test_verify_finds_entries_removed_from_the_start():
    lines = log_lines(4)[2:]
    assert bad(lines) == (3, 1, "sequence starts at 3, not 1 (entries removed from the start?)", 0)


def test_verify_finds_reordered_entries():
    lines = log_lines(5)
    lines[2], lines[3] = lines[3], lines[2]
    assert bad(lines) == (4, 3, "sequence jumps from 2 to 4 (entries removed or reordered?)", 2)


def test_verify_finds_a_duplicated_entry():
    lines = log_lines(4)
    lines.insert(3, lines[2])
    assert bad(lines) == (
        3,
        4,
        "sequence number 3 follows 3 (entries duplicated or reordered?)",
        3,
    )


def test_verify_finds_a_removed_entry_renumbered_by_hand():
    entries = [from_line(line) for line in log_lines(4)]
    del entries[1]
    renumbered = [entries[0], *(reseal(e, seq=e.seq - 1) for e in entries[1:])]
    assert bad([to_line(e) for e in renumbered]) == (
        2,
        2,
        "prev does not match the hash of entry 1",
        1,
    )


def test_verify_finds_a_forged_entry_at_the_entry_after_it():
    entries = [from_line(line) for line in log_lines(5)]
    entries[2] = reseal(entries[2], details={"size": 999})
    lines = [to_line(e) for e in entries]
    assert bad(lines) == (4, 4, "prev does not match the hash of entry 3", 3)


def test_verify_finds_a_forged_first_link():
    entries = [from_line(line) for line in log_lines(2)]
    entries[0] = reseal(entries[0], prev="1" * 64)
    assert bad([to_line(e) for e in entries]) == (
        1,
        1,
        "first entry's prev is not the genesis hash (entries removed from the start?)",
        0,
    )


def test_verify_finds_a_truncated_tail():
    lines = log_lines(5)
    lines[4] = lines[4][:-20]
    assert bad(lines) == (5, 5, "last line is incomplete (truncated file?)", 4)
    lines[4] = log_lines(5)[4][:-1]  # only the newline is missing
    assert bad(lines) == (5, 5, "last line is incomplete (truncated file?)", 4)


def test_verify_cannot_see_a_dropped_or_forged_last_entry_without_an_anchor():
    lines = log_lines(5)
    anchored = verify(lines).last_hash
    dropped = verify(lines[:-1])
    forged_entry = reseal(from_line(lines[-1]), subject="pbx1:elsewhere.wav")
    forged = verify([*lines[:-1], to_line(forged_entry)])
    assert dropped.ok and forged.ok
    assert anchored not in (dropped.last_hash, forged.last_hash)


# anchors ----------------------------------------------------------------------------------------


def test_verify_keeps_the_hashes_of_the_watched_entries():
    lines = log_lines(5)
    hashes = {n: from_line(line).hash for n, line in enumerate(lines, start=1)}
    assert verify(lines, watch={2, 5, 9}).watched == {2: hashes[2], 5: hashes[5]}
    assert verify(lines).watched == {}


def test_verify_keeps_only_watched_entries_that_verified():
    lines = log_lines(5)
    lines[3] = lines[3].replace(b'"size":4', b'"size":5')
    result = verify(lines, watch={2, 4, 5})
    assert not result.ok
    assert result.watched == {2: from_line(lines[1]).hash}


def test_parse_anchor_reads_what_str_writes():
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_anchor(f"12:{digest}") == Anchor(12, digest)
    assert str(Anchor(12, digest)) == f"12:{digest}"
    assert parse_anchor(f"012:{digest.upper()}") == Anchor(12, digest)
    assert parse_anchor(f"0:{GENESIS}") == Anchor(0, GENESIS)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not SEQ:HASH (no colon)"),
        ("12", "not SEQ:HASH (no colon)"),
        (f"-1:{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),
        (f":{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),
        (f"1.5:{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),
        (f"\u0661:{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),  # Arabic-Indic 1
        (f" 1:{GENESIS}", "SEQ is not a sequence number (0, 1, 2, ...)"),
        ("1:", "HASH is not a SHA-256 hash (64 hex digits)"),
        ("1:9f86d08", "HASH is not a SHA-256 hash (64 hex digits)"),
        (f"1:{GENESIS}0", "HASH is not a SHA-256 hash (64 hex digits)"),
        (f"1:{'g' * 64}", "HASH is not a SHA-256 hash (64 hex digits)"),
        (f"1:{GENESIS}\n", "HASH is not a SHA-256 hash (64 hex digits)"),
        (f"1:2:{GENESIS}", "HASH is not a SHA-256 hash (64 hex digits)"),
        (f"0:{'1' * 64}", "seq 0 is the start of the chain, whose hash is 64 zeros"),
    ],
)
def test_parse_anchor_gives_the_reason_an_anchor_is_malformed(text, reason):
    with pytest.raises(ValueError) as exc:
        parse_anchor(text)
    assert str(exc.value) == reason


def head_of(lines: list[bytes]) -> Anchor:
    return Anchor(len(lines), from_line(lines[-1]).hash)


def test_a_chain_holds_its_own_head_and_every_earlier_entry():
    lines = log_lines(5)
    for n in range(1, 6):
        anchor = head_of(lines[:n])
        assert anchor_problem(anchor, verify(lines, watch={anchor.seq})) is None
    assert anchor_problem(Anchor(0, GENESIS), verify(lines)) is None
    assert anchor_problem(Anchor(0, GENESIS), verify([])) is None


def test_a_cut_tail_is_found_only_with_an_anchor():
    lines = log_lines(5)
    anchor = head_of(lines)
    cut = verify(lines[:3], watch={anchor.seq})
    assert cut.ok
    assert anchor_problem(anchor, cut) == (
        "the log ends at seq 3, before the expected entry 5: its tail was cut"
    )
    assert anchor_problem(anchor, verify([], watch={5})) == (
        "the log ends at seq 0, before the expected entry 5: its tail was cut"
    )


def test_a_rewritten_tail_is_found_only_with_an_anchor():
    entries = [from_line(line) for line in log_lines(5)]
    anchor = Anchor(4, entries[3].hash)
    forged = entries[:2]
    for entry in entries[2:]:  # entry 3 changed, 3 to 5 re-sealed so that the chain verifies
        details = {"size": 999} if entry.seq == 3 else entry.details
        forged.append(reseal(entry, details=details, prev=forged[-1].hash))
    result = verify([to_line(e) for e in forged], watch={2, 4})
    assert result.ok
    assert anchor_problem(anchor, result) == (
        f"entry 4 has hash {forged[3].hash}, not the expected {entries[3].hash}: "
        "the log was rewritten at or before it"
    )
    assert anchor_problem(Anchor(2, entries[1].hash), result) is None


# properties -------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
drafts = st.builds(
    AuditDraft,
    action=st.sampled_from(["erase.done", "erase.intent", "hold.placed", "request.added"]),
    subject=st.text(max_size=20),
    details=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    actor=st.sampled_from(["recd", "alice", "bob"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(drafts, min_size=1, max_size=6))
def test_any_sealed_chain_verifies_and_reads_back(batch):
    entries = chain(batch)
    lines = [to_line(e) for e in entries]
    assert [from_line(line) for line in lines] == entries
    assert verify(lines) == VerifyResult(True, len(entries), entries[-1].hash, None, None, None)


@settings(max_examples=500, deadline=None)
@given(st.lists(drafts, min_size=1, max_size=5), st.data())
def test_any_single_byte_change_is_found_at_its_line_or_before(batch, data):
    log = b"".join(to_line(e) for e in chain(batch))
    where = data.draw(st.integers(min_value=0, max_value=len(log) - 1), label="offset")
    byte = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != log[where]))
    changed = log[:where] + bytes([byte]) + log[where + 1 :]
    result = verify(io.BytesIO(changed))  # split into lines as a file is
    assert not result.ok
    assert result.bad_line is not None
    assert result.bad_line <= log[:where].count(b"\n") + 1


@given(
    details=st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=12),
            st.lists(st.integers(), max_size=3),
        ),
        max_size=5,
    ),
    subject=st.text(max_size=20),
    actor=st.text(min_size=1, max_size=10),
)
def test_seal_line_is_seal_then_to_line(
    details: dict[str, object], subject: str, actor: str
) -> None:
    when = datetime(2026, 11, 23, 13, 44, 9, 123456, tzinfo=UTC)
    draft = AuditDraft("erase.done", subject, details, actor=actor)
    entry, line = seal_line(draft, seq=7, prev="ab" * 32, time=when)
    assert entry == seal(draft, seq=7, prev="ab" * 32, time=when)
    assert line == to_line(entry)
    assert parse_sealed(line) == entry
