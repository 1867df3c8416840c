"""The shipped shell completion (packaging/completion/): current with the parsers, and working in
a real bash and zsh.

``generate.py --check`` fails when a parser changed and nobody ran ``make completion``; bash is
then run on the checked-in files with ``COMP_WORDS`` as a terminal would set them, through the
function each file registers with ``complete -F``, so what an operator gets on TAB is asserted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[2]
COMPLETION = ROOT / "packaging" / "completion"
GENERATE = COMPLETION / "generate.py"
NAMES = ("recd.bash", "recctl.bash", "_recd", "_recctl")

# Source the file, find the function it registered for the program, run it on "$@" as the words
# of the command line (the last one being completed) and print what it offers, one a line.
BASH_COMPLETE = r"""
source "$1" || exit 90
prog="$2"
shift 2
spec="$(complete -p "$prog")" || exit 91
func="${spec##*-F }"
func="${func%% *}"
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$func" "$prog" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 92
printf '%s\n' "${COMPREPLY[@]}"
"""


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATE), *args], capture_output=True, text=True, check=False
    )


def offered(words: list[str], cwd: Path) -> list[str]:
    """What bash offers on TAB after ``words`` (the last one is the word being completed)."""
    bash = tools.need("bash")
    prog = words[0]
    script = str(COMPLETION / f"{prog}.bash")
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", BASH_COMPLETE, "bash", script, prog, *words],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_checked_in_files_are_what_the_parsers_generate() -> None:
    done = generate("--check")
    assert done.returncode == 0, done.stderr


def test_check_names_a_stale_or_missing_file_and_how_to_regenerate(tmp_path: Path) -> None:
    for name in NAMES:
        shutil.copy(COMPLETION / name, tmp_path / name)
    with (tmp_path / "_recctl").open("a") as file:
        file.write("# edited by hand\n")
    (tmp_path / "recd.bash").unlink()

    done = generate("--check", "--dir", str(tmp_path))

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{tmp_path / 'recd.bash'}: missing: run make completion "
        "(or: python packaging/completion/generate.py) and commit it",
        f"{tmp_path / '_recctl'}: stale (its parser or shtab changed): run make completion "
        "(or: python packaging/completion/generate.py) and commit it",
    ]
    assert not (tmp_path / "recd.bash").exists()  # --check writes nothing

    assert generate("--dir", str(tmp_path)).returncode == 0
    assert generate("--check", "--dir", str(tmp_path)).returncode == 0
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == (COMPLETION / name).read_bytes()


def test_files_name_their_program_and_how_to_regenerate() -> None:
    for name, prog in zip(NAMES, ("recd", "recctl", "recd", "recctl"), strict=True):
        text = (COMPLETION / name).read_text(encoding="utf-8")
        if name.startswith("_"):
            assert text.startswith(f"#compdef {prog}\n")  # what compinit reads
        assert f"{prog} " in text.splitlines()[name.startswith("_")]
        assert "Do not edit: make completion" in text
        assert "pytest" not in text  # the parsers' prog, not the test runner's argv[0]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["recctl", "ho"], ["hold"]),
        (["recctl", "re"], ["request"]),
        (["recctl", "hold", ""], ["place", "release", "ls", "show"]),
        (["recctl", "request", "a"], ["add", "approve"]),
        (["recctl", "ls", "--state", "e"], ["erased"]),
        (["recd", "check"], ["check-config"]),
    ],
)
def test_bash_completes_commands_and_choices(
    words: list[str], expected: list[str], tmp_path: Path
) -> None:
    assert offered(words, tmp_path) == expected


def test_bash_completes_options_of_the_subcommand_being_typed(tmp_path: Path) -> None:
    delete = offered(["recctl", "delete", "--"], tmp_path)
    assert "--request-id" in delete
    assert "--dry-run" in delete
    assert "--socket" not in delete  # recctl's own option goes before the command
    assert offered(["recd", "--conf"], tmp_path) == ["--config", "--confirm-clock"]


def test_bash_completes_paths_where_an_argument_names_one(tmp_path: Path) -> None:
    (tmp_path / "recd.toml").write_text("")
    (tmp_path / "licences.d").mkdir()
    (tmp_path / "backups").mkdir()

    assert offered(["recd", "--config", "rec"], tmp_path) == ["recd.toml"]
    assert offered(["recd", "check-config", "--config", "rec"], tmp_path) == ["recd.toml"]
    assert offered(["recctl", "audit", "verify", "--file", "rec"], tmp_path) == ["recd.toml"]
    assert offered(["recctl", "--socket", "rec"], tmp_path) == ["recd.toml"]
    # backup DIR: directories only, not the file beside them
    assert sorted(offered(["recctl", "backup", ""], tmp_path)) == ["backups", "licences.d"]


def test_zsh_parses_the_files_and_compinit_finds_them(tmp_path: Path) -> None:
    zsh = tools.need("zsh")
    for name in ("_recd", "_recctl"):
        parsed = subprocess.run(
            [zsh, "-n", str(COMPLETION / name)], capture_output=True, text=True, check=False
        )
        assert parsed.returncode == 0, f"{name}: {parsed.stderr}"
    # What /usr/share/zsh/vendor-completions gets: compinit reads each file's #compdef line.
    found = subprocess.run(
        [
            zsh,
            "-f",
            "-c",
            f"fpath=({COMPLETION} $fpath); autoload -U compinit && compinit -u -D "
            "&& print -r -- $_comps[recd] $_comps[recctl]",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["_recd", "_recctl"]
