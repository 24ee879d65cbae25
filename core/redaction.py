"""Log redaction: bearer tokens, JWTs, email addresses and phone-like numbers never reach a log."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*")
# A JWS compact serialisation: base64url header (always starts `{"` -> `eyJ`), payload, signature.
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+")
# 10 to 15 digits, optionally `+`-prefixed and separated by spaces, dots, dashes or brackets,
# not glued to other word characters. Dates (8 digits) and times (`:`) stay readable.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){9,14}(?![\w:])")

REDACTED_BEARER = "Bearer [REDACTED]"
REDACTED_JWT = "[REDACTED_JWT]"
REDACTED_EMAIL = "[REDACTED_EMAIL]"
REDACTED_PHONE = "[REDACTED_PHONE]"


def redact(text: str) -> str:
    """`text` with every bearer token, JWT, email address and phone-like number replaced."""
    text = BEARER.sub(REDACTED_BEARER, text)
    text = JWT.sub(REDACTED_JWT, text)
    text = EMAIL.sub(REDACTED_EMAIL, text)
    return PHONE.sub(REDACTED_PHONE, text)


_exception_formatter = logging.Formatter()


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Format the record's message (and traceback) now, redacted; later formatting reuses it."""
    try:
        message = record.getMessage()
    except Exception:  # bad args: keep what there is, redacted, rather than lose the record
        message = f"{record.msg} {record.args!r}"
    record.msg = redact(message)
    record.args = ()
    if record.exc_info and not record.exc_text:
        record.exc_text = _exception_formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A handler filter for handlers the record factory does not cover (it covers all records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_install_lock = threading.Lock()
_installed = False


def install_log_redaction() -> None:
    """Redact every log record of the process when it is created (idempotent).

    A record factory rather than a filter: filters on a logger do not see records propagated
    from child loggers, and Faust replaces the root handlers when the worker starts.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
