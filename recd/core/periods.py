"""Retention periods: syntax and calendar-correct deadline arithmetic (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Period:
    """A retention period: calendar ``months`` then fixed ``seconds``, or ``never``.

    ``text`` is what the operator wrote, kept for messages and `recctl policy`.
    """

    months: int = 0
    seconds: int = 0
    never: bool = False
    text: str = ""
