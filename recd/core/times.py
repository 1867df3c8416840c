"""Every time recd writes or reads as text: one module, so one instant reads the same everywhere.

Three written forms, all UTC with a ``Z``: ``format_time`` to the microsecond for what is kept as
evidence or read by programs (the audit log, ``--json``, certificates); ``format_human_time`` to
the second for what a person reads (log lines, messages, recctl's tables, ``STATUS=``; the
logging formatter writes the same form with ``HUMAN_TIME`` by ``time.strftime``); ``format_iso``,
the fraction only when there is one, for the admin protocol's replies and S3's timestamps. Two
ways in: ``parse_time`` reads back only ``format_time``'s form (an audit entry's ``time``);
``parse_iso`` reads any ISO 8601 time a person or a peer gave. A naive datetime is never written
(its zone would be a guess), and read naive only where the caller says which zone it means.

Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

TIME_EXAMPLE = "2026-11-23T13:43:09.123456Z"
HUMAN_TIME = "%Y-%m-%dT%H:%M:%SZ"  # format_human_time's form, for time.strftime

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def format_time(dt: datetime) -> str:
    """``dt`` in UTC with microseconds and a ``Z``, e.g. 2026-11-23T13:43:09.123456Z.

    Raises ``ValueError`` for a naive datetime: its time zone would be a guess.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}: an audit time needs a time zone")
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def format_human_time(dt: datetime) -> str:
    """``dt`` in UTC to the second, e.g. 2026-11-23T13:43:09Z (the fraction is dropped).

    The one form of every time recd shows a person: log lines, messages and error replies,
    recctl's tables, ``STATUS=``. What is kept as evidence or read by programs (the audit log,
    ``--json``, certificates) keeps ``format_time``'s microseconds. Raises ``ValueError`` for a
    naive datetime, as ``format_time`` does.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()}: a time shown needs a time zone")
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def format_iso(dt: datetime) -> str:
    """``dt`` (aware) in UTC with a ``Z``, microseconds only when there are some:
    2026-11-23T13:43:09Z, 2026-11-23T13:43:09.500000Z."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of an entry's ``time`` (the ``format_time`` form only)."""
    if not _TIME.fullmatch(text):
        raise ValueError(f"not a UTC time like {TIME_EXAMPLE}: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def parse_iso(text: str, naive: tzinfo | None = None) -> datetime:
    """An ISO 8601 time (``Z`` or an offset) as an aware datetime, in the zone it was given.

    A time without a zone is in ``naive`` (UTC, where a person's bare time means UTC); with
    ``naive`` None it raises ``ValueError``, as text that is no ISO 8601 time does."""
    when = datetime.fromisoformat(text)
    if when.utcoffset() is None:
        if naive is None:
            raise ValueError(f"an ISO 8601 time without a zone: {text!r}")
        when = when.replace(tzinfo=naive)
    return when
