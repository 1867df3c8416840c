"""The shipped example sources in etc/patterns/: realistic names, near misses, time zones.

Each example is loaded by recd's own config loader as part of a real recd.toml (what an
operator who pastes it gets), then its rule is checked through path_fields and classify.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from recd.adapters.tags import MutagenTagReader
from recd.config import load as config
from recd.config.load import SourceConfig
from recd.core.classify import ClassifyRule, classify, needs_tags, path_fields
from recd.core.model import Classification, Provenance
from tests.audio import write_wav
from tests.config.helpers import uncommented

PATTERNS = Path(__file__).resolve().parents[2] / "etc" / "patterns"
EXAMPLES = ("3cx.toml", "asterisk.toml", "multi-tenant.toml")
MTIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def example_source(name: str) -> SourceConfig:
    """etc/patterns/``name`` pasted below a ``[daemon]`` table, loaded by ``config.load``."""
    text = (PATTERNS / name).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = base / "recd.toml"
        path.write_text(f'[daemon]\nstate_dir = "{base / "state"}"\n\n{text}', encoding="utf-8")
        (base / "licences.d").mkdir()
        [source] = config.load(path, licences_dir=base / "licences.d").sources
    return source


def example_rule(name: str) -> ClassifyRule:
    return example_source(name).rule


def run(rule: ClassifyRule, relpath: str, tags: dict[str, str] | None = None) -> Classification:
    fields = path_fields(rule, relpath)
    return classify(rule, relpath, fields=fields, tags=tags, metadata=None, mtime=MTIME)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "source", "licence", "started_format", "timezone", "tags", "started_tags"),
    [
        ("3cx.toml", "pbx1", "3CX-1234-5678", "%Y%m%d%H%M%S", "Europe/London", True,
         ("started",)),
        ("asterisk.toml", "freepbx", "ACME-PBX-0001", "%Y%m%d-%H%M%S", "America/New_York", False,
         ("started",)),
        ("multi-tenant.toml", "tenants", None, "%Y%m%dT%H%M%S%z", "UTC", True,
         ("started", "icrd")),
    ],
)  # fmt: skip
def test_every_example_loads_as_part_of_a_real_config(
    name: str,
    source: str,
    licence: str | None,
    started_format: str,
    timezone: str,
    tags: bool,
    started_tags: tuple[str, ...],
) -> None:
    loaded = example_source(name)
    rule = loaded.rule
    assert loaded.name == source
    assert (rule.licence, rule.started_format, rule.timezone, rule.tags) == (
        licence, started_format, ZoneInfo(timezone), tags,
    )  # fmt: skip
    assert (rule.tag_names["started"], rule.tag_names["licence"]) == (
        started_tags, ("licence", "license"),
    )  # fmt: skip


# --- 3CX -----------------------------------------------------------------------------------------

CX = example_rule("3cx.toml")

#: 3CX names: before v18, then v18's with the display name in brackets and "-" between numbers.
CX_NAMES = [
    (
        "1001/1001_07700900123_20261120103000(23).wav",
        {"extension": "1001", "caller": "1001", "callee": "07700900123",
         "started": "20261120103000", "call_id": "23"},
    ),
    (
        "1002/+442071234567_1002_20261120103000(987654).wav",
        {"extension": "1002", "caller": "+442071234567", "callee": "1002",
         "started": "20261120103000", "call_id": "987654"},
    ),
    (
        "1001/[Alice Smith]_1001-0123456789_20261120103000(23).wav",
        {"extension": "1001", "caller": "1001", "callee": "0123456789",
         "started": "20261120103000", "call_id": "23"},
    ),
    (
        "1001/[]_+44123-1001_20261120103000(5).wav",
        {"extension": "1001", "caller": "+44123", "callee": "1001",
         "started": "20261120103000", "call_id": "5"},
    ),
]  # fmt: skip
CX_NEAR_MISSES = [
    "1001/1001_07700900123_2026112010300(23).wav",  # 13-digit time
    "1001/1001_07700900123_20261120103000.wav",  # no call id
    "1001/1001_07700900123_20261120103000(23).mp3",
    "1001/1001_07700900123_20261120103000(23).wav.tmp",
    "1001/1001_07700900123_20261120103000(x).wav",
    "1001/1001_20261120103000(23).wav",  # no callee
    "1001/[Alice Smith]1001-0123456789_20261120103000(23).wav",  # no "_" after the name
    "1001/[Alice/Smith]_1001-0123456789_20261120103000(23).wav",
    "Recordings/1001/1001_07700900123_20261120103000(23).wav",  # root set one level up
    "ext1001/1001_07700900123_20261120103000(23).wav",
    "1001/sub/1001_07700900123_20261120103000(23).wav",
    "1001_07700900123_20261120103000(23).wav",  # no extension directory
]


@pytest.mark.parametrize(("relpath", "fields"), CX_NAMES)
def test_3cx_names(relpath: str, fields: dict[str, str]) -> None:
    assert path_fields(CX, relpath) == fields
    assert not needs_tags(CX, fields)


@pytest.mark.parametrize("relpath", CX_NEAR_MISSES)
def test_3cx_near_misses(relpath: str) -> None:
    assert path_fields(CX, relpath) == {}


def recd_toml_3cx_rule() -> ClassifyRule:
    """The commented-out 3CX example source of etc/recd.toml (the configuration the package
    installs) made live, loaded by ``config.load`` with the licences.d beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recd.toml"
        path.write_text(uncommented(PATTERNS.parent / "recd.toml"), encoding="utf-8")
        loaded = config.load(path, licences_dir=PATTERNS.parent / "licences.d")
    [source] = [s for s in loaded.sources if "3cxpbx" in str(s.path)]
    return source.rule


@pytest.mark.parametrize(
    ("relpath", "fields"), [*CX_NAMES, *((relpath, {}) for relpath in CX_NEAR_MISSES)]
)
def test_recd_toml_3cx_example_reads_names_as_3cx_toml_does(
    relpath: str, fields: dict[str, str]
) -> None:
    """An operator who starts from etc/recd.toml gets the same classification, v18 names
    included, as one who pastes etc/patterns/3cx.toml."""
    rule = recd_toml_3cx_rule()
    assert path_fields(rule, relpath) == path_fields(CX, relpath) == fields
    assert run(rule, relpath) == run(CX, relpath)


def test_3cx_classification_in_the_fall_back_hour() -> None:
    # 01:30 on 25 Oct 2026 happens twice in London (BST, then GMT): the later is 01:30 UTC.
    c = run(CX, "1001/1001_07700900123_20261025013000(42).wav")
    assert c == Classification(
        licence="3CX-1234-5678",
        started=utc(2026, 10, 25, 1, 30),
        call_id="42",
        extension="1001",
        caller="1001",
        callee="07700900123",
        format="wav",
        provenance={
            "licence": Provenance.SOURCE,
            "started": Provenance.PATTERN,
            "call_id": Provenance.PATTERN,
            "extension": Provenance.PATTERN,
            "caller": Provenance.PATTERN,
            "callee": Provenance.PATTERN,
            "format": Provenance.PATTERN,
        },
    )


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("20260701120000", utc(2026, 7, 1, 11)),  # BST
        ("20261120103000", utc(2026, 11, 20, 10, 30)),  # GMT
        ("20261025005959", datetime(2026, 10, 24, 23, 59, 59, tzinfo=UTC)),  # last BST second
        ("20261025020000", utc(2026, 10, 25, 2)),  # first hour after the change
        ("20260329013000", utc(2026, 3, 29, 1, 30)),  # skipped hour: read as 02:30 BST
    ],
)
def test_3cx_times_are_london_time(stamp: str, expected: datetime) -> None:
    assert run(CX, f"1001/1001_07700900123_{stamp}(1).wav").started == expected


def test_3cx_a_name_that_does_not_match_keeps_the_licence_and_reads_tags() -> None:
    relpath = "1001/copied by hand.wav"
    assert needs_tags(CX, path_fields(CX, relpath))
    c = run(CX, relpath, {"started": "2026-11-20T10:30:00Z", "format": "wav"})
    assert (c.licence, c.provenance["licence"]) == ("3CX-1234-5678", Provenance.SOURCE)
    assert (c.started, c.provenance["started"]) == (utc(2026, 11, 20, 10, 30), Provenance.TAGS)
    c = run(CX, relpath)
    assert (c.started, c.provenance["started"]) == (MTIME, Provenance.MTIME)


# --- Asterisk / FreePBX --------------------------------------------------------------------------

AST = example_rule("asterisk.toml")
UID = "1763634600.17"


@pytest.mark.parametrize(
    ("relpath", "fields"),
    [
        (f"2026/11/20/in-1001-02071234567-20261120-103000-{UID}.wav",
         {"callee": "1001", "caller": "02071234567"}),
        (f"2026/11/20/out-07700900123-1001-20261120-103000-{UID}.wav",
         {"callee": "07700900123", "caller": "1001"}),
        (f"2026/11/20/internal-1002-1001-20261120-103000-{UID}.WAV",
         {"callee": "1002", "caller": "1001"}),
        (f"2026/11/20/external-+442071234567-1001-20261120-103000-{UID}.gsm",
         {"callee": "+442071234567", "caller": "1001"}),
        (f"2026/11/20/q-400-02071234567-20261120-103000-{UID}.wav",
         {"callee": "400", "caller": "02071234567"}),
        (f"2026/11/20/rg-600-anonymous-20261120-103000-{UID}.wav",
         {"callee": "600", "caller": "anonymous"}),
        (f"2026/11/20/in-1001--20261120-103000-{UID}.wav", {"callee": "1001"}),  # withheld
        (f"2026/11/20/ondemand--1001-20261120-103000-{UID}.wav", {"caller": "1001"}),
    ],
)  # fmt: skip
def test_asterisk_names(relpath: str, fields: dict[str, str]) -> None:
    assert path_fields(AST, relpath) == {
        **fields,
        "started": "20261120-103000",
        "call_id": UID,
    }


@pytest.mark.parametrize(
    "relpath",
    [
        f"2026/11/20/voicemail-1001-1002-20261120-103000-{UID}.wav",  # not a recording kind
        "2026/11/20/in-1001-1002-20261120-103000-1763634600.wav",  # uniqueid without sequence
        f"2026/11/20/in-1001-1002-20261120-10300-{UID}.wav",  # 5-digit time
        f"2026/11/20/in-1001-1002-20261120103000-{UID}.wav",  # date and time not split
        f"2026/11/20/in-1001-1002-20261120-103000-{UID}.mp3",
        f"2026/11/in-1001-1002-20261120-103000-{UID}.wav",  # no day directory
        f"in-1001-1002-20261120-103000-{UID}.wav",  # not in a dated directory
        f"monitor/2026/11/20/in-1001-1002-20261120-103000-{UID}.wav",  # root set one level up
        f"2026/11/20/in-1001-1002-20261120-103000-{UID}.wav.part",
    ],
)
def test_asterisk_near_misses(relpath: str) -> None:
    assert path_fields(AST, relpath) == {}


def test_asterisk_classification_in_the_spring_forward_gap() -> None:
    # 02:30 on 8 Mar 2026 never happens in New York; the later reading is 03:30 EDT.
    c = run(AST, f"2026/03/08/in-1001-02071234567-20260308-023000-{UID}.wav")
    assert c == Classification(
        licence="ACME-PBX-0001",
        started=utc(2026, 3, 8, 7, 30),
        call_id=UID,
        caller="02071234567",
        callee="1001",
        format="wav",
        provenance={
            "licence": Provenance.SOURCE,
            "started": Provenance.PATTERN,
            "call_id": Provenance.PATTERN,
            "caller": Provenance.PATTERN,
            "callee": Provenance.PATTERN,
            "format": Provenance.PATTERN,
        },
    )
    assert not needs_tags(AST, path_fields(AST, f"2026/03/08/nothing-{UID}.wav"))  # tags off


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("20261120-103000", utc(2026, 11, 20, 15, 30)),  # EST
        ("20260701-120000", utc(2026, 7, 1, 16)),  # EDT
        ("20261101-013000", utc(2026, 11, 1, 6, 30)),  # repeated hour: the later, EST
    ],
)
def test_asterisk_times_are_new_york_time(stamp: str, expected: datetime) -> None:
    assert run(AST, f"2026/11/20/in-1001-1002-{stamp}-{UID}.wav").started == expected


# --- multi-tenant --------------------------------------------------------------------------------

MT = example_rule("multi-tenant.toml")
MT_NAME = "ACME-0001/2026/11/20/c0ffee42_+442071234567_1001_20261120T103000Z.opus"


def test_multi_tenant_full_name() -> None:
    assert path_fields(MT, MT_NAME) == {
        "licence": "ACME-0001",
        "call_id": "c0ffee42",
        "caller": "+442071234567",
        "callee": "1001",
        "started": "20261120T103000Z",
    }
    c = run(MT, MT_NAME)
    assert (c.licence, c.started, c.format) == ("ACME-0001", utc(2026, 11, 20, 10, 30), "opus")
    assert c.provenance["licence"] is Provenance.PATTERN
    assert not needs_tags(MT, path_fields(MT, MT_NAME))


def test_multi_tenant_times_ending_in_z_ignore_the_timezone() -> None:
    london = ClassifyRule(
        timezone=ZoneInfo("Europe/London"),
        pattern=MT.pattern,
        started_format=MT.started_format,
    )
    summer = MT_NAME.replace("20261120T103000Z", "20260701T120000Z")
    assert run(london, summer).started == utc(2026, 7, 1, 12)


@pytest.mark.parametrize(
    ("relpath", "fields"),
    [
        ("ACME-0001/2026/11/20/c0ffee42__1001_20261120T103000Z.wav",
         {"licence": "ACME-0001", "call_id": "c0ffee42", "callee": "1001",
          "started": "20261120T103000Z"}),
        # Below a tenant's directory, a file that does not follow the scheme is still theirs.
        ("ACME-0001/notes/handover.wav", {"licence": "ACME-0001"}),
        ("ACME-0001/2026/11/20/c0ffee42_1_2_20261120T103000.opus", {"licence": "ACME-0001"}),
        ("ACME-0001/2026/11/20/c0ffee42_1_2_20261120T103000Z.opus.tmp",
         {"licence": "ACME-0001"}),
        ("tenant_2.eu/x.mp3", {"licence": "tenant_2.eu"}),
        # Not below a tenant's directory: unclassified.
        ("stray.wav", {}),
        ("lost+found/1234", {}),
        ("ACME 0001/2026/11/20/c0ffee42_1_2_20261120T103000Z.opus", {}),
        ("-ACME/x.wav", {}),
        ("/ACME/x.wav", {}),
    ],
)  # fmt: skip
def test_multi_tenant_partial_names_and_near_misses(relpath: str, fields: dict[str, str]) -> None:
    assert path_fields(MT, relpath) == fields


def test_multi_tenant_dates_an_odd_name_from_its_riff_info_creation_date(tmp_path: Path) -> None:
    relpath = "ACME-0001/imported/call.wav"
    path = write_wav(tmp_path / relpath, info={"ICRD": "2026-11-20 10:30:00"})
    fields = path_fields(MT, relpath)
    assert needs_tags(MT, fields)
    with path.open("rb") as f:
        tags = MutagenTagReader().read(f, relpath)
    c = classify(MT, relpath, fields=fields, tags=tags, metadata=None, mtime=MTIME)
    assert c == Classification(
        licence="ACME-0001",
        started=utc(2026, 11, 20, 10, 30),
        duration=1.0,
        format="wav",
        provenance={
            "licence": Provenance.PATTERN,
            "started": Provenance.TAGS,
            "duration": Provenance.TAGS,
            "format": Provenance.TAGS,
        },
    )


def test_multi_tenant_unclassified_outside_a_tenant_directory() -> None:
    c = run(MT, "stray.wav")
    assert (c.licence, c.started, c.provenance["started"]) == (None, MTIME, Provenance.MTIME)
    assert "licence" not in c.provenance
