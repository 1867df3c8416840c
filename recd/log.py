"""Logging configuration, from one dict, installed only by the entry points.

Policy: every module logs through ``logging.getLogger(__name__)`` with lazy ``%`` arguments.
Under systemd (``JOURNAL_STREAM`` set) lines carry the level but no timestamp, since journald
adds its own; elsewhere they carry a UTC timestamp. Audit entries are not log lines: they go to
the audit log.

Every line is escaped (``recd.core.text.printable``): a file name with a newline, an escape
sequence or a bidi override, put in a tree by anyone who can write there, cannot forge a second
log line (or journal entry) or rewrite the terminal. A traceback keeps its line breaks, each
line indented with ``  | `` so none can pass for a record of its own.
"""

from __future__ import annotations

import logging.config
import time
from typing import Any

from recd.core.text import printable, printable_lines
from recd.errors import UsageError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
HUMAN_TIME = "%Y-%m-%dT%H:%M:%SZ"  # recd.core.audit.format_human_time's form
TRACE_INDENT = "  | "  # before each line of a traceback: it belongs to the record above


class UTCFormatter(logging.Formatter):
    """Timestamps in UTC to the second, like every other time recd shows a person; every
    message escaped, so one log record is one line."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # format_human_time's form, by time.strftime: every log line pays for it (1 us less).
        return time.strftime(HUMAN_TIME, time.gmtime(record.created))

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Called by format() once record.message is the %-formatted message; escaped here, so
        # a hostile name in any argument is caught whatever the call site.
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable_lines(super().formatException(ei), TRACE_INDENT)

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(super().formatStack(stack_info), TRACE_INDENT)


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
