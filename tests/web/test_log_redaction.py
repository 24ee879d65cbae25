"""Tokens, email addresses and phone numbers never reach a log record."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.redaction import RedactingFilter, install_log_redaction, redact
from tests.web.conftest import Mint, bearer
from topics.status import StatusStore

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ("authorization=bearer xyz", "authorization=Bearer [REDACTED]"),
        (f"token {JWT} seen", "token [REDACTED_JWT] seen"),
        ("mail a.b+c@ex-ample.co.uk now", "mail [REDACTED_EMAIL] now"),
        ("ünï@exämple.de", "[REDACTED_EMAIL]"),
        ("call +1 (555) 123-4567", "call [REDACTED_PHONE]"),
        ("phone=5551234567;", "phone=[REDACTED_PHONE];"),
        ("+44 20 7946 0958", "[REDACTED_PHONE]"),
        ("0044 7911 123456", "[REDACTED_PHONE]"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "export 3f2a9c0e1b2d4e5f8a7b6c5d4e3f2a1b FINISHED",
        "at 2026-05-01 17:00:00 and 2026-05-01T17:00:00Z",
        "rows 1000000 bytes 123456789 offset 42",
        "broker 127.0.0.1:9092 kafka://localhost:9092",
        "sha256 0123456789012345678901234567890123456789abcdef",
        "entries/c1/e1/Demo - entries.csv",
    ],
)
def test_ordinary_log_lines_stay_readable(text: str) -> None:
    assert redact(text) == text


def test_every_record_is_redacted_including_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()  # the app installs it; installing again changes nothing
    install_log_redaction()
    logger = logging.getLogger("tests.redaction.child")
    with caplog.at_level(logging.INFO):
        logger.info("user %s phone %s token %s", "fan@example.com", "+1 555 123 4567", JWT)
        try:
            raise ValueError("bad email fan@example.com")
        except ValueError:
            logger.exception("failed for %s", "Bearer secret-token")
    text = caplog.text
    for secret in ("fan@example.com", "555 123 4567", JWT, "secret-token"):
        assert secret not in text
    assert "[REDACTED_EMAIL]" in text
    assert "[REDACTED_PHONE]" in text
    assert "Bearer [REDACTED]" in text
    assert "ValueError: bad email [REDACTED_EMAIL]" in text


def test_the_filter_redacts_records_made_elsewhere() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("a@b.io",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "to [REDACTED_EMAIL]"


def test_broken_format_arguments_are_still_redacted() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d %d", ("a@b.io",), None)
    RedactingFilter().filter(record)
    assert "a@b.io" not in record.getMessage()


async def test_a_request_that_fails_logs_neither_its_token_nor_pii(
    client: Any,
    mint: Mint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status_store: StatusStore,
) -> None:
    token = mint(sub="fan@example.com", supreme=True)

    def broken(campaign_id: str, **filters: Any) -> Any:
        raise RuntimeError(f"lookup failed for fan@example.com with Bearer {token}")

    monkeypatch.setattr(status_store, "page", broken)
    with caplog.at_level(logging.DEBUG):
        response = await client.get("/campaigns/c1/exports", headers=bearer(token))
    assert response.status == 500
    assert "lookup failed" in caplog.text
    assert token not in caplog.text
    assert "fan@example.com" not in caplog.text
