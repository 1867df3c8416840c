"""Classification of a recording from facts the adapters gathered (SPEC section 2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo

#: Default tag names per field, matched case-insensitively (SPEC section 11).
DEFAULT_TAG_NAMES: Mapping[str, tuple[str, ...]] = {
    "licence": ("licence", "license"),
    "call_id": ("call_id",),
    "started": ("started",),
    "caller": ("caller",),
    "callee": ("callee",),
    "extension": ("extension",),
}


@dataclass(frozen=True, slots=True)
class ClassifyRule:
    """How one source's recordings are classified; built by config at load time."""

    timezone: tzinfo
    licence: str | None = None
    pattern: re.Pattern[str] | None = None
    started_format: str | None = None
    tags: bool = False
    tag_names: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_TAG_NAMES)
    metadata: bool = False
