"""licences.d/*.toml: one Licence per file, with its retention, verification and agents.

Each file is read on its own, so every problem is named with the file it is in; a licence id
defined twice is reported at the second file.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from recd.config.tables import Table, quote, read_toml
from recd.config.types import Agent, Licence, Verification
from recd.core.classify import REPLACEMENT
from recd.errors import ConfigProblem, InvalidValue, os_reason

_VERIFICATIONS: tuple[Verification, ...] = ("two-person", "signature")
_KEY_PREFIX = "ed25519:"


def licence_id_problem(text: str) -> str | None:
    """Why ``text`` cannot be a licence id (here or in a source's ``licence`` key), or None."""
    if any(c.isspace() for c in text) or "/" in text:
        return f'must not contain whitespace or "/", got {quote(text)}'
    if REPLACEMENT in text:
        # Undecodable bytes in a recording's name are matched as U+FFFD: no licence may hold it.
        return f"must not contain U+FFFD (the replacement character), got {quote(text)}"
    return None


def read_licences(
    directory: Path, problems: list[ConfigProblem], *, missing_ok: bool = False
) -> dict[str, Licence]:
    """Every licence in ``directory`` by id.

    An empty directory means no licences. A missing, dangling, unreadable or non-directory
    ``directory`` is a problem, not "no licences": every licensed recording would otherwise fall
    to retention.default, which is usually shorter, and be erased. ``missing_ok`` leaves out
    the problem of a missing one (the configuration is invalid for another reason already).
    """
    try:
        # Dot files are editor droppings (.acme.toml.swp, emacs .#acme.toml), never licences.
        files = sorted(
            p for p in directory.iterdir() if p.suffix == ".toml" and not p.name.startswith(".")
        )
    except FileNotFoundError:
        if not missing_ok:
            problems.append(ConfigProblem(str(directory), "", _directory_problem(directory, None)))
        return {}
    except OSError as exc:
        problems.append(ConfigProblem(str(directory), "", _directory_problem(directory, exc)))
        return {}
    licences: dict[str, Licence] = {}
    for file in files:
        licence = _licence(file, problems)
        if licence is None:
            continue
        if licence.id in licences:
            problems.append(
                ConfigProblem(
                    str(file),
                    "id",
                    f"licence {quote(licence.id)} is already defined in "
                    f"{licences[licence.id].file}",
                )
            )
            continue
        licences[licence.id] = licence
    return licences


def _directory_problem(directory: Path, exc: OSError | None) -> str:
    """Why ``directory`` gives no licences (``exc`` None: it does not exist)."""
    fallback = "every licence's recordings would get retention.default"
    if exc is None:
        what = "is a dangling symlink" if directory.is_symlink() else "does not exist"
        return f"the licences directory {what} ({fallback}); create it, empty if there are none"
    if isinstance(exc, NotADirectoryError):
        return f"the licences directory is not a directory ({fallback})"
    return f"cannot read the licences directory: {os_reason(exc)} ({fallback})"


def _licence(file: Path, problems: list[ConfigProblem]) -> Licence | None:
    data = read_toml(file, problems)
    if data is None:
        return None
    t = Table(str(file), "", data, problems)
    licence_id = t.string("id", required=True)
    if licence_id is not None and (problem := licence_id_problem(licence_id)):
        t.report("id", problem)
        licence_id = None
    name = t.string("name", required=True)
    retention = t.period("retention", required=True)
    verification = t.choice("verification", _VERIFICATIONS, "two-person")
    agent_tables = t.tables("agent")
    agents = [agent for agent in map(_agent, agent_tables) if agent is not None]
    if verification == "signature" and not agent_tables:
        t.report("verification", '"signature" needs at least one [[agent]] with a public_key')
    t.finish()
    if licence_id is None or name is None or retention is None:
        return None
    return Licence(licence_id, name, retention, file, verification, tuple(agents))


def _agent(t: Table) -> Agent | None:
    name = t.string("name", required=True)
    email = t.string("email", required=True)
    text = t.string("public_key", required=True)
    key = None
    if text is not None:
        try:
            key = _public_key(text)
        except InvalidValue as exc:
            t.report("public_key", str(exc))
    t.finish()
    if name is None or email is None or key is None:
        return None
    return Agent(name, email, key)


def _public_key(text: str) -> bytes:
    if not text.startswith(_KEY_PREFIX):
        raise InvalidValue(
            f'expected "ed25519:" and the base64 of the 32-byte public key, got {quote(text)}'
        )
    try:
        key = base64.b64decode(text.removeprefix(_KEY_PREFIX), validate=True)
    except binascii.Error:
        raise InvalidValue('not valid base64 after "ed25519:"') from None
    if len(key) != 32:
        raise InvalidValue(f"an Ed25519 public key is 32 bytes; this one is {len(key)}")
    return key
