"""Does a legal hold's or an early-deletion request's scope match a recording (SPEC 5, 6, 11)?

A scope names its licence and any of: recording ids, call ids, a party (a phone number that is
the caller or the callee) and a time range on ``started``. Fields combine with AND; the values
of one list field with OR. ``from`` is inclusive and ``to`` exclusive, so consecutive ranges
never overlap. A scope with nothing but its licence is *empty*: a request with it is refused,
a hold with it covers the whole licence (and says so). A request that means every recording of
its licence says so explicitly (``"all": true``, ``whole_licence`` here): an empty scope that
no other field may join.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from recd.core.model import Recording

_SEPARATORS = re.compile(r"[\s().\-/]")


def normalise_party(number: str) -> str:
    """A phone number as compared: separators dropped, a leading international ``00`` read as
    ``+``. National and international forms of one number (``07700…`` and ``+447700…``) stay
    different: which country a PBX's local numbers belong to is not recd's to guess."""
    digits = _SEPARATORS.sub("", number.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    return digits


@dataclass(frozen=True, slots=True)
class Scope:
    licence: str
    recordings: frozenset[str] = frozenset()
    call_ids: frozenset[str] = frozenset()
    party: str | None = None
    start: datetime | None = None  # ``from``: started at or after
    end: datetime | None = None  # ``to``: started before
    whole_licence: bool = False  # a request's ``"all": true``: every recording, said explicitly
    _party: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("the scope's 'to' must be later than its 'from'")
        if self.whole_licence and not self.empty:
            raise ValueError("a scope of the whole licence ('all') takes no other field")
        party = None if self.party is None else normalise_party(self.party)
        object.__setattr__(self, "_party", party)

    @property
    def empty(self) -> bool:
        """Nothing narrows it below its licence."""
        return not (self.recordings or self.call_ids or self.party or self.start or self.end)

    def matches(self, rec: Recording) -> bool:
        c = rec.classification
        if c.licence != self.licence:
            return False
        if self.recordings and rec.id not in self.recordings:
            return False
        if self.call_ids and c.call_id not in self.call_ids:
            return False
        if self._party is not None and self._party not in {
            normalise_party(p) for p in (c.caller, c.callee) if p
        }:
            return False
        if self.start is not None and c.started < self.start:
            return False
        return self.end is None or c.started < self.end
