"""Logging configuration, from one dict, installed only by the entry points.

Policy: every module logs through ``logging.getLogger(__name__)`` with lazy ``%`` arguments.
When stderr is the journal (``JOURNAL_STREAM`` names its device and inode, as systemd sets it),
lines carry no timestamp, since journald adds its own, and each starts with its syslog priority
(``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug), which journald takes off and keeps,
so ``journalctl -p warning -u recd`` shows exactly the problems; elsewhere lines carry a UTC
timestamp and no prefix. Audit entries are not log lines: they go to the audit log.

Every line is escaped (``recd.core.text.printable``): a file name with a newline, an escape
sequence or a bidi override, put in a tree by anyone who can write there, cannot forge a second
log line (or journal entry) or rewrite the terminal. A traceback keeps its line breaks, each
line indented with ``  | `` so none can pass for a record of its own.
"""

from __future__ import annotations

import logging.config
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, TypeAlias

from recd.core.text import printable, printable_lines
from recd.core.times import HUMAN_TIME
from recd.errors import UsageError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACE_INDENT = "  | "  # before each line of a traceback: it belongs to the record above
#: What ``logging.Formatter`` takes as ``style`` and as ``formatException``'s ``ei`` (typeshed's).
FormatStyle: TypeAlias = Literal["%", "{", "$"]
ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)
#: syslog priorities of the levels (sd-daemon(3)); journald reads them off each line.
PRIORITIES = {
    logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7,
}  # fmt: skip


class UTCFormatter(logging.Formatter):
    """Timestamps in UTC to the second, like every other time recd shows a person; every
    message escaped, so one log record is one line (and its traceback indented below it).
    With ``journald``, every line of a record starts with the record's syslog priority."""

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: FormatStyle = "%",
        validate: bool = True,
        *,
        journald: bool = False,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate)
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.journald:
            return text
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # format_human_time's form, by time.strftime: every log line pays for it (1 us less).
        return time.strftime(HUMAN_TIME, time.gmtime(record.created))

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Called by format() once record.message is the %-formatted message; escaped here, so
        # a hostile name in any argument is caught whatever the call site.
        return printable(super().formatMessage(record))

    def formatException(self, ei: ExcInfo) -> str:
        return printable_lines(super().formatException(ei), TRACE_INDENT)

    def formatStack(self, stack_info: str) -> str:
        return printable_lines(super().formatStack(stack_info), TRACE_INDENT)


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (a custom level takes the next one up)."""
    for level in sorted(PRIORITIES):
        if levelno <= level:
            return PRIORITIES[level]
    return PRIORITIES[logging.CRITICAL]


def stderr_is_journal(env: Mapping[str, str] = os.environ, fd: int = 2) -> bool:
    """Whether ``fd`` is the stream systemd connected to the journal: ``JOURNAL_STREAM`` is
    ``DEVICE:INODE`` of it (systemd.exec(5)). A variable inherited by a process whose stderr
    was redirected elsewhere (a shell started from the unit, a pipe) names another file."""
    value = env.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


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
        "formatters": {"plain": {"()": UTCFormatter, "format": fmt, "journald": journald}},
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
