"""Logging of the server: text (the historical format) or one JSON object per line.

Both formats carry the request ID of the request being served, when there is one. Neither
lets a logged value (a request path, an error message) forge a line or write a control
character: text escapes them (``\n``, ``\x00``) and indents a traceback's lines, so only a
record starts a line at its first column; JSON escapes them in its strings.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from hpcwaas.controls import CONTROL, escape_controls

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The ID of the HTTP request being served (set by the server's request-ID middleware).
request_id_var: ContextVar[str | None] = ContextVar("hpcwaas_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's, or None) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


def _request_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "request_id", None)
    return value if isinstance(value, str) and value else None


class TextFormatter(logging.Formatter):
    """The historical format, plus `` [request_id]`` when the record has one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = escape_controls(super().formatMessage(record))
        request_id = _request_id(record)
        return f"{text} [{request_id}]" if request_id else text

    def formatException(self, ei: Any) -> str:
        return _continuation(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _continuation(super().formatStack(stack_info))


def _continuation(text: str) -> str:
    """A record's further lines (a traceback), indented and escaped: none can pass for a record."""
    return "\n".join("  " + escape_controls(line) for line in text.split("\n"))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339), level, logger, message, request_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id(record)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # json.dumps escapes C0 controls only: DEL, C1 and U+2028/9 get their \u escape too.
        return CONTROL.sub(_json_escape, json.dumps(entry, ensure_ascii=False))


def configure_logging(level: str, fmt: Literal["text", "json"] = "text") -> None:
    """Log to stderr at ``level`` in format ``fmt``; calling it again reconfigures."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # Alembic narrates every plugin it loads at INFO; the outcome is logged by us.
    logging.getLogger("alembic").setLevel(logging.WARNING)
