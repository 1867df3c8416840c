"""``recctl audit export --file OUT [--from PATH] [--force]`` (``recd.cli.commands.audit``): real
chains (a live log, a state directory recd rotated into plain and gzip segments, one segment)
exported and verified back by ``recctl audit verify``; every refusal leaves nothing behind."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recd.core.audit import GENESIS, to_line
from recd.errors import ExitCode
from tests.cli.helpers import ENTRIES, LINES, rotated, run, usage
from tests.fakedaemon import NOBODY


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run(capsys, "audit", "export", *argv)


def head(capsys: pytest.CaptureFixture[str], path: Path) -> object:
    code, out, err = run(capsys, "audit", "head", "--file", str(path), "--json")
    assert (code, err) == (ExitCode.OK, "")
    return json.loads(out)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_a_live_log_exports_byte_for_byte_and_verifies_the_same(capsys, log_path, outdir):
    out = outdir / "audit.jsonl"
    last = ENTRIES[-1].hash
    assert export(capsys, "--file", str(out), "--from", str(log_path)) == (
        ExitCode.OK,
        f"{out}: 4 entries exported from {log_path}, chain intact; head 4:{last}\n",
        "",
    )
    assert out.read_bytes() == b"".join(LINES)
    assert mode(out) == 0o600
    assert run(capsys, "audit", "verify", "--file", str(out)) == (
        ExitCode.OK,
        f"{out}: 4 entries, chain intact, last hash {last}\n",
        "",
    )
    assert head(capsys, out) == head(capsys, log_path) == {"entries": 4, "seq": 4, "hash": last}
    assert os.listdir(outdir) == ["audit.jsonl"]


@pytest.mark.parametrize("compress", ["none", "gzip"])
def test_a_rotated_chain_exports_as_one_file(capsys, tmp_path, outdir, compress):
    state = tmp_path / "state"
    written = rotated(state, compress=compress)
    out = outdir / "audit.jsonl"
    last = written[-1]
    assert export(capsys, "--from", str(state), "--file", str(out)) == (
        ExitCode.OK,
        f"{out}: 203 entries (in 4 files) exported from {state}, chain intact; "
        f"head 203:{last.hash}\n",
        "",
    )
    assert out.read_bytes() == b"".join(to_line(entry) for entry in written)
    assert run(capsys, "audit", "verify", "--file", str(out)) == (
        ExitCode.OK,
        f"{out}: 203 entries, chain intact, last hash {last.hash}\n",
        "",
    )
    assert head(capsys, out) == head(capsys, state) == {
        "entries": 203, "seq": 203, "hash": last.hash,
    }  # fmt: skip


def test_one_segment_exports_as_the_part_of_the_chain_it_holds(capsys, tmp_path, outdir):
    state = tmp_path / "state"
    written = rotated(state, compress="gzip")
    segment = state / "audit.log.57-113.gz"
    out = outdir / "57-113.jsonl"
    code, printed, err = export(capsys, "--from", str(segment), "--file", str(out))
    assert (code, err) == (ExitCode.OK, "")
    assert printed == (
        f"{out}: 57 entries (seq 57-113, continuing the chain of earlier segments: checked from "
        f"entry 57 on) exported from {segment}, chain intact; head 113:{written[112].hash}\n"
    )
    assert out.read_bytes() == gzip.decompress(segment.read_bytes())
    assert run(capsys, "audit", "verify", "--file", str(out))[1] == (
        f"{out}: 57 entries (seq 57-113, continuing the chain of earlier segments: checked from "
        f"entry 57 on), chain intact, last hash {written[112].hash}\n"
    )
    assert head(capsys, out) == head(capsys, segment)
    # A segment may keep its own name elsewhere: verify checks the name against the entries.
    named = outdir / "audit.log.57-113"
    assert export(capsys, "--from", str(segment), "--file", str(named))[0] == ExitCode.OK
    assert head(capsys, named) == head(capsys, segment)


def test_an_empty_log_exports_as_an_empty_file(capsys, tmp_path, outdir):
    (tmp_path / "audit.log").touch()
    out = outdir / "audit.jsonl"
    assert export(capsys, "--from", str(tmp_path), "--file", str(out)) == (
        ExitCode.OK,
        f"{out}: 0 entries (in 1 file) exported from {tmp_path}, chain intact; head 0:{GENESIS}\n",
        "",
    )
    assert out.read_bytes() == b""
    assert head(capsys, out) == {"entries": 0, "seq": 0, "hash": GENESIS}


def _change_entry_60(state: Path) -> Path:
    segment = state / "audit.log.57-113.gz"
    lines = gzip.decompress(segment.read_bytes()).splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"pad":"p', b'"pad":"q')
    segment.write_bytes(gzip.compress(b"".join(lines)))
    return segment


def _remove_a_segment(state: Path) -> Path:
    (state / "audit.log.57-113.gz").unlink()
    return state


def _cut_the_live_log(state: Path) -> Path:
    live = state / "audit.log"
    live.write_bytes(live.read_bytes()[:-30])
    return live


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_change_entry_60, "{0}: entry 60 (line 4): hash does not match the entry's content"),
        (_remove_a_segment, "{0}: entries 57-113 are missing: no segment holds them (a segment "
         "removed?)"),
        (_cut_the_live_log, "{0}: entry 203 (line 33): last line is incomplete (truncated file?)"),
    ],
)  # fmt: skip
def test_a_chain_that_does_not_verify_is_not_exported(capsys, tmp_path, outdir, damage, problem):
    state = tmp_path / "state"
    rotated(state, compress="gzip")
    bad = problem.format(damage(state))
    assert run(capsys, "audit", "verify", "--file", str(state)) == (
        ExitCode.FAILED,
        "",
        f"recctl: {bad}\n",
    )
    out = outdir / "audit.jsonl"
    assert export(capsys, "--from", str(state), "--file", str(out)) == (
        ExitCode.FAILED,
        "",
        f"recctl: --from: {bad}\n",
    )
    assert os.listdir(outdir) == []  # neither OUT nor the temporary file it was written as


def test_an_existing_file_is_kept_unless_force(capsys, log_path, outdir):
    out = outdir / "audit.jsonl"
    out.write_bytes(b"an earlier export\n")
    out.chmod(0o644)
    assert export(capsys, "--from", str(log_path), "--file", str(out)) == (
        ExitCode.FAILED,
        "",
        f"recctl: --file: {out}: already exists; nothing was written (give another name, or "
        "--force to replace it)\n",
    )
    assert (out.read_bytes(), mode(out), os.listdir(outdir)) == (
        b"an earlier export\n", 0o644, ["audit.jsonl"],
    )  # fmt: skip
    assert export(capsys, "--from", str(log_path), "--file", str(out), "--force")[0] == 0
    assert (out.read_bytes(), mode(out), os.listdir(outdir)) == (
        b"".join(LINES), 0o600, ["audit.jsonl"],
    )  # fmt: skip


def test_force_replaces_a_symbolic_link_never_its_target(capsys, log_path, tmp_path, outdir):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not to be touched\n")
    out = outdir / "audit.jsonl"
    out.symlink_to(target)
    assert export(capsys, "--from", str(log_path), "--file", str(out))[0] == ExitCode.FAILED
    assert export(capsys, "--from", str(log_path), "--file", str(out), "--force")[0] == 0
    assert not out.is_symlink()
    assert (out.read_bytes(), target.read_bytes()) == (b"".join(LINES), b"not to be touched\n")


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_the_export_is_mode_0600_whatever_the_umask(capsys, log_path, outdir, umask):
    out = outdir / "audit.jsonl"
    old = os.umask(umask)
    try:
        assert export(capsys, "--from", str(log_path), "--file", str(out))[0] == ExitCode.OK
    finally:
        os.umask(old)
    assert mode(out) == 0o600


def test_standard_output_is_refused(capsys, log_path):
    assert export(capsys, "--from", str(log_path), "--file", "-") == (
        ExitCode.USAGE,
        "",
        "recctl: --file: - (standard output) is not allowed: an export cut short by a full disk "
        "or a closed pipe would still verify, as a shorter chain, and could not be taken back; "
        "give a file name (it appears only once the whole chain is written and verified)\n",
    )


def test_file_is_required(capsys):
    assert export(capsys) == (
        ExitCode.USAGE,
        "",
        usage("audit export", "the following arguments are required: --file"),
    )


@pytest.mark.parametrize(
    ("out", "source", "code", "problem"),
    [
        ("x.gz", "state", ExitCode.USAGE, "--file: {out}: ends in .gz, which `recctl audit "
         "verify` reads as gzip, but the export is plain JSON lines; name it e.g. audit.jsonl "
         "(gzip it afterwards if you like)"),
        (".", "state", 1, "--file: {out}: is a directory; give the name of the file to write"),
        ("gone/x", "state", 1, "--file: {out}: cannot create it: {tmp}/gone does not exist"),
        ("state/audit.log/x", "state", 1, "--file: {out}: cannot create it: {tmp}/state/"
         "audit.log is not a directory"),
        ("x", "missing", 1, "--from: {source}: does not exist (give the state directory, a "
         "segment or audit.log)"),
        ("x", "empty", 1, "--from: {source}: no audit log here (neither audit.log nor a segment "
         "audit.log.<first>-<last>)"),
        ("state/audit.log", "state", 1, "--file: {out}: would be read as part of the audit "
         "chain in {tmp}/state; write the export elsewhere (nothing was written)"),
        ("state/audit.log.1-9", "state", 1, "--file: {out}: would be read as part of the audit "
         "chain in {tmp}/state; write the export elsewhere (nothing was written)"),
        ("state/audit.log.1-56", "state/audit.log.1-56", 1, "--file: {out}: is the file being "
         "exported ({source}); write the export elsewhere (nothing was written)"),
    ],
)  # fmt: skip
def test_a_bad_argument_is_one_line_and_nothing_is_written(capsys, tmp_path, out, source, code,
                                                          problem):  # fmt: skip
    rotated(tmp_path / "state")
    (tmp_path / "empty").mkdir()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    argv = ["--file", str(tmp_path / out), "--from", str(tmp_path / source), "--force"]
    message = problem.format(out=tmp_path / out, source=tmp_path / source, tmp=tmp_path)
    assert export(capsys, *argv) == (code, "", f"recctl: {message}\n")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """As nobody when run as root (who may write anywhere), else as the caller."""
    if os.geteuid() != 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory anyone may enter (tmp_path's parents may be closed to nobody)."""
    base = Path(tempfile.mkdtemp(prefix="recd-export-"))
    base.chmod(0o755)
    yield base
    for path in (base, *base.rglob("*")):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(base)


def test_permission_denied_names_the_argument(capsys, open_base):
    log = open_base / "audit.log"
    log.write_bytes(b"".join(LINES))
    log.chmod(0o644)
    locked = open_base / "locked"
    locked.mkdir(mode=0o555)
    out = locked / "audit.jsonl"
    with unprivileged():
        refused = export(capsys, "--from", str(log), "--file", str(out))
    assert refused == (
        ExitCode.FAILED,
        "",
        f"recctl: --file: {out}: cannot create a file in {locked}: Permission denied\n",
    )
    writable = open_base / "writable"
    writable.mkdir(mode=0o777)
    writable.chmod(0o777)
    log.chmod(0o000)
    with unprivileged():
        unread = export(capsys, "--from", str(log), "--file", str(writable / "audit.jsonl"))
    assert unread == (
        ExitCode.FAILED,
        "",
        f"recctl: --from: {log}: cannot read: Permission denied\n",
    )
    assert os.listdir(locked) == os.listdir(writable) == []
