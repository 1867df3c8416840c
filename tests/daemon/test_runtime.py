"""The runtime and one-shot runs (``recd.daemon.runtime``): ``recd --once`` with the clock far
ahead, and a state directory whose catalogue is a planted symbolic link."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recd.adapters.local.erase import NOT_PROBED, LocalEraser
from recd.config.load import SourceConfig
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod
from recd.daemon.once import ClockConfirmation, run_once
from recd.daemon.runtime import open_runtime
from recd.errors import ExitCode, NotAllowedInState, StateError
from tests.daemon.helpers import make
from tests.estate import Estate
from tests.fakes import FakeClock, NotifyListener
from tests.s3server import s3_client


def test_a_symlink_planted_as_the_catalogue_is_refused_and_not_followed(
    estate: Estate, listener: NotifyListener
) -> None:
    state = estate.config.daemon.state_dir
    state.mkdir(mode=0o750)
    elsewhere = estate.base / "elsewhere.db"
    (state / "catalog.db").symlink_to(elsewhere)
    daemon = make(estate, listener)
    with pytest.raises(StateError) as caught:
        daemon.start()
    daemon.stop()
    assert str(caught.value) == (
        f"{state}/catalog.db: cannot make the state private: Too many levels of symbolic links"
    )
    assert not elsewhere.exists()  # SQLite never created the file the link points to


def test_once_with_the_clock_far_ahead_erases_nothing_until_an_administrator_confirms(
    tmp_path: Path,
) -> None:
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC)))
    due = estate.write("L1/due.wav", age_days=31)
    # Ahead of the tree's ctimes, with a minute to spare: a ctime is stamped after the clock
    # was read, so exactly 10 days ahead can be 9d 23h 59m 59.99s ahead, said as "9d".
    estate.clock.set(estate.clock.now() + timedelta(days=10, minutes=1))
    with pytest.raises(NotAllowedInState) as caught:
        estate.once()
    assert str(caught.value) == (
        "erasing nothing: wall clock is 10d ahead of the newest recording (more than "
        "safety.max_clock_gap 3d); check the clock, then run `recd --once --confirm-clock`"
    )
    assert due.exists() and estate.audit() == []
    out = io.StringIO()
    confirm = ClockConfirmation("root", "NTP checked against two servers")
    assert run_once(estate.config, estate.clock, out, confirm) == ExitCode.OK
    assert not due.exists()
    assert [e["action"] for e in estate.audit()][:2] == ["config.loaded", "clock.confirmed"]
    confirmed = estate.audit()[1]
    assert confirmed["actor"] == "root"
    assert confirmed["details"]["reason"] == "NTP checked against two servers"
    assert confirmed["details"]["problem"].startswith("wall clock is 10d ahead")


def test_once_compares_the_clock_with_the_newest_object_of_an_s3_source_too(
    tmp_path: Path, s3_endpoint: str, make_bucket: Callable[[str], str]
) -> None:
    bucket = make_bucket("versioned")
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key="L1/20261120120000_a.wav", Body=b"a")
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC) + timedelta(seconds=5)))
    rule = estate.config.sources[0].rule
    archive = SourceConfig(
        "archive", "s3", rule, bucket=bucket, endpoint_url=s3_endpoint, region="us-east-1"
    )
    estate.configure(sources=(archive,))  # no directory: no change time to go by
    assert estate.once()[0] == ExitCode.OK  # indexes the key (LastModified: the store's clock)
    estate.clock.set(estate.clock.now() + timedelta(days=10))
    with pytest.raises(NotAllowedInState) as caught:
        estate.once()
    assert str(caught.value).startswith(
        "erasing nothing: wall clock is 10d ahead of the last audit entry and the newest "
        "recording (more than safety.max_clock_gap 3d)"
    )


@pytest.mark.parametrize("method", [EraseMethod.OVERWRITE, EraseMethod.UNLINK])
def test_the_effectiveness_probes_run_only_where_an_overwrite_is_configured(
    tmp_path: Path, method: EraseMethod
) -> None:
    estate = Estate(tmp_path, FakeClock(datetime.now(UTC)), erase=EraseSettings(method=method))
    runtime = open_runtime(estate.config, estate.clock)
    try:
        eraser = runtime.erasers["pbx"]
        assert isinstance(eraser, LocalEraser)
        st = (estate.write("L1/a.wav", age_days=31)).stat()
        with eraser.prepare("L1/a.wav", st.st_dev, st.st_ino, st.st_size) as p:
            probed = p.facts.fs_type != NOT_PROBED
    finally:
        runtime.close()
    assert probed is (method is EraseMethod.OVERWRITE)
