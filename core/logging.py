"""Structured logs: one JSON object per line, with the running export's ids on its lines.

Every line has `ts` (UTC, ISO-8601 with milliseconds), `level`, `logger` and `message`;
`export_id` and `campaign_id` come from `extra=` or from `log_context()`, which the export
runner holds around each export (tasks started inside inherit it); `trace_id` and `span_id`
from the current OpenTelemetry span (core/tracing.py). Other `extra=` fields
and a traceback (`exc_info`) are added as they are. Redaction (core/redaction.py) still
applies: the record factory redacts message and traceback when the record is made, and the
formatter redacts again the message and every string it adds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import orjson

from core.redaction import install_log_redaction, redact
from core.tracing import log_ids

CONTEXT_FIELDS = ("export_id", "campaign_id")

_context: ContextVar[dict[str, str] | None] = ContextVar("export_log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName", "color_message"}


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add `fields` (e.g. export_id, campaign_id) to every log line made inside the block."""
    current = _context.get() or {}
    token = _context.set({**current, **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, str]:
    return dict(_context.get() or {})


def _clean(value: Any) -> Any:
    """A JSON-ready, redacted form of an `extra=` value."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """A LogRecord as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg} {record.args!r}"
        created = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        entry: dict[str, Any] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(message),
        }
        for key, value in (_context.get() or {}).items():
            entry[key] = _clean(value)
        # The span the line was written in: logs and traces of an export meet on these.
        entry.update(log_ids())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = _clean(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def use_json_format(logger: logging.Logger | None = None) -> None:
    """Give every handler of `logger` (default: root) the JSON formatter."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        handler.setFormatter(JsonFormatter())


def configure_logging(level: str | int = "INFO") -> None:
    """Root logger: one handler on stderr with the JSON formatter, at `level`; redaction on.

    For processes that are not the Faust worker (the worker's own logging setup is
    re-formatted by `use_json_format`, see core.app.ExportWorker).
    """
    install_log_redaction()
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
