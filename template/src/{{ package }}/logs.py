"""Logging: JSON lines (or plain text) on stderr, with the current trace and span ids.

One stream: FastMCP's loggers (which would print through Rich) and uvicorn's (which would print plain
lines, access lines on stdout) go through the same handler, so every line has the same format.
Both formats carry the fields a record was logged with (`extra=`, e.g. the audit line's): JSON as
they are, text as `key=value` pairs after the message (nested keys dotted, odd values JSON-quoted).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

from opentelemetry import trace

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else came from `extra=` (uvicorn's `color_message`, the
# message with terminal colour codes, is dropped too).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The current trace and span ids, then the record's own fields."""
    fields: dict[str, object] = {}
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        fields["trace_id"] = format(context.trace_id, "032x")
        fields["span_id"] = format(context.span_id, "016x")
    fields.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`; a traceback, if any, on the lines after."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return " ".join([super().formatMessage(record), *_pairs(_fields(record))])


def _pairs(fields: Mapping[str, object], prefix: str = "") -> Iterator[str]:
    for key, value in fields.items():
        if isinstance(value, Mapping):
            yield from _pairs(value, f"{prefix}{key}.")
        elif value is not None:
            yield f"{prefix}{key}={_token(value)}"


def _token(value: object) -> str:
    """`value` as one word: JSON-quoted when empty or holding spaces, quotes, '=' or control characters,
    so a value cannot forge other fields or lines."""
    text = str(value)
    plain = text.isprintable() and not any(char in text for char in ' "=') and text != ""
    return text if plain else json.dumps(text)


class AccessFields(logging.Filter):
    """Gives uvicorn's access lines (`'%s - "%s %s HTTP/%s" %d'`) their parts as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            record.__dict__.update({"client": client, "method": method, "path": path, "status": status})
        return True


# Loggers that configure handlers of their own; their records go to the root handler instead.
_ROUTED = ("fastmcp", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def configure_logging(level: str, log_format: LogFormat) -> None:
    import fastmcp  # noqa: F401 - importing it installs its Rich handler, undone below

    # stderr only: on stdio, stdout carries the MCP protocol.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(AccessFields())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _ROUTED:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.setLevel(logging.NOTSET)
        routed.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """A crash's traceback as one log entry, not lines of plain text."""
    logging.getLogger(__name__).critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, traceback))
