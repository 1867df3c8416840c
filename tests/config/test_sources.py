"""recd.config.sources: every problem of a [[source]] table word for word (its keys, its pattern, a
root recd could wrongly erase in, overlapping buckets), symlinks resolved for the checks, and the
defaults."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest

from recd.config.load import SourceConfig, load
from recd.core.classify import DEFAULT_TAG_NAMES, ClassifyRule
from tests.config.helpers import main_problems, s3, source, write

UNCLOSED = "not a valid regular expression: missing ), unterminated subpattern at position 0"
GROUPS = "(groups may be named licence, started, call_id, extension, caller, callee)"
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
    (
        source('nodes = "pbx-a"'),
        ['source[0].nodes: expected an array of node names, such as ["pbx-a"]'],
    ),
    (source("nodes = 2"), ["source[0].nodes: expected an array of node names, got integer"]),
    (
        source("nodes = []"),
        ["source[0].nodes: must name at least one node (leave nodes out for every node)"],
    ),
    (
        source('nodes = ["pbx-a", 7, "pbx b", "", "pbx-a"]'),
        [
            "source[0].nodes[1]: expected a node name, got integer",
            'source[0].nodes[2]: must be up to 64 letters, digits, ".", "_" and "-", starting '
            'with a letter or digit, got "pbx b"',
            'source[0].nodes[3]: must be up to 64 letters, digits, ".", "_" and "-", starting '
            'with a letter or digit, got ""',
            'source[0].nodes[4]: "pbx-a" is listed twice',
        ],
    ),
    (
        source('shared = "yes"'),
        ["source[0].shared: expected a boolean (true or false), got string"],
    ),
    (
        s3("shared = true"),
        [
            "source[0].shared: only for directory sources: an S3 source is always served by "
            "one node at a time; remove it"
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


def test_nodes_and_shared(tmp_path: Path) -> None:
    """``nodes`` lists who may serve the source (unknown names are fine: nodes are not listed
    centrally); ``shared`` makes a directory one-at-a-time, as every S3 source is."""
    text = (
        source('nodes = ["pbx-a", "pbx-b"]\nshared = true')
        + source(name="local", path="{tmp}/local")
        + s3('nodes = ["pbx-c"]')
    )
    pbx, local, archive = load(write(tmp_path / "recd.toml", text)).sources
    assert (pbx.nodes, pbx.shared, pbx.one_at_a_time) == (("pbx-a", "pbx-b"), True, True)
    assert (pbx.on_node("pbx-b"), pbx.on_node("pbx-c")) == (True, False)
    assert (local.nodes, local.shared, local.one_at_a_time) == (None, False, False)
    assert local.on_node("anything")
    assert (archive.nodes, archive.shared, archive.one_at_a_time) == (("pbx-c",), False, True)


SHARED_CATALOGUE = '[catalogue]\nurl = "postgresql://recd@db1/recd"\n[daemon]\nnode = "pbx-a"\n'
ONE_HOST = (
    "a directory source that is not shared {listed}, but on a shared catalogue it must list "
    "exactly one: each host's scan would mark the recordings only the others see as missing, "
    'and they would never be erased; write nodes = ["pbx-a"] and give each host its own source '
    "(the same path is fine), or shared = true if every host in nodes mounts this same "
    "directory (an NFS export)"
)


def test_on_a_shared_catalogue_a_directory_that_is_not_shared_is_one_nodes(
    tmp_path: Path,
) -> None:
    """Listed on several hosts, one source name would be one set of catalogue rows fed from
    several disks: each host's full scan would mark the others' recordings missing, never to
    be erased. Refused, naming the key, unless it is ``shared``; buckets are always shared."""
    text = (
        source()
        + source(name="two", path="{tmp}/two", body='nodes = ["pbx-a", "pbx-b"]')
        + source(name="mine", path="{tmp}/mine", body='nodes = ["pbx-a"]')
        + source(name="theirs", path="{tmp}/theirs", body='nodes = ["pbx-b"]')
        + source(name="nfs", path="{tmp}/nfs", body="shared = true")
        + s3()
    )
    assert main_problems(tmp_path, SHARED_CATALOGUE + text) == [
        "source[0].nodes: " + ONE_HOST.format(listed="leaves nodes out (every node)"),
        "source[1].nodes: " + ONE_HOST.format(listed="lists several nodes"),
    ]
    one_host = load(write(tmp_path / "recd.toml", text))  # SQLite: one host, nothing to refuse
    assert [s.name for s in one_host.sources] == ["pbx1", "two", "mine", "theirs", "nfs", "archive"]


def test_each_hosts_own_source_may_have_the_same_path(tmp_path: Path) -> None:
    """One recd.toml for every host: each PBX's local spool is a source of its own, at the
    same path on each host. Directories no node serves together do not overlap; any node in
    common (or nodes left out) and they do, as do buckets, which every host sees alike."""
    pbx = 'path = "{tmp}/spool"\nnodes = ["%s"]\n'
    text = "".join(
        f'[[source]]\nname = "{n}-local"\ntype = "directory"\n' + pbx % n
        for n in ("pbx-a", "pbx-b", "pbx-c")
    )
    config = load(write(tmp_path / "recd.toml", SHARED_CATALOGUE + text))
    assert [(s.name, s.nodes) for s in config.sources] == [
        ("pbx-a-local", ("pbx-a",)),
        ("pbx-b-local", ("pbx-b",)),
        ("pbx-c-local", ("pbx-c",)),
    ]
    clash = source(
        name="nfs", path="{tmp}/spool/x", body='nodes = ["pbx-c", "pbx-d"]\nshared = true'
    )
    everywhere = source(name="all", path="{tmp}", body="shared = true")
    assert main_problems(tmp_path, SHARED_CATALOGUE + text + clash + everywhere) == [
        'source[3].path: "TMP/spool/x" is inside the root of source "pbx-c-local" (source[2], '
        '"TMP/spool"); two sources must not overlap',
        'source[4].path: "TMP" contains the root of source "pbx-a-local" (source[0], '
        '"TMP/spool"); two sources must not overlap',
        'source[4].path: "TMP" contains the root of source "pbx-b-local" (source[1], '
        '"TMP/spool"); two sources must not overlap',
        'source[4].path: "TMP" contains the root of source "pbx-c-local" (source[2], '
        '"TMP/spool"); two sources must not overlap',
        'source[4].path: "TMP" contains the root of source "nfs" (source[3], "TMP/spool/x"); '
        "two sources must not overlap",
    ]
