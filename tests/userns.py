"""Tests that need low inotify limits, run where lowering them harms nobody.

``fs.inotify.max_user_watches`` and ``max_user_instances`` are machine-wide sysctls counted per
uid: lowering them would break a recd (or anything else of the same uid that watches files)
running beside the suite, and that process's watches would break the test. Since Linux 4.9
each user namespace has limits of its own (``/proc/sys/user/max_inotify_watches`` and
``max_inotify_instances``), checked besides its parents', which the namespace's root may set.

So a test marked ``@pytest.mark.userns(max_inotify_watches=0)`` runs in a child pytest started
by ``unshare --user --map-root-user`` (the caller's uid becomes root inside, so this works for an
ordinary user too where the kernel allows unprivileged user namespaces). Inside, the limits are
set before any fixture runs; outside, the test's outcome is the child's, with its output.
Nothing outside the child's namespace sees the limits.

(``max_queued_events`` has no per-namespace copy: tests of a queue overflow stop the watching
process with SIGSTOP and write more events than the queue holds; see
tests/adapters/local/watchproc.py.)
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests import tools

#: Set in the child: the test runs here, inside the namespace.
INSIDE_ENV = "RECD_TEST_IN_USERNS"
INSIDE = os.environ.get(INSIDE_ENV) == "1"  # read at import: clean_env hides RECD_* later

LIMITS = Path("/proc/sys/user")
TIMEOUT = 300  # seconds for the child pytest; only reached when it hangs


@functools.cache
def _unshare() -> tuple[str | None, str]:
    """``unshare``'s path, or None and why this machine cannot make a user namespace."""
    unshare = tools.which("unshare")
    if unshare is None:
        return None, tools.missing("unshare")
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--", "cat", str(LIMITS / "max_inotify_watches")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if probe.returncode != 0:
        why = f"no user namespaces here ({probe.stderr.strip()}): needs kernel user namespaces"
        return None, why
    return unshare, ""


def set_limits(limits: Mapping[str, int]) -> None:
    """In the child: write each ``/proc/sys/user`` limit (``max_inotify_watches=0``...)."""
    assert INSIDE, "only ever inside the namespace: these are the machine's limits outside"
    for name, value in limits.items():
        (LIMITS / name).write_text(f"{value}\n")


def run_in_child(item: pytest.Function) -> None:
    """Run ``item`` alone in a child pytest in a new user namespace: pass, skip or fail as it
    did there."""
    unshare, refusal = _unshare()
    if unshare is None:
        tools.unavailable(refusal)
    base = Path(tempfile.mkdtemp(prefix="recd-userns-"))
    try:
        done = subprocess.run(
            [unshare, "--user", "--map-root-user", "--", sys.executable, "-m", "pytest",
             "-p", "no:cacheprovider", "--no-header", "-q", "-rA",
             f"--basetemp={base / 'tmp'}", item.nodeid],
            cwd=item.config.rootpath, env={**os.environ, INSIDE_ENV: "1"},
            capture_output=True, text=True, check=False, timeout=TIMEOUT,
        )  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    output = done.stdout + done.stderr
    skipped = re.search(r"^SKIPPED \[1\] [^:]+:\d+: (.*)$", output, re.MULTILINE)
    if done.returncode == 0 and skipped:
        pytest.skip(f"in a user namespace: {skipped[1]}")
    if done.returncode != 0 or not re.search(r"\b1 passed\b", output):
        pytest.fail(f"in a user namespace, exit {done.returncode}:\n{output}", pytrace=False)
