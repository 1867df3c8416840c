"""Attack: forge log lines or rewrite the operator's terminal through a file name.

Anyone who can write to a recording tree chooses its names. A name holding a newline and a fake
level (``\\nERROR recd.daemon.loop: ...``) would start a second log line, which journald keeps as a
separate entry; an escape sequence would colour or clear the terminal reading the log; a bidi
override would show a name backwards. What must hold: every log record is exactly one line,
carries no control or format character, and shows the name escaped, in the terminal format and
in the journald one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import env, write_estate, write_recording

HOSTILE = (
    "L1/a\nERROR recd.daemon.loop: breaker released by admin.wav",
    "L1/b\r\x1b[2K\x1b[1A\x1b[31mred.wav",
    "L1/c\u202evaw.exe.wav",
    "L1/d\u2028e\x7f\x9b.wav",
)
LINES = {
    False: re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (?:DEBUG|INFO|WARNING|ERROR) recd[\w.]*: "),
    True: re.compile(r"<[3467]>(?:DEBUG|INFO|WARNING|ERROR) recd[\w.]*: "),  # journald's form
}


@pytest.mark.parametrize("journald", [False, True], ids=["terminal", "journald"])
def test_hostile_names_give_one_escaped_line_each(tmp_path: Path, journald: bool) -> None:
    config = write_estate(tmp_path, listen="127.0.0.1:0")
    for relpath in HOSTILE:
        write_recording(tmp_path, relpath, age_days=40)
    write_recording(tmp_path, "L1/plain.wav", age_days=40)
    run_env = env() | {"RECD_LOG": "DEBUG"}
    log = tmp_path / "stderr"
    with log.open("wb") as stderr:
        if journald:  # as systemd says stderr is the journal: its device and inode
            st = os.fstat(stderr.fileno())
            run_env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        result = subprocess.run(
            [sys.executable, "-m", "recd", "--once", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=stderr, env=run_env, timeout=120, check=False,
        )  # fmt: skip
    err = log.read_bytes().decode("ascii")  # nothing but ASCII reaches the log: all else escaped
    assert result.returncode == 0, err
    line_form = LINES[journald]
    lines = err.splitlines()
    assert lines and all(line_form.match(line) for line in lines), err
    assert not any(c in err for c in "\x1b\r\x7f")
    for shown in (
        "a\\nERROR recd.daemon.loop: breaker released by admin.wav",
        "b\\r\\x1b[2K\\x1b[1A\\x1b[31mred.wav",
        "c\\u202evaw.exe.wav",
        "d\\u2028e\\x7f\\x9b.wav",
    ):
        assert sum(shown in line for line in lines) == 1, (shown, err)  # "erased ..." once
    assert not any(os.path.exists(tmp_path / "recordings" / r) for r in HOSTILE)
