"""Structured logs: one JSON object per line, carrying the correlation id of the request or message at hand."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from myevents.tracing import current_trace_id

__all__ = [
    "JsonFormatter",
    "bind_correlation",
    "configure",
    "correlation",
    "correlation_id",
    "logconfig_dict",
    "unbind",
]

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("myevents_correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def correlation_id() -> str | None:
    """The correlation id of the request or message being handled in this thread, if any."""
    return _correlation.get()


def bind_correlation(cid: str | None) -> contextvars.Token[str | None]:
    """Log with ``cid`` as the correlation id until :func:`unbind` is given the returned token."""
    return _correlation.set(cid)


def unbind(token: contextvars.Token[str | None]) -> None:
    _correlation.reset(token)


@contextlib.contextmanager
def correlation(cid: str | None) -> Iterator[None]:
    """Log with ``cid`` as the correlation id inside the block."""
    token = _correlation.set(cid)
    try:
        yield
    finally:
        _correlation.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, service, correlation id, extras."""

    def __init__(self, service: str = "myevents") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "pid": record.process,
        }
        cid = _correlation.get()
        if cid is not None:
            doc["correlation_id"] = cid
        if _tracing:
            trace_id = current_trace_id()
            if trace_id is not None:
                doc["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


#: Whether OpenTelemetry can be imported: the trace id is looked up only then.
_tracing = importlib.util.find_spec("opentelemetry") is not None


def configure(service: str, level: str = "info") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def logconfig_dict(service: str, level: str = "info") -> dict[str, Any]:
    """The same set-up as a ``logging.config`` dictionary, for gunicorn's ``logconfig_dict`` setting."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
    }
