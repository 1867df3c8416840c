"""The ``Eraser`` contract (``recd.ports.eraser``), on every kind of place in ``PLACES``: a
directory root's ``LocalEraser`` and an S3 source's ``S3Eraser`` (on the moto server).

Each test indexes recordings through the place's ``Source`` (as the indexer does), erases
through the port only, and checks the result through the source again. Where the two erasers
legitimately differ, the contract says what both guarantee: a file changed since it was indexed
is refused at ``prepare`` (``Changed``), an S3 key is prepared but its facts decide a SKIP; in
both cases nothing is erased.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import ErasePattern
from recd.ports.eraser import (
    Changed,
    EraseError,
    EraseJob,
    EraseTarget,
    Gone,
    PreparedErase,
)
from tests.contracts.places import Place

SETTINGS = EraseSettings(settle=timedelta(0))
TEMP = ".recd-erase-0123456789abcdef"


def later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def indexed(place: Place, relpath: str) -> EraseTarget:
    """What the catalogue holds of ``relpath`` once the source indexed it."""
    facts = place.source.facts(relpath)
    assert facts is not None, relpath
    return EraseTarget(relpath, facts.dev, facts.ino, facts.size, facts.stamps)


def prepare(place: Place, target: EraseTarget) -> PreparedErase:
    return place.eraser.prepare(target.relpath, target.dev, target.ino, target.size, target.stamps)


def erasing(prepared: PreparedErase) -> Decision:
    decision = decide(prepared.facts, SETTINGS, later())
    assert decision.action is Action.ERASE, decision
    return decision


def test_prepare_and_erase_removes_the_recording(place: Place) -> None:
    place.write("1001/a.wav", b"recording a")
    place.write("1001/b.wav", b"recording b")
    target = indexed(place, "1001/a.wav")
    with contextlib.closing(prepare(place, target)) as prepared:
        decision = erasing(prepared)
        outcome = place.eraser.erase(
            prepared, decision, pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP
        )
    place.eraser.sync()
    assert outcome.method is decision.method
    assert place.source.facts("1001/a.wav") is None
    assert place.eraser.locate("1001/a.wav", TEMP, target.dev, target.ino) == "gone"
    assert [f.relpath for f in place.source.scan()] == ["1001/b.wav"], "only what was asked"


def test_prepare_touches_nothing_and_locates_the_original(place: Place) -> None:
    place.write("a.wav", b"recording")
    target = indexed(place, "a.wav")
    prepare(place, target).close()
    assert indexed(place, "a.wav") == target
    assert place.eraser.locate("a.wav", TEMP, target.dev, target.ino) == "original"


def test_the_digest_is_of_the_recordings_content(place: Place) -> None:
    place.write("a.wav", b"the audio")
    with contextlib.closing(prepare(place, indexed(place, "a.wav"))) as prepared:
        assert place.eraser.digest(prepared) == hashlib.sha256(b"the audio").hexdigest()


def test_a_recording_changed_since_it_was_indexed_is_not_erased(place: Place) -> None:
    place.write("a.wav", b"recording")
    target = indexed(place, "a.wav")
    place.write("a.wav", b"another recording at the same name")
    try:
        prepared = prepare(place, target)
    except Changed:
        pass  # a file: the inode is not the one indexed
    else:  # an S3 key: its versions are not the ones indexed
        with contextlib.closing(prepared):
            assert decide(prepared.facts, SETTINGS, later()).action is Action.SKIP
    assert indexed(place, "a.wav") != target, "still there, and indexed anew"


def test_a_removed_recording_is_gone(place: Place) -> None:
    place.write("a.wav", b"recording")
    target = indexed(place, "a.wav")
    place.remove("a.wav")
    with pytest.raises(Gone):
        prepare(place, target)
    assert place.eraser.locate("a.wav", TEMP, target.dev, target.ino) == "gone"


def test_a_batch_is_prepared_and_erased_in_order_failures_in_place(place: Place) -> None:
    for name in ("a.wav", "b.wav", "c.wav"):
        place.write(name, name.encode())
    targets = [indexed(place, name) for name in ("a.wav", "b.wav", "c.wav")]
    place.remove("b.wav")
    a, b, c = place.eraser.prepare_many(targets)
    assert isinstance(b, Gone)
    assert not isinstance(a, EraseError | OSError) and not isinstance(c, EraseError | OSError)
    jobs = [EraseJob(p, erasing(p), TEMP) for p in (a, c)]
    outcomes = place.eraser.erase_many(jobs, pattern=ErasePattern.ZEROS, verify=False)
    place.eraser.sync()
    assert [isinstance(o, EraseError) for o in outcomes] == [False, False]
    assert list(place.source.scan()) == []
    for p in (a, c):
        p.close()


def test_batch_is_a_positive_number_of_recordings(place: Place) -> None:
    assert isinstance(place.eraser.batch, int) and place.eraser.batch >= 1


def test_close_is_idempotent_and_keeps_what_was_erased(place: Place) -> None:
    place.write("a.wav", b"recording")
    target = indexed(place, "a.wav")
    prepared = prepare(place, target)
    place.eraser.erase(
        prepared, erasing(prepared), pattern=ErasePattern.ZEROS, verify=False, temp_name=TEMP
    )
    prepared.close()
    prepared.close()
    place.eraser.close()
    place.eraser.close()
    assert place.source.facts("a.wav") is None
