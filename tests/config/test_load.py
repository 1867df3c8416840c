"""recd.config.load: every problem message word for word, defaults, a full round trip, the examples.

Real TOML files in tmp_path; ``TMP`` in expected text stands for the test's tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
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
from recd.core.classify import DEFAULT_TAG_NAMES, ClassifyRule
from recd.core.erasure import EraseSettings
from recd.core.model import EraseMethod, ErasePattern, Mode, OnIneffective, UnclassifiedPolicy
from recd.core.periods import Period
from recd.core.safety import SafetySettings
from recd.errors import ConfigInvalid, ExitCode

REPO = Path(__file__).resolve().parents[2]
HINT = "use s, m, h, d, w, mo, y, ISO 8601 such as P30D, or never"
FIXED = "this setting takes a fixed length such as 30s, 2m, 6h or 7d"
LISTEN = 'metrics.listen: expected "host:port", such as "127.0.0.1:9464" or "[::1]:9464", got'
UNCLOSED = "not a valid regular expression: missing ), unterminated subpattern at position 0"
GROUPS = "(groups may be named licence, started, call_id, extension, caller, callee)"
KEY = hashlib.sha256(b"agent key").digest()
KEY_TEXT = "ed25519:" + base64.b64encode(KEY).decode()


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented, ``{tmp}`` = its directory); a recd.toml gets an empty licences.d
    beside it, as recd needs one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name == "recd.toml":
        (path.parent / "licences.d").mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).replace("{tmp}", str(path.parent)))
    return path


def problems(path: Path, licences_dir: Path | None = None) -> list[str]:
    """Every problem ``load`` reports, as printed, with the tmp dir shown as TMP."""
    with pytest.raises(ConfigInvalid) as excinfo:
        load(path, licences_dir=licences_dir)
    assert excinfo.value.exit_code is ExitCode.CONFIG
    assert str(excinfo.value) == "\n".join(str(p) for p in excinfo.value.problems)
    return [str(p).replace(str(path.parent), "TMP") for p in excinfo.value.problems]


def main_problems(tmp_path: Path, text: str) -> list[str]:
    """Problems of a recd.toml holding ``text``, as ``key: message`` (all are in that file)."""
    path = write(tmp_path / "recd.toml", text)
    found = problems(path)
    assert all(line.startswith("TMP/recd.toml: ") for line in found)
    return [line.removeprefix("TMP/recd.toml: ") for line in found]


def source(body: str = "", *, name: str = "pbx1", path: str = "{tmp}/rec") -> str:
    return f'[[source]]\nname = "{name}"\ntype = "directory"\npath = "{path}"\n{body}\n'


def s3(body: str = "", *, name: str = "archive") -> str:
    return f'[[source]]\nname = "{name}"\ntype = "s3"\nbucket = "recordings"\n{body}\n'


# --- reading files -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "recd.toml") == [
        "TMP/recd.toml: cannot read: No such file or directory"
    ]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "recd.toml").mkdir()
    assert problems(tmp_path / "recd.toml") == ["TMP/recd.toml: cannot read: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "recd.toml").write_bytes(b'[daemon]\nadmin_group = "\xff"\n')
    assert problems(tmp_path / "recd.toml") == [
        "TMP/recd.toml: not UTF-8 text (invalid start byte at offset 24)"
    ]


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "[daemon]\nmode = enforce\n")
    assert problems(path) == ["TMP/recd.toml: invalid TOML: Invalid value (at line 2, column 8)"]


FALLBACK = "(every licence's recordings would get retention.default)"


def test_licences_dir_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    (tmp_path / "licences.d").rmdir()
    write(tmp_path / "licences.d", "not a directory")
    assert problems(path) == [
        f"TMP/licences.d: the licences directory is not a directory {FALLBACK}"
    ]


def test_missing_licences_dir_is_an_error(tmp_path: Path) -> None:
    # It was "no licences": every licensed recording fell to retention.default and was erased.
    path = write(tmp_path / "recd.toml", "")
    (tmp_path / "licences.d").rmdir()
    assert problems(path) == [
        f"TMP/licences.d: the licences directory does not exist {FALLBACK}; "
        "create it, empty if there are none"
    ]


def test_empty_licences_dir_means_no_licences(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", ""))
    assert config.licences == {}


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


SOURCE_CASES = [
    (
        "[[source]]",
        ["source[0].name: required key is missing", "source[0].type: required key is missing"],
    ),
    (
        '[[source]]\nname = "my pbx"\ntype = "directory"\npath = "{tmp}/rec"',
        [
            'source[0].name: "my pbx" is not a valid source name (use letters, digits, '
            '"_", "." and "-", starting with a letter or digit)'
        ],
    ),
    ('[[source]]\nname = ""\ntype = "s3"\nbucket = "bkt"', ["source[0].name: must not be empty"]),
    (
        source() + source(path="{tmp}/other"),
        ['source[1].name: "pbx1" is already the name of source[0]'],
    ),
    ('[[source]]\nname = "a"\ntype = "directory"', ["source[0].path: required key is missing"]),
    (source(path="rec"), ['source[0].path: must be an absolute path, got "rec"']),
    (
        '[[source]]\nname = "a"\ntype = "ftp"\npath = "/x"\nbucket = "b"\nprefix = "p"',
        ['source[0].type: "ftp" is not one of "directory", "s3"'],
    ),
    (
        source('bucket = "b"\nmetadata = true\npoll = "1m"'),
        [
            'source[0].bucket: only for "s3" sources; this source is "directory"',
            'source[0].poll: only for "s3" sources; this source is "directory"',
            'source[0].metadata: only for "s3" sources; this source is "directory"',
        ],
    ),
    (
        s3('path = "/srv/rec"'),
        ['source[0].path: only for "directory" sources; this source is "s3"'],
    ),
    ('[[source]]\nname = "a"\ntype = "s3"', ["source[0].bucket: required key is missing"]),
    (
        s3('endpoint_url = "minio:9000"'),
        ['source[0].endpoint_url: expected an http:// or https:// URL, got "minio:9000"'],
    ),
    (
        s3('endpoint_url = "http://"'),
        ['source[0].endpoint_url: expected an http:// or https:// URL, got "http://"'],
    ),
    (s3('poll = "0m"'), ["source[0].poll: must be longer than 0s"]),
    (s3("prefix = 1"), ["source[0].prefix: expected a string, got integer"]),
    (
        s3('region = ""\nmirror_legal_holds = "no"'),
        [
            "source[0].region: must not be empty",
            "source[0].mirror_legal_holds: expected a boolean (true or false), got string",
        ],
    ),
    (
        s3("bypass_governance = 1"),
        ["source[0].bypass_governance: expected a boolean (true or false), got integer"],
    ),
    (
        s3("tags = true"),
        [
            "source[0].tags: audio tags are not read from S3 objects (that would download every "
            "object); use metadata = true for x-amz-meta-* and object tags"
        ],
    ),
    (
        '[[source]]\nname = "a"\ntype = "s3"\nbucket = "Recordings_2026"',
        [
            'source[0].bucket: "Recordings_2026" is not a valid bucket name (3 to 63 characters: '
            'lower-case letters, digits, "." and "-")'
        ],
    ),
    (source('patern = "x"'), ['source[0].patern: unknown key (did you mean "pattern"?)']),
    (
        source('licence = "ACME 1"'),
        ['source[0].licence: must not contain whitespace or "/", got "ACME 1"'],
    ),
    (
        source('licence = "acme/1"'),
        ['source[0].licence: must not contain whitespace or "/", got "acme/1"'],
    ),
    (
        source("pattern = '('"),
        [f"source[0].pattern: {UNCLOSED}"],
    ),
    (
        source("pattern = '^(?P<date>\\d+)_(?P<ext>\\d+)_(?P<caller>\\d+)'"),
        [
            f'source[0].pattern: unknown group "date" {GROUPS}',
            f'source[0].pattern: unknown group "ext" {GROUPS}',
        ],
    ),
    (
        source('started_format = "%Y%m%d"'),
        ["source[0].started_format: needs a pattern with a (?P<started>...) group"],
    ),
    (
        source("pattern = '^(?P<call_id>\\d+)'\nstarted_format = \"%Y%m%d\""),
        ["source[0].started_format: needs a pattern with a (?P<started>...) group"],
    ),
    (
        source("pattern = '(?P<started>'\nstarted_format = \"%Y%m%d\""),
        [f"source[0].pattern: {UNCLOSED}"],
    ),
    (
        source('pattern = 5\nstarted_format = "%Y%m%d"'),
        ["source[0].pattern: expected a string, got integer"],
    ),
    (
        source("pattern = '(?P<started>\\d+)'\nstarted_format = \"%Y%Q%m%\""),
        [
            'source[0].started_format: unknown directive "%Q" in "%Y%Q%m%" '
            "(see strptime in the Python documentation)",
            'source[0].started_format: "%Y%Q%m%" ends with a lone "%"',
        ],
    ),
    (
        source('timezone = "Europe/Londn"'),
        ['source[0].timezone: unknown time zone "Europe/Londn" (did you mean "Europe/London"?)'],
    ),
    (
        source('timezone = "Mars/Olympus"'),
        ['source[0].timezone: unknown time zone "Mars/Olympus" (such as "Europe/London" or "UTC")'],
    ),
    (
        source('timezone = "../etc/passwd"'),
        [
            'source[0].timezone: unknown time zone "../etc/passwd" '
            '(such as "Europe/London" or "UTC")'
        ],
    ),
    (source('timezone = ""'), ["source[0].timezone: must not be empty"]),
    (source('tags = "yes"'), ["source[0].tags: expected a boolean (true or false), got string"]),
    (source('tag_names = "x"'), ["source[0].tag_names: expected a table, got string"]),
    (
        source('[source.tag_names]\nfoo = "x"'),
        [
            "source[0].tag_names.foo: unknown field (tag names can be set for licence, call_id, "
            "started, caller, callee, extension)"
        ],
    ),
    (
        source("[source.tag_names]\ncaller = 1"),
        ["source[0].tag_names.caller: expected a string or an array of strings, got integer"],
    ),
    (
        source("[source.tag_names]\ncaller = []"),
        ["source[0].tag_names.caller: must name at least one tag"],
    ),
    (
        source('[source.tag_names]\ncaller = ""'),
        ["source[0].tag_names.caller: expected a tag name, got an empty string"],
    ),
    (
        source('[source.tag_names]\ncaller = ["from", 2, " "]'),
        [
            "source[0].tag_names.caller[1]: expected a tag name, got integer",
            "source[0].tag_names.caller[2]: expected a tag name, got an empty string",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), SOURCE_CASES)
def test_source_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert main_problems(tmp_path, text) == expected


# --- where a source may be -----------------------------------------------------------------------

ROOT_CASES = [
    ("/", '"/" is the root directory; recd refuses to erase there'),
    ("/etc", '"/etc" is the system directory /etc; recd refuses to erase there'),
    ("/etc/x", '"/etc/x" is inside the system directory /etc; recd refuses to erase there'),
    (
        "/usr/local/rec",
        '"/usr/local/rec" is inside the system directory /usr; recd refuses to erase there',
    ),
    ("/run/rec", '"/run/rec" is inside the system directory /run; recd refuses to erase there'),
    ("/lib64", '"/lib64" is the system directory /lib64; recd refuses to erase there'),
    ("/srv/../etc", '"/srv/../etc" is the system directory /etc; recd refuses to erase there'),
    ("/home", '"/home" is the whole of /home; name the directory that holds the recordings'),
    (
        "/var/lib/",
        '"/var/lib" is the whole of /var/lib; name the directory that holds the recordings',
    ),
    ("/tmp", '"/tmp" is the whole of /tmp; name the directory that holds the recordings'),
    (
        "/var/tmp",
        '"/var/tmp" is the whole of /var/tmp; name the directory that holds the recordings',
    ),
    ("/var/lib/recd", '"/var/lib/recd" is daemon.state_dir; recd refuses to erase its own state'),
    (
        "/var/lib/recd/certificates",
        '"/var/lib/recd/certificates" is inside daemon.state_dir ("/var/lib/recd"); '
        "recd refuses to erase its own state",
    ),
]


@pytest.mark.parametrize(("root", "message"), ROOT_CASES)
def test_refused_source_root(tmp_path: Path, root: str, message: str) -> None:
    assert main_problems(tmp_path, source(path=root)) == [f"source[0].path: {message}"]


@pytest.mark.parametrize(
    "root", ["/home/pbx/recordings", "/var/spool/asterisk/monitor", "/srv/rec"]
)
def test_accepted_source_root(tmp_path: Path, root: str) -> None:
    config = load(write(tmp_path / "recd.toml", source(path=root)))
    assert config.sources[0].path == Path(root)


def test_source_root_and_state_dir(tmp_path: Path) -> None:
    text = '[daemon]\nstate_dir = "{tmp}/state"\n'
    text += source(name="a", path="{tmp}/state")
    text += source(name="b", path="{tmp}/state/rec")
    text += source(name="c", path="{tmp}")
    assert main_problems(tmp_path, text) == [
        'source[0].path: "TMP/state" is daemon.state_dir; recd refuses to erase its own state',
        'source[1].path: "TMP/state/rec" is inside daemon.state_dir ("TMP/state"); '
        "recd refuses to erase its own state",
        'source[1].path: "TMP/state/rec" is inside the root of source "a" '
        '(source[0], "TMP/state"); two sources must not overlap',
        'source[2].path: "TMP" contains daemon.state_dir ("TMP/state"); '
        "recd refuses to erase its own state",
        'source[2].path: "TMP" contains the root of source "a" (source[0], "TMP/state"); '
        "two sources must not overlap",
        'source[2].path: "TMP" contains the root of source "b" (source[1], "TMP/state/rec"); '
        "two sources must not overlap",
    ]


def test_symlinks_are_followed_for_the_checks(tmp_path: Path) -> None:
    (tmp_path / "to-etc").symlink_to("/etc")
    (tmp_path / "state").mkdir()
    (tmp_path / "to-state").symlink_to(tmp_path / "state")
    (tmp_path / "rec").mkdir()
    (tmp_path / "to-rec").symlink_to(tmp_path / "rec")
    text = '[daemon]\nstate_dir = "{tmp}/to-state"\n'
    text += source(name="a", path="{tmp}/to-etc/recordings")
    text += source(name="b", path="{tmp}/state/x")
    text += source(name="c", path="{tmp}/rec")
    text += source(name="d", path="{tmp}/to-rec")
    assert main_problems(tmp_path, text) == [
        'source[0].path: "TMP/to-etc/recordings" resolves to "/etc/recordings", which is inside '
        "the system directory /etc; recd refuses to erase there",
        'source[1].path: "TMP/state/x" is inside daemon.state_dir ("TMP/state"); '
        "recd refuses to erase its own state",
        'source[3].path: "TMP/to-rec" is the same directory as the root of source "c" '
        '(source[2], "TMP/rec"); two sources must not overlap',
    ]


def test_overlapping_buckets(tmp_path: Path) -> None:
    text = s3('prefix = "tenants/"', name="a")
    text += s3('prefix = "tenants/acme/"', name="b")
    text += s3('prefix = "other/"', name="c")
    text += s3('prefix = "tenants/"\nendpoint_url = "https://s3.example"', name="d")
    text += '[[source]]\nname = "e"\ntype = "s3"\nbucket = "archive"\n'
    text += s3("", name="f")
    assert main_problems(tmp_path, text) == [
        'source[1].prefix: bucket "recordings" prefix "tenants/acme/" overlaps source "a" '
        '(source[0], prefix "tenants/"); two sources must not overlap',
        'source[5].prefix: bucket "recordings" prefix "" overlaps source "a" '
        '(source[0], prefix "tenants/"); two sources must not overlap',
        'source[5].prefix: bucket "recordings" prefix "" overlaps source "b" '
        '(source[1], prefix "tenants/acme/"); two sources must not overlap',
        'source[5].prefix: bucket "recordings" prefix "" overlaps source "c" '
        '(source[2], prefix "other/"); two sources must not overlap',
    ]


# --- licences.d ----------------------------------------------------------------------------------

LICENCE = 'id = "ACME-1"\nname = "Acme Ltd"\nretention = "3mo"\n'
AGENT = f'[[agent]]\nname = "Jane Doe"\nemail = "dpo@acme.example"\npublic_key = "{KEY_TEXT}"\n'

LICENCE_CASES = [
    (
        "",
        [
            "id: required key is missing",
            "name: required key is missing",
            "retention: required key is missing",
        ],
    ),
    ('id = ""\nname = "A"\nretention = "1d"', ["id: must not be empty"]),
    (
        'id = "ACME 1"\nname = "A"\nretention = "1d"',
        ['id: must not contain whitespace or "/", got "ACME 1"'],
    ),
    (
        'id = "a/b"\nname = "A"\nretention = "1d"',
        ['id: must not contain whitespace or "/", got "a/b"'],
    ),
    ('id = "A"\nname = 1\nretention = "1d"', ["name: expected a string, got integer"]),
    (
        'id = "A"\nname = "A"\nretention = "3mon"',
        [f'retention: unknown unit "mon" in "3mon" ({HINT})'],
    ),
    (
        LICENCE + 'verification = "three-person"',
        ['verification: "three-person" is not one of "two-person", "signature"'],
    ),
    (
        LICENCE + 'verification = "signature"',
        ['verification: "signature" needs at least one [[agent]] with a public_key'],
    ),
    (LICENCE + "retension = 1", ['retension: unknown key (did you mean "retention"?)']),
    (LICENCE + "agent = 1", ["agent: expected an array of tables ([[agent]]), got integer"]),
    (LICENCE + "agent = [1]", ["agent[0]: expected a table, got integer"]),
    (
        LICENCE + "[[agent]]\nphone = 1",
        [
            "agent[0].name: required key is missing",
            "agent[0].email: required key is missing",
            "agent[0].public_key: required key is missing",
            "agent[0].phone: unknown key",
        ],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "rsa:AAAA"),
        [
            'agent[0].public_key: expected "ed25519:" and the base64 of the 32-byte public key, '
            'got "rsa:AAAA"'
        ],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "ed25519:not base64!"),
        ['agent[0].public_key: not valid base64 after "ed25519:"'],
    ),
    (
        LICENCE + AGENT.replace(KEY_TEXT, "ed25519:" + base64.b64encode(KEY[:31]).decode()),
        ["agent[0].public_key: an Ed25519 public key is 32 bytes; this one is 31"],
    ),
    (
        LICENCE + 'verification = "signature"\n' + AGENT.replace(KEY_TEXT, "ed25519:"),
        ["agent[0].public_key: an Ed25519 public key is 32 bytes; this one is 0"],
    ),
    (LICENCE + "x = = 1", ["invalid TOML: Invalid value (at line 4, column 5)"]),
]


@pytest.mark.parametrize(("text", "expected"), LICENCE_CASES)
def test_licence_problem(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "licences.d" / "acme.toml", text)
    found = problems(path)
    assert all(line.startswith("TMP/licences.d/acme.toml: ") for line in found)
    assert [line.removeprefix("TMP/licences.d/acme.toml: ") for line in found] == expected


def test_same_licence_id_in_two_files(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "licences.d" / "a.toml", LICENCE)
    write(tmp_path / "licences.d" / "b.toml", LICENCE.replace("Acme Ltd", "Acme again"))
    assert problems(path) == [
        'TMP/licences.d/b.toml: id: licence "ACME-1" is already defined in TMP/licences.d/a.toml'
    ]


def test_licence_files_are_toml_files_in_name_order_without_dot_files(tmp_path: Path) -> None:
    path = write(tmp_path / "recd.toml", "")
    write(tmp_path / "lic" / "b.toml", 'id = "B"\nname = "Bee"\nretention = "1y"')
    write(tmp_path / "lic" / "a.toml", 'id = "A"\nname = "Ay"\nretention = "30d"')
    write(tmp_path / "lic" / ".#a.toml", "garbage = [")
    write(tmp_path / "lic" / "a.toml.bak", "garbage = [")
    write(tmp_path / "lic" / "README", "garbage = [")
    (tmp_path / "lic" / "sub.d").mkdir()
    config = load(path, licences_dir=tmp_path / "lic")
    assert list(config.licences) == ["A", "B"]
    assert config.licences["B"].file == tmp_path / "lic" / "b.toml"


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


def test_source_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", source() + s3()))
    directory, bucket = config.sources
    assert directory == SourceConfig(
        name="pbx1", type="directory", rule=ClassifyRule(timezone=UTC), path=tmp_path / "rec"
    )
    assert bucket == SourceConfig(
        name="archive",
        type="s3",
        rule=ClassifyRule(timezone=UTC),
        bucket="recordings",
        prefix="",
        poll=timedelta(minutes=5),
    )
    assert directory.rule.timezone is UTC
    assert directory.rule.tag_names is DEFAULT_TAG_NAMES


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
            max_due_fraction=1.0, min_breaker_count=0, max_clock_jump=timedelta(minutes=10)
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


def test_warning_for_no_sources(tmp_path: Path) -> None:
    config = load(write(tmp_path / "recd.toml", ""))
    assert config_warnings(config) == ["no [[source]] is configured: recd has nothing to watch"]


# --- the shipped examples ------------------------------------------------------------------------

EXAMPLE = REPO / "etc" / "recd.toml"
EXAMPLE_LICENCES = REPO / "etc" / "licences.d"
EXAMPLE_PATH = 'path = "/var/lib/3cxpbx/Instance1/Data/Recordings"'


def test_example_config_loads_and_shows_every_default(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert EXAMPLE_PATH in text
    path = tmp_path / "recd.toml"
    path.write_text(text.replace(EXAMPLE_PATH, f'path = "{tmp_path}/recordings"'))
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
    assert {section: sorted(shown[section]) for section in shown if section != "source"} == {
        "daemon": ["admin_group", "mode", "rescan", "socket", "state_dir"],
        "metrics": ["listen", "per_licence"],
        "retention": ["default", "unclassified"],
        "erase": ["method", "on_ineffective", "pattern", "settle", "verify"],
        "audit": ["compress", "rotate_size"],
        "holds": ["release_grace"],
        "safety": ["max_clock_gap", "max_clock_jump", "max_due_fraction", "min_breaker_count"],
    }
    (pbx1,) = config.sources
    assert pbx1.path == tmp_path / "recordings"
    assert pbx1.rule.licence in config.licences
    assert config_warnings(config) == []


def test_commented_s3_example_loads(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index(
        "# Example: a multi-tenant S3 bucket with the licence as the first key segment."
    )
    uncommented = [line.removeprefix("# ") for line in lines[start + 1 :]]
    path = tmp_path / "recd.toml"
    path.write_text(
        "\n".join(lines[:start] + uncommented).replace(EXAMPLE_PATH, f'path = "{tmp_path}/r"')
    )
    config = load(path, licences_dir=EXAMPLE_LICENCES)
    assert [s.name for s in config.sources] == ["pbx1", "archive"]
    assert config.sources[1].bucket == "recordings"


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
