"""Logging configuration, from one dict, installed only by the entry points.

Policy: every module logs through ``logging.getLogger(__name__)`` with lazy ``%`` arguments.
Under systemd (``JOURNAL_STREAM`` set) lines carry the level but no timestamp, since journald
adds its own; elsewhere they carry a UTC timestamp. Audit entries are not log lines: they go to
the audit log.
"""

from __future__ import annotations

import logging.config
import time
from typing import Any

from recd.errors import UsageError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HUMAN_TIME = "%Y-%m-%dT%H:%M:%SZ"  # recd.core.audit.format_human_time's form


class UTCFormatter(logging.Formatter):
    """Timestamps in UTC to the second, like every other time recd shows a person."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # format_human_time's form, by time.strftime: every log line pays for it (1 us less).
        return time.strftime(HUMAN_TIME, time.gmtime(record.created))


def parse_level(text: str) -> str:
    """The log level named by ``RECD_LOG`` (any case); a usage error for anything else."""
    level = text.strip().upper()
    if level not in LEVELS:
        raise UsageError(f'RECD_LOG: unknown level "{text}" (use DEBUG, INFO, WARNING or ERROR)')
    return level


def logging_config(*, journald: bool, level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for recd; ``journald`` drops timestamps."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not journald:
        fmt = "%(asctime)s " + fmt
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"()": UTCFormatter, "format": fmt}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {"recd": {"level": level, "handlers": ["stderr"], "propagate": False}},
    }


def configure(*, journald: bool, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(journald=journald, level=level))
