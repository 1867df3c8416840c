"""recd.config.load: every problem message word for word, defaults, a full round trip, the examples.

Real TOML files in tmp_path; ``TMP`` in expected text stands for the test's tmp_path.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, timedelta
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from recd.config.load import (
    Agent,
    AuditSettings,
    Config,
    DaemonSettings,
    HoldSettings,
    Licence,
    Listen,
    MetricsSettings,
    RetentionSettings,
    SourceConfig,
    config_warnings,
    load,
)
from recd.config.patterns import LinearPattern
from recd.core.classify import ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, ErasePattern, Mode, OnIneffective, UnclassifiedPolicy
from recd.core.periods import Period
from recd.core.safety import SafetySettings
from recd.errors import ConfigInvalid
from tests.config.helpers import (
    AGENT,
    HINT,
    KEY,
    LICENCE,
    main_problems,
    problems,
    source,
    uncommented,
    write,
)

REPO = Path(__file__).resolve().parents[2]
FIXED = "this setting takes a fixed length such as 30s, 2m, 6h or 7d"
LISTEN = 'metrics.listen: expected "host:port", such as "127.0.0.1:9464" or "[::1]:9464", got'


# --- recd.toml: one case per message -------------------------------------------------------------

CASES = [
    # types
    ("[daemon]\nmode = 1", ["daemon.mode: expected a string, got integer"]),
    ("daemon = 5", ["daemon: expected a table, got integer"]),
    ("daemon = []", ["daemon: expected a table, got array"]),
    ("[daemon]\nstate_dir = 2023-01-01", ["daemon.state_dir: expected a string, got date"]),
    (
        "[daemon]\nrescan = 12:00:00",
        ['daemon.rescan: expected a string such as "30s", "2m", "6h" or "7d", got time'],
    ),
    (
        "[daemon]\nadmin_group = 2023-01-01T00:00:00Z",
        ["daemon.admin_group: expected a string, got datetime"],
    ),
    (
        '[metrics]\nper_licence = "yes"',
        ["metrics.per_licence: expected a boolean (true or false), got string"],
    ),
    (
        "[erase]\nsettle = 120",
        ['erase.settle: expected a string such as "30s", "2m", "6h" or "7d", got integer'],
    ),
    (
        "[retention]\ndefault = 30",
        ['retention.default: expected a string such as "30d" or "3mo", got integer'],
    ),
    ("[erase]\nverify = 1", ["erase.verify: expected a boolean (true or false), got integer"]),
    (
        "[safety]\nmin_breaker_count = true",
        ["safety.min_breaker_count: expected an integer, got boolean"],
    ),
    (
        "[safety]\nmin_breaker_count = 1.5",
        ["safety.min_breaker_count: expected an integer, got float"],
    ),
    (
        '[safety]\nmax_due_fraction = "0.5"',
        ["safety.max_due_fraction: expected a number, got string"],
    ),
    (
        "[safety]\nmax_due_fraction = true",
        ["safety.max_due_fraction: expected a number, got boolean"],
    ),
    ("source = 1", ["source: expected an array of tables ([[source]]), got integer"]),
    (
        '[source]\nname = "pbx1"',
        ["source: expected an array of tables ([[source]]), got table"],
    ),
    ("source = [1]", ["source[0]: expected a table, got integer"]),
    # unknown keys
    ('[erase]\nsetle = "2m"', ['erase.setle: unknown key (did you mean "settle"?)']),
    ("[daemon]\nfoo = 1", ["daemon.foo: unknown key"]),
    ("[erasee]", ['erasee: unknown key (did you mean "erase"?)']),
    ('[[sources]]\nname = "x"', ['sources: unknown key (did you mean "source"?)']),
    ('"odd key" = 1', ['"odd key": unknown key']),
    (
        '[metrics]\n"listen.port" = 1',
        ['metrics."listen.port": unknown key (did you mean "listen"?)'],
    ),
    # closed sets
    ('[daemon]\nmode = "enforced"', ['daemon.mode: "enforced" is not one of "enforce", "dry-run"']),
    (
        '[retention]\nunclassified = "delete"',
        ['retention.unclassified: "delete" is not one of "keep", "default"'],
    ),
    (
        '[erase]\nmethod = "s3-delete"',
        ['erase.method: "s3-delete" is not one of "overwrite", "unlink"'],
    ),
    ('[erase]\npattern = "ones"', ['erase.pattern: "ones" is not one of "zeros", "random"']),
    (
        '[erase]\non_ineffective = "ignore"',
        ['erase.on_ineffective: "ignore" is not one of "unlink", "refuse"'],
    ),
    # periods and durations
    (
        '[retention]\ndefault = "3mon"',
        [f'retention.default: unknown unit "mon" in "3mon" ({HINT})'],
    ),
    ('[retention]\ndefault = ""', [f"retention.default: no period given ({HINT})"]),
    ('[daemon]\nrescan = "1mo"', [f'daemon.rescan: "1mo" is a calendar period; {FIXED}']),
    ('[daemon]\nrescan = "0s"', ["daemon.rescan: must be longer than 0s"]),
    (
        '[safety]\nmax_clock_jump = "never"',
        [f'safety.max_clock_jump: "never" is not a fixed length; {FIXED}'],
    ),
    ('[safety]\nmax_clock_jump = "PT0S"', ["safety.max_clock_jump: must be longer than 0s"]),
    ('[safety]\nmax_clock_gap = "0d"', ["safety.max_clock_gap: must be longer than 0s"]),
    ('[safety]\nmax_clock_skew = "0s"', ["safety.max_clock_skew: must be longer than 0s"]),
    (
        "[safety]\nmax_clock_skew = 60",
        ['safety.max_clock_skew: expected a string such as "30s", "2m", "6h" or "7d", got integer'],
    ),
    (
        '[safety]\nmax_clock_skew = "5m"',
        [
            "safety.max_clock_skew: must be at most 4m (two hosts may differ by twice it, and a "
            'shared catalogue\'s claims last 10m), got "5m"'
        ],
    ),
    (
        '[safety]\nmax_clock_gap = "1y"',
        [f'safety.max_clock_gap: "1y" is a calendar period; {FIXED}'],
    ),
    (
        '[erase]\nsettle = "soon"',
        ['erase.settle: not a period: "soon" (use s, m, h, d, w, or ISO 8601 such as PT12H)'],
    ),
    ('[holds]\nrelease_grace = "1y"', [f'holds.release_grace: "1y" is a calendar period; {FIXED}']),
    # paths and names
    (
        '[daemon]\nstate_dir = "var/lib/recd"',
        ['daemon.state_dir: must be an absolute path, got "var/lib/recd"'],
    ),
    ('[daemon]\nsocket = ""', ["daemon.socket: must not be empty"]),
    ('[daemon]\nadmin_group = "  "', ["daemon.admin_group: must not be empty"]),
    # metrics.listen
    (
        '[metrics]\nlisten = "9464"',
        [f'{LISTEN} "9464"'],
    ),
    (
        '[metrics]\nlisten = ":9464"',
        [f'{LISTEN} ":9464"'],
    ),
    (
        '[metrics]\nlisten = "local host:9464"',
        [
            'metrics.listen: expected "host:port", such as "127.0.0.1:9464" or "[::1]:9464", '
            'got "local host:9464"'
        ],
    ),
    (
        '[metrics]\nlisten = "[::1]"',
        [f'{LISTEN} "[::1]"'],
    ),
    (
        '[metrics]\nlisten = "::1:9464"',
        ['metrics.listen: write an IPv6 address in brackets, such as "[::1]:9464"'],
    ),
    ('[metrics]\nlisten = "[foo]:9464"', ['metrics.listen: "foo" is not an IPv6 address']),
    (
        '[metrics]\nlisten = "localhost:99999"',
        ['metrics.listen: port must be a number from 0 to 65535, got "99999"'],
    ),
    (
        '[metrics]\nlisten = "localhost:123456"',
        ['metrics.listen: port must be a number from 0 to 65535, got "123456"'],
    ),
    (
        '[metrics]\nlisten = "localhost:http"',
        ['metrics.listen: port must be a number from 0 to 65535, got "http"'],
    ),
    (
        '[metrics]\nlisten = "localhost:"',
        ['metrics.listen: port must be a number from 0 to 65535, got ""'],
    ),
    (
        '[metrics]\nlisten = "localhost:\u0663"',
        ['metrics.listen: port must be a number from 0 to 65535, got "\u0663"'],
    ),
    # safety numbers
    (
        "[safety]\nmax_due_fraction = 0",
        ["safety.max_due_fraction: must be more than 0 and at most 1, got 0"],
    ),
    (
        "[safety]\nmax_due_fraction = 1.5",
        ["safety.max_due_fraction: must be more than 0 and at most 1, got 1.5"],
    ),
    (
        "[safety]\nmax_due_fraction = -0.1",
        ["safety.max_due_fraction: must be more than 0 and at most 1, got -0.1"],
    ),
    (
        "[safety]\nmax_due_fraction = nan",
        ["safety.max_due_fraction: must be more than 0 and at most 1, got nan"],
    ),
    ("[safety]\nmin_breaker_count = -1", ["safety.min_breaker_count: must be 0 or more, got -1"]),
    # audit log rotation
    (
        '[audit]\nrotate_size = "64MB"',
        [
            'audit.rotate_size: expected a size such as "64MiB" (units B, KiB, MiB, GiB, TiB), '
            'got "64MB"'
        ],
    ),
    (
        "[audit]\nrotate_size = 65536",
        ['audit.rotate_size: expected a string such as "64MiB", got integer'],
    ),
    ('[audit]\nrotate_size = "1KiB"', ['audit.rotate_size: must be at least 64KiB, got "1KiB"']),
    (
        '[audit]\ncompress = "xz"\nrotate = "1GiB"',
        [
            'audit.compress: "xz" is not one of "none", "gzip"',
            'audit.rotate: unknown key (did you mean "rotate_size"?)',
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_main_file_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert main_problems(tmp_path, text) == expected


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path / "recd.toml",
        """\
        [daemon]
        mode = "dryrun"

        [erase]
        setle = "2m"

        [[source]]
        name = "pbx1"
        type = "directory"
        path = "/etc/recordings"
        """,
    )
    write(tmp_path / "licences.d" / "acme.toml", 'id = "ACME"\nname = "Acme"\nretention = "3mon"')
    write(
        tmp_path / "licences.d" / "beta.toml", 'name = "Beta"\nretention = "1y"\nverification = 2'
    )
    with pytest.raises(ConfigInvalid) as excinfo:
        load(path)
    tmp = str(tmp_path)
    assert str(excinfo.value).replace(tmp, "TMP").splitlines() == [
        'TMP/recd.toml: daemon.mode: "dryrun" is not one of "enforce", "dry-run"',
        'TMP/recd.toml: erase.setle: unknown key (did you mean "settle"?)',
        'TMP/recd.toml: source[0].path: "/etc/recordings" is inside the system directory /etc; '
        "recd refuses to erase there",
        f'TMP/licences.d/acme.toml: retention: unknown unit "mon" in "3mon" ({HINT})',
        "TMP/licences.d/beta.toml: id: required key is missing",
        "TMP/licences.d/beta.toml: verification: expected a string, got integer",
    ]
    assert [p.file.replace(tmp, "TMP") for p in excinfo.value.problems] == [
        "TMP/recd.toml",
        "TMP/recd.toml",
        "TMP/recd.toml",
        "TMP/licences.d/acme.toml",
        "TMP/licences.d/beta.toml",
        "TMP/licences.d/beta.toml",
    ]
    assert [p.key for p in excinfo.value.problems] == [
        "daemon.mode",
        "erase.setle",
        "source[0].path",
        "retention",
        "id",
        "verification",
    ]


def test_unreadable_main_file_still_reports_licence_problems(tmp_path: Path) -> None:
    write(tmp_path / "licences.d" / "acme.toml", 'id = "ACME"')
    assert problems(tmp_path / "recd.toml") == [
        "TMP/recd.toml: cannot read: No such file or directory",
        "TMP/licences.d/acme.toml: name: required key is missing",
        "TMP/licences.d/acme.toml: retention: required key is missing",
    ]


# --- valid configurations ------------------------------------------------------------------------


def test_defaults_are_those_of_spec_section_11(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    config = load(path)
    assert config == Config(path=path)
    assert config.daemon == DaemonSettings(
        state_dir=Path("/var/lib/recd"),
        socket=Path("/run/recd/recd.sock"),
        admin_group="recd-admin",
        mode=Mode.ENFORCE,
        rescan=timedelta(hours=6),
    )
    assert config.metrics == MetricsSettings(listen=Listen("127.0.0.1", 9464), per_licence=True)
    assert config.retention == RetentionSettings(
        default=Period(seconds=30 * 86400), unclassified=UnclassifiedPolicy.KEEP
    )
    assert config.retention.default.text == "30d"
    assert config.erase == EraseSettings(
        method=EraseMethod.OVERWRITE,
        pattern=ErasePattern.ZEROS,
        verify=False,
        settle=timedelta(minutes=2),
        on_ineffective=OnIneffective.UNLINK,
    )
    assert config.holds == HoldSettings(release_grace=timedelta(days=7))
    assert config.safety == SafetySettings(
        max_due_fraction=0.25,
        min_breaker_count=1000,
        max_clock_jump=timedelta(hours=1),
        max_clock_gap=timedelta(days=3),
        max_clock_skew=timedelta(seconds=60),
    )
    assert config.audit == AuditSettings(rotate_size=64 * 1024 * 1024, compress="none")
    assert config.sources == ()
    assert config.licences == {}


@pytest.mark.parametrize(
    ("text", "size"), [("64KiB", 65536), ("1 GiB", 1 << 30), ("70000B", 70000), ("2TiB", 2 << 40)]
)
def test_audit_rotation(tmp_path: Path, text: str, size: int) -> None:
    config = load(
        write(tmp_path / "recd.toml", f'[audit]\nrotate_size = "{text}"\ncompress = "gzip"')
    )
    assert config.audit == AuditSettings(rotate_size=size, compress="gzip")


FULL = """\
[daemon]
state_dir = "{tmp}/state"
socket = "{tmp}/recd.sock"
admin_group = "pbx-admins"
mode = "dry-run"
rescan = "PT30M"

[metrics]
listen = "[::1]:9100"
per_licence = false

[retention]
default = "P1Y"
unclassified = "default"

[erase]
method = "unlink"
pattern = "random"
verify = true
settle = "90s"
on_ineffective = "refuse"

[holds]
release_grace = "0s"

[safety]
max_due_fraction = 1
min_breaker_count = 0
max_clock_jump = "10m"
max_clock_skew = "30s"

[[source]]
name = "pbx1"
type = "directory"
path = "{tmp}/rec/pbx1"
licence = "3CX-1234-5678"
pattern = '^(?P<extension>\\d+)/(?P<caller>[^_]+)_(?P<callee>[^_]+)_(?P<started>\\d{14})\\.wav$'
started_format = "%Y%m%d%H%M%S"
timezone = "Europe/London"
tags = true

[source.tag_names]
licence = ["Customer", "LICENCE"]
caller = "From"

[[source]]
name = "archive.eu-1"
type = "s3"
bucket = "recordings"
prefix = "tenants/"
endpoint_url = "http://127.0.0.1:9000"
region = "us-east-1"
pattern = '^tenants/(?P<licence>[^/]+)/(?P<call_id>[^/]+)\\.(wav|mp3|opus)$'
poll = "1m"
metadata = true
mirror_legal_holds = true
bypass_governance = true
"""


def test_full_config_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", FULL)
    write(tmp_path / "licences.d" / "acme.toml", LICENCE + 'verification = "signature"\n' + AGENT)
    write(
        tmp_path / "licences.d" / "beta.toml", 'id = "BETA"\nname = "Beta plc"\nretention = "never"'
    )
    config = load(path)
    expected = Config(
        path=path,
        daemon=DaemonSettings(
            state_dir=tmp_path / "state",
            socket=tmp_path / "recd.sock",
            admin_group="pbx-admins",
            mode=Mode.DRY_RUN,
            rescan=timedelta(minutes=30),
        ),
        metrics=MetricsSettings(listen=Listen("::1", 9100), per_licence=False),
        retention=RetentionSettings(
            default=Period(months=12), unclassified=UnclassifiedPolicy.DEFAULT
        ),
        erase=EraseSettings(
            method=EraseMethod.UNLINK,
            pattern=ErasePattern.RANDOM,
            verify=True,
            settle=timedelta(seconds=90),
            on_ineffective=OnIneffective.REFUSE,
        ),
        holds=HoldSettings(release_grace=timedelta(0)),
        safety=SafetySettings(
            max_due_fraction=1.0,
            min_breaker_count=0,
            max_clock_jump=timedelta(minutes=10),
            max_clock_skew=timedelta(seconds=30),
        ),
        sources=(
            SourceConfig(
                name="pbx1",
                type="directory",
                path=tmp_path / "rec" / "pbx1",
                rule=ClassifyRule(
                    timezone=ZoneInfo("Europe/London"),
                    licence="3CX-1234-5678",
                    pattern=LinearPattern(
                        r"^(?P<extension>\d+)/(?P<caller>[^_]+)_(?P<callee>[^_]+)_(?P<started>\d{14})\.wav$"
                    ),
                    started_format="%Y%m%d%H%M%S",
                    tags=True,
                    tag_names={
                        "licence": ("customer", "licence"),
                        "call_id": ("call_id",),
                        "started": ("started",),
                        "caller": ("from",),
                        "callee": ("callee",),
                        "extension": ("extension",),
                    },
                ),
            ),
            SourceConfig(
                name="archive.eu-1",
                type="s3",
                bucket="recordings",
                prefix="tenants/",
                endpoint_url="http://127.0.0.1:9000",
                region="us-east-1",
                poll=timedelta(minutes=1),
                mirror_legal_holds=True,
                bypass_governance=True,
                rule=ClassifyRule(
                    timezone=UTC,
                    pattern=LinearPattern(
                        r"^tenants/(?P<licence>[^/]+)/(?P<call_id>[^/]+)\.(wav|mp3|opus)$"
                    ),
                    metadata=True,
                ),
            ),
        ),
        licences={
            "ACME-1": Licence(
                id="ACME-1",
                name="Acme Ltd",
                retention=Period(months=3),
                file=tmp_path / "licences.d" / "acme.toml",
                verification="signature",
                agents=(Agent(name="Jane Doe", email="dpo@acme.example", public_key=KEY),),
            ),
            "BETA": Licence(
                id="BETA",
                name="Beta plc",
                retention=Period(never=True),
                file=tmp_path / "licences.d" / "beta.toml",
            ),
        },
    )
    assert config == expected
    assert config.retention.default.text == "P1Y"
    assert config.licences["ACME-1"].retention.text == "3mo"
    assert isinstance(config.licences, MappingProxyType)
    assert isinstance(config.sources[0].rule.tag_names, MappingProxyType)


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:65535", "localhost", 65535),
        ("[::]:9464", "::", 9464),
        ("[fe80::1%eth0]:9464", "fe80::1%eth0", 9464),
    ],
)
def test_metrics_listen(tmp_path: Path, listen: str, host: str, port: int) -> None:
    config = load(write(tmp_path / "recd.toml", f'[metrics]\nlisten = "{listen}"'))
    assert config.metrics.listen == Listen(host, port)
    assert str(config.metrics.listen) == listen


def test_period_for(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", '[retention]\ndefault = "14d"')
    write(tmp_path / "licences.d" / "acme.toml", LICENCE)
    config = load(path)
    assert config.period_for("ACME-1") == Period(months=3)
    assert config.period_for("OTHER") == Period(seconds=14 * 86400)
    assert config.period_for(None) is None
    path.write_text('[retention]\ndefault = "14d"\nunclassified = "default"')
    assert load(path).period_for(None) == Period(seconds=14 * 86400)


# --- warnings ------------------------------------------------------------------------------------


def test_no_warnings_for_an_ordinary_config(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", source('licence = "ACME-1"'))
    write(tmp_path / "licences.d" / "acme.toml", LICENCE)
    assert config_warnings(load(path)) == []


def test_warnings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "recd.toml",
        '[daemon]\nmode = "dry-run"\n[retention]\ndefault = "never"\n'
        + source('licence = "NOFILE"')
        + source(name="b", path="{tmp}/b"),
    )
    write(tmp_path / "licences.d" / "b.toml", 'id = "B"\nname = "Bee"\nretention = "never"')
    write(tmp_path / "licences.d" / "a.toml", 'id = "A"\nname = "Ay"\nretention = "Never"')
    lines = [line.replace(str(tmp_path), "TMP") for line in config_warnings(load(path))]
    assert lines == [
        'daemon.mode is "dry-run": recordings that are due are logged, not erased',
        "retention.default is never; recordings of licences without a file are kept until a "
        "request or a policy change",
        'source "pbx1": licence "NOFILE" has no file in licences.d; its recordings get '
        "retention.default (never)",
        'licence "A" (TMP/licences.d/a.toml): retention is never; its recordings are kept until '
        "a request or a policy change",
        'licence "B" (TMP/licences.d/b.toml): retention is never; its recordings are kept until '
        "a request or a policy change",
    ]


def test_warning_for_a_source_of_other_nodes_on_one_host(tmp_path: Path) -> None:
    """On one host a source whose nodes leave this node out is left alone, which recd says;
    with a shared catalogue that is how the other hosts' sources look, and nothing is said."""
    text = source('nodes = ["pbx-b"]') + source(
        name="mine", path="{tmp}/m", body='nodes = ["pbx-a"]'
    )
    path = write(tmp_path / "recd.toml", '[daemon]\nnode = "pbx-a"\n' + text)
    assert config_warnings(load(path)) == [
        'source "pbx1": nodes does not list this node ("pbx-a"), so recd leaves it alone (no '
        "scan, no watch, no erase); add the node to nodes, or set daemon.node"
    ]
    shared = '[catalogue]\nurl = "postgresql://recd@db1/recd"\n[daemon]\nnode = "pbx-a"\n'
    assert config_warnings(load(write(tmp_path / "recd.toml", shared + text))) == []


def test_warning_for_no_sources(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", ""))
    assert config_warnings(config) == ["no [[source]] is configured: recd has nothing to watch"]


# --- the shipped examples ------------------------------------------------------------------------

EXAMPLE = REPO / "etc" / "recd.toml"
EXAMPLE_LICENCES = REPO / "etc" / "licences.d"
EXAMPLE_PATH = 'path = "/var/lib/3cxpbx/Instance1/Data/Recordings"'


def test_example_config_loads_and_shows_every_default(tmp_path: Path) -> None:
    """As shipped (the package's conffile) it has no active source: recd runs and says so."""
    text = EXAMPLE.read_text()
    path = write(tmp_path / "recd.toml", text)
    config = load(path, licences_dir=EXAMPLE_LICENCES)
    defaults = Config(path=path)
    assert (config.daemon, config.metrics, config.retention) == (
        defaults.daemon,
        defaults.metrics,
        defaults.retention,
    )
    assert (config.erase, config.audit, config.holds, config.safety) == (
        defaults.erase,
        defaults.audit,
        defaults.holds,
        defaults.safety,
    )
    shown = tomllib.loads(text)
    assert {section: sorted(shown[section]) for section in shown} == {
        "daemon": ["admin_group", "mode", "rescan", "socket", "state_dir"],
        "metrics": ["listen", "per_licence"],
        "retention": ["default", "unclassified"],
        "erase": ["method", "on_ineffective", "pattern", "settle", "verify"],
        "audit": ["compress", "rotate_size"],
        "holds": ["release_grace"],
        "safety": [
            "max_clock_gap",
            "max_clock_jump",
            "max_clock_skew",
            "max_due_fraction",
            "min_breaker_count",
        ],
    }
    assert config.sources == ()
    assert config_warnings(config) == ["no [[source]] is configured: recd has nothing to watch"]


def test_commented_examples_load(tmp_path: Path) -> None:
    """Both commented-out sources made live: the 3CX directory and the S3 bucket."""
    assert f"# {EXAMPLE_PATH}" in EXAMPLE.read_text()  # commented out as shipped
    text = uncommented(EXAMPLE).replace(EXAMPLE_PATH, f'path = "{tmp_path}/recordings"')
    config = load(write(tmp_path / "recd.toml", text), licences_dir=EXAMPLE_LICENCES)
    assert [s.name for s in config.sources] == ["pbx1", "archive"]
    pbx1, archive = config.sources
    assert pbx1.path == tmp_path / "recordings"
    assert pbx1.rule.licence in config.licences
    assert archive.bucket == "recordings"
    assert config_warnings(config) == []


def test_example_licence(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", ""), licences_dir=EXAMPLE_LICENCES)
    assert config.licences == {
        "3CX-1234-5678": Licence(
            id="3CX-1234-5678",
            name="Acme Ltd",
            retention=Period(months=3),
            file=EXAMPLE_LICENCES / "example.toml",
        )
    }
