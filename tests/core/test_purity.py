"""recd.core is pure: it imports only an allow-list of side-effect-free modules.

import-linter checks the layering between recd's own packages; this checks what core may take
from the standard library and third parties (no os, io, socket, time, logging, sqlite3...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import recd.core

ALLOWED = {
    "__future__", "collections", "collections.abc", "dataclasses", "datetime", "enum",
    "hashlib", "json", "math", "re", "typing", "itertools", "functools", "calendar",
    "string", "base64", "binascii", "difflib", "types", "zoneinfo", "unicodedata",
    "cryptography", "recd.errors", "urllib.parse",
}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def allowed(module: str) -> bool:
    return module.startswith("recd.core") or any(
        module == ok or module.startswith(ok + ".") for ok in ALLOWED
    )


def test_core_imports_only_pure_modules() -> None:
    core = Path(recd.core.__file__).parent
    bad = {
        f"{path.name}: {module}"
        for path in sorted(core.glob("*.py"))
        for module in imports_of(path)
        if not allowed(module)
    }
    assert bad == set()


def test_the_check_itself_catches_an_impure_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom logging import getLogger\nfrom recd.core import model\n")
    assert {m for m in imports_of(probe) if not allowed(m)} == {"os", "logging"}
