"""Choose how (and whether) to erase a local file from facts about it (SPEC section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from recd.core.model import EraseMethod, ErasePattern, OnIneffective


@dataclass(frozen=True, slots=True)
class EraseSettings:
    """The `[erase]` table."""

    method: EraseMethod = EraseMethod.OVERWRITE
    pattern: ErasePattern = ErasePattern.ZEROS
    verify: bool = False
    settle: timedelta = timedelta(minutes=2)
    on_ineffective: OnIneffective = OnIneffective.UNLINK
