"""`make demo`: generate the demo estate, run `recd --once` on it, and show the audit trail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.tree import generate

BASE = Path(__file__).resolve().parents[1] / "demo-run"
BIN = Path(sys.executable).parent


def run(*argv: str) -> None:
    shown = " ".join(a.replace(str(BASE), "demo-run") for a in argv)
    print(f"\n$ {shown}", flush=True)
    subprocess.run([str(BIN / argv[0]), *argv[1:]], check=False)


def main() -> None:
    config = generate(BASE)
    print(f"demo estate written to {BASE}:")
    for path in sorted((BASE / "recordings").rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(BASE)}")
    run("recd", "check-config", "--config", str(config))
    run("recd", "--once", "--config", str(config))
    audit = str(BASE / "state" / "audit.log")
    run("recctl", "audit", "ls", "--file", audit, "--action", "erase.done")
    run("recctl", "audit", "verify", "--file", audit)
    print("\nStill on disk:")
    for path in sorted((BASE / "recordings").rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(BASE)}")
    print(
        "\nThose were kept: not yet due, still within erase.settle (modified less than 2"
        "\nminutes ago), or unclassified (tenants/stray-call.wav). Run `make demo` again to"
        "\nstart over, or `.venv/bin/recd --once --config demo-run/etc/recd.toml` after two"
        "\nminutes to see the settled ones go. Full trail: `.venv/bin/recctl audit ls --file"
        "\ndemo-run/state/audit.log --json`."
    )


if __name__ == "__main__":
    main()
