"""boto3 is the ``recd[s3]`` extra: without it an S3 source is a configuration problem named by
the source (exit 78 from check-config, the daemon and ``--once``), a directory-only recd runs, and
recctl never needs it.

"Without boto3" is a real interpreter whose ``sitecustomize`` puts ``None`` in ``sys.modules`` for
boto3 and botocore, so ``import boto3`` fails as if it were not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recd.config.load import load
from recd.config.sources import NEEDS_BOTO3
from recd.errors import ExitCode
from tests.config.helpers import main_problems, s3, source, write

ROOT = Path(__file__).resolve().parents[2]
HIDE_BOTO3 = 'import sys\nsys.modules["boto3"] = None\nsys.modules["botocore"] = None\n'
LINE = "type \"s3\" needs boto3: pip install 'recd[s3]' (the Debian package includes it)"


def python(tmp_path: Path, *args: str, boto3: bool) -> subprocess.CompletedProcess[str]:
    """``python *args`` from this tree, with boto3 installed or hidden."""
    path = [str(ROOT)]
    if not boto3:
        hide = tmp_path / "no-boto3"
        hide.mkdir(exist_ok=True)
        (hide / "sitecustomize.py").write_text(HIDE_BOTO3)
        path.insert(0, str(hide))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(path),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )


def test_the_message_is_the_one_documented() -> None:
    assert NEEDS_BOTO3 == LINE


def test_an_s3_source_without_boto3_is_a_problem_named_by_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = source() + s3()
    monkeypatch.setitem(sys.modules, "boto3", None)
    # Only the S3 source is named: a directory source needs nothing more.
    assert main_problems(tmp_path, text) == [f"source[1] (archive): {LINE}"]
    monkeypatch.delitem(sys.modules, "boto3")
    write(tmp_path / "recd.toml", text)  # with boto3 installed the same file is valid
    assert [s.name for s in load(tmp_path / "recd.toml").sources] == ["pbx1", "archive"]


def test_a_nameless_s3_source_without_boto3_is_named_by_its_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)  # boto3 without botocore cannot work
    assert main_problems(tmp_path, '[[source]]\ntype = "s3"\nbucket = "recordings"') == [
        "source[0].name: required key is missing",
        f"source[0]: {LINE}",
    ]


@pytest.mark.parametrize(
    "args",
    [["check-config"], [], ["--once"]],
    ids=["check-config", "daemon", "once"],
)
def test_recd_without_boto3_says_what_to_install_and_exits_78(
    tmp_path: Path, args: list[str]
) -> None:
    config = write(
        tmp_path / "etc" / "recd.toml",
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        + s3('endpoint_url = "http://127.0.0.1:9"'),
    )
    done = python(tmp_path, "-m", "recd.daemon.main", "--config", str(config), *args, boto3=False)
    assert done.returncode == 78  # ExitCode.CONFIG: RestartPreventExitStatus=78 in the unit
    assert done.stderr.splitlines() == [f"recd: {config}: source[0] (archive): {LINE}"]
    assert not (tmp_path / "state").exists()  # refused before anything was opened


def test_check_config_passes_with_boto3_or_without_an_s3_source(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    s3_config = write(tmp_path / "s3" / "recd.toml", s3())
    dir_config = write(tmp_path / "dir" / "recd.toml", source(path=str(tmp_path / "rec")))
    with_boto3 = python(tmp_path, "-m", "recd.daemon.main", "check-config", "--config",
                        str(s3_config), boto3=True)  # fmt: skip
    assert with_boto3.returncode == 0, with_boto3.stderr
    without = python(tmp_path, "-m", "recd.daemon.main", "check-config", "--config",
                     str(dir_config), boto3=False)  # fmt: skip
    assert without.returncode == 0, without.stderr
    assert f"{dir_config}: ok (1 source, 0 licences, mode enforce)\n" in without.stdout


IMPORT_ALL_OF_RECCTL = """
import pkgutil, sys, importlib
import recd.cli
for info in pkgutil.walk_packages(recd.cli.__path__, "recd.cli."):
    importlib.import_module(info.name)
recd.cli.main.build_parser()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")))
"""


def test_recctl_does_not_need_boto3(tmp_path: Path) -> None:
    imported = python(tmp_path, "-c", IMPORT_ALL_OF_RECCTL, boto3=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "[]\n"
    # And it runs where boto3 cannot be imported at all: to the socket that is not there.
    socket = tmp_path / "recd.sock"
    done = python(tmp_path, "-m", "recd.cli.main", "--socket", str(socket), "status", boto3=False)
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr
    assert done.stderr.startswith(f"recctl: recd is not running: cannot connect to {socket}")
