"""Structured JSON logs that Google Cloud Logging understands (one object per line on
stderr: ``severity``, ``message``, ``time``, ``logging.googleapis.com/trace``)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

TRACE_KEY = "logging.googleapis.com/trace"
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class CloudJsonFormatter(logging.Formatter):
    """Formats a record as a Cloud Logging structured entry.

    Extra fields passed with ``extra={...}`` become top-level keys; ``correlation_id``
    also becomes the trace (``projects/<GOOGLE_CLOUD_PROJECT>/traces/<id>`` when the
    project is known), so every line about one pipeline run groups together.
    """

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project if project is not None else os.environ.get("GOOGLE_CLOUD_PROJECT")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname if record.levelname != "WARNING" else "WARNING",
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        cid = entry.get("correlation_id")
        if cid:
            entry[TRACE_KEY] = f"projects/{self.project}/traces/{cid}" if self.project else str(cid)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


# libraries whose own log lines (aiohttp's "Error handling request" with a traceback,
# asyncio's unhandled-exception reports) must be JSON too: one object per line
THIRD_PARTY_LOGGERS = ("aiohttp", "asyncio")


def configure(level: str = "INFO", *, stream: Any = None) -> None:
    """Route the ``scoperouter`` loggers, and aiohttp's and asyncio's, to one JSON handler
    (idempotent). Tracebacks become one escaped ``exception`` field, never extra lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(CloudJsonFormatter())
    handler._scoperouter_json = True  # type: ignore[attr-defined]
    for name, lvl in (
        ("scoperouter", level.upper()),
        *((n, "WARNING") for n in THIRD_PARTY_LOGGERS),
    ):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if getattr(h, "_scoperouter_json", False):
                logger.removeHandler(h)
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = False
