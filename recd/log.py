"""Logging configuration, from one dict, installed only by the entry points.

Policy: every module logs through ``logging.getLogger(__name__)`` with lazy ``%`` arguments.
Under systemd (``JOURNAL_STREAM`` set) lines carry the level but no timestamp, since journald
adds its own; elsewhere they carry a UTC timestamp. Audit entries are not log lines: they go to
the audit log.
"""

from __future__ import annotations

import logging.config
from typing import Any


def logging_config(*, journald: bool, level: str = "INFO") -> dict[str, Any]:
    """The dictConfig for recd; ``journald`` drops timestamps."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not journald:
        fmt = "%(asctime)s " + fmt
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": fmt, "datefmt": "%Y-%m-%dT%H:%M:%S%z"}},
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
