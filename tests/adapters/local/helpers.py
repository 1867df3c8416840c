"""Shared by the LocalEraser tests (tests/adapters/local, tests/attacks): files made on a real
filesystem, their identity as ``prepare`` takes it, and one erase run the way a sweep runs it.

The erase helpers prepare, erase and then ``sync`` (the directory flush a sweep does after its
batch), so a file they erased is gone for good; ``TEMP`` is the fixed temporary name the tests
erase under and ``LATER`` a time after any file they make."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recd.adapters.local.erase import EraseResult, LocalEraser
from recd.core.erasure import Action, Decision, EraseSettings, decide
from recd.core.model import EraseMethod, ErasePattern

OVERWRITE = Decision(Action.ERASE, EraseMethod.OVERWRITE, True)
UNLINK = Decision(Action.ERASE, EraseMethod.UNLINK, False, "btrfs copy-on-write")
TEMP = ".recd-erase-0123456789abcdef"
LATER = datetime.now(UTC) + timedelta(hours=1)


def touch(path: Path, data: bytes = b"recording") -> os.stat_result:
    """Write ``data`` at ``path`` (its directories made); its stat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.stat()


def ident(st: os.stat_result) -> tuple[int, int, int]:
    """What the catalogue knows of a file and ``prepare`` checks: device, inode, size."""
    return st.st_dev, st.st_ino, st.st_size


def erase_one(
    e: LocalEraser,
    relpath: str,
    st: os.stat_result,
    decision: Decision = OVERWRITE,
    *,
    pattern: ErasePattern = ErasePattern.ZEROS,
    verify: bool = False,
) -> EraseResult:
    with e.prepare(relpath, *ident(st)) as p:
        result = e.erase(p, decision, pattern=pattern, verify=verify, temp_name=TEMP)
    e.sync()
    return result


def marker(name: str) -> bytes:
    """Bytes found nowhere else on a device, to look for in its raw blocks after an erase."""
    return f"<RECD-MARKER-{name}-{os.urandom(8).hex()}>".encode()


def erase_as_decided(
    e: LocalEraser,
    relpath: str,
    st: os.stat_result,
    settings: EraseSettings,
    pattern: ErasePattern = ErasePattern.ZEROS,
) -> tuple[Decision, EraseResult | None]:
    with e.prepare(relpath, *ident(st)) as p:
        decision = decide(p.facts, settings, LATER)
        if decision.action is not Action.ERASE:
            return decision, None
        result = e.erase(p, decision, pattern=pattern, verify=True, temp_name=TEMP)
    e.sync()
    return decision, result


#: ``CapEff`` of root with every capability, and of a user unit given ``CAP_LEASE`` alone.
ALL_CAPS = 0x000001FFFFFFFFFF
ONLY_CAP_LEASE = 1 << 28


def proc_status(proc: Path, cap_eff: int, uid: int = 999) -> Path:
    """A fake procfs at ``proc`` whose ``self/status`` says ``uid`` and ``CapEff``; ``proc``."""
    (proc / "self").mkdir(parents=True, exist_ok=True)
    ids = "\t".join([str(uid)] * 4)
    (proc / "self" / "status").write_text(
        f"Name:\trecd\nUid:\t{ids}\nGid:\t{ids}\nCapInh:\t{0:016x}\nCapPrm:\t{cap_eff:016x}\n"
        f"CapEff:\t{cap_eff:016x}\nCapBnd:\t{ALL_CAPS:016x}\nCapAmb:\t{0:016x}\n",
        encoding="ascii",
    )
    return proc
