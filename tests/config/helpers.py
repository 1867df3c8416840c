"""Shared by tests/config: files written as recd reads them (a recd.toml gets its licences.d), every
problem load() reports as printed, a directory and an S3 [[source]] table, a licence file with an
agent, the texts several tests expect, and the shipped examples with their commented-out
tables and keys made live."""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from pathlib import Path

import pytest

from recd.config.load import load
from recd.errors import ConfigInvalid, ExitCode

HINT = "use s, m, h, d, w, mo, y, ISO 8601 such as P30D, or never"
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


LICENCE = 'id = "ACME-1"\nname = "Acme Ltd"\nretention = "3mo"\n'
AGENT = f'[[agent]]\nname = "Jane Doe"\nemail = "dpo@acme.example"\npublic_key = "{KEY_TEXT}"\n'


_COMMENTED = re.compile(r"^# (\[\[?[\w.]+\]\]?|[a-z_]+ = .+)$")


def uncommented(path: Path) -> str:
    """The file with its commented-out example tables and keys made live (etc/recd.toml ships
    with every [[source]] commented out; etc/licences.d/example.toml with its [[agent]])."""
    return "\n".join(
        match[1] if (match := _COMMENTED.match(line)) else line
        for line in path.read_text(encoding="utf-8").splitlines()
    )
