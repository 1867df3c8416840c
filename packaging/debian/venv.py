#!/usr/bin/python3
"""Build recd's private environment for the .deb: a venv on the system /usr/bin/python3 at
STAGE+PREFIX (debian/recd/usr/lib/recd), with recd and its runtime dependencies (no test
extras) installed from their wheels, then made to work at PREFIX: console-script shebangs point
at PREFIX/bin/python3, pip, setuptools and the activate scripts go, no file keeps the build path,
and the bytecode is compiled for PREFIX (unchecked-hash: dpkg clamps mtimes, and the files change
only with the package). Run by debian/rules with the system python3 only.
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

PYTHON = "/usr/bin/python3"
GONE = ("activate", "activate.csh", "activate.fish", "Activate.ps1")


def run(*argv: str | Path) -> None:
    print("venv.py: " + " ".join(map(str, argv)), flush=True)
    subprocess.run([str(arg) for arg in argv], check=True)


def build(venv: Path, source: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    run(PYTHON, "-m", "venv", venv)
    pip = (venv / "bin" / "python3", "-m", "pip")
    run(
        *pip,
        "install",
        "--no-compile",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        f"{source}[s3,postgres]",  # everything: boto3 (S3 sources), psycopg (shared catalogue)
    )
    run(*pip, "uninstall", "--yes", "pip", "setuptools")


def relocate(venv: Path, prefix: str) -> None:
    """Point everything at ``prefix`` instead of the staging path ``venv``."""
    staged = str(venv).encode()
    for name in GONE:
        (venv / "bin" / name).unlink(missing_ok=True)
    for script in sorted((venv / "bin").iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(b"#!"):
            line, _, rest = data.partition(b"\n")
            if staged in line:
                script.write_bytes(f"#!{prefix}/bin/python3".encode() + b"\n" + rest)
    cfg = venv / "pyvenv.cfg"  # Python 3.11 writes the venv command, with the staging path
    lines = cfg.read_text(encoding="utf-8").splitlines()
    cfg.write_text("".join(f"{ln}\n" for ln in lines if not ln.startswith("command")), "utf-8")
    for direct_url in venv.glob("lib/python3*/site-packages/*.dist-info/direct_url.json"):
        direct_url.unlink()  # pip's note of where recd was installed from: the staging tree
        record = direct_url.parent / "RECORD"
        kept = [
            ln for ln in record.read_text("utf-8").splitlines() if "/direct_url.json," not in ln
        ]
        record.write_text("".join(f"{ln}\n" for ln in kept), "utf-8")


def compile_for(venv: Path, prefix: str) -> None:
    ok = compileall.compile_dir(
        venv / "lib",
        quiet=1,
        stripdir=str(venv),
        prependdir=prefix,
        workers=os.cpu_count() or 1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        sys.exit("venv.py: some modules do not compile (listed above)")


def left_behind(root: Path, staged: bytes) -> list[Path]:
    return [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and staged in path.read_bytes()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=Path, required=True, help="debian/recd")
    parser.add_argument("--prefix", default="/usr/lib/recd")
    parser.add_argument("--source", type=Path, required=True, help="the recd source tree")
    args = parser.parse_args()
    venv = Path(str(args.stage.resolve()) + args.prefix)
    build(venv, args.source.resolve())
    relocate(venv, args.prefix)
    compile_for(venv, args.prefix)
    source = args.source.resolve()
    stale = left_behind(venv, str(source).encode())
    if stale:
        sys.exit(f"venv.py: the build path {source} is left in {', '.join(map(str, stale))}")


if __name__ == "__main__":
    main()
