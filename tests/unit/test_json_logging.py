"""core.logging: one JSON object per line, the export's ids on its lines, redaction kept."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from core.logging import JsonFormatter, configure_logging, log_context, use_json_format
from core.redaction import install_log_redaction


def make_record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    install_log_redaction()
    logger = logging.getLogger("tests.json")
    return logger.makeRecord("tests.json", logging.INFO, __file__, 1, msg, args, None, extra=extra)


def formatted(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return dict(orjson.loads(line))


def test_a_line_has_ts_level_logger_and_message() -> None:
    entry = formatted(make_record("export %s started", "e1"))
    assert entry["level"] == "INFO"
    assert entry["logger"] == "tests.json"
    assert entry["message"] == "export e1 started"
    assert str(entry["ts"]).endswith("Z")
    assert "export_id" not in entry


def test_export_ids_come_from_the_context_or_from_extra() -> None:
    with log_context(export_id="e1", campaign_id="c1"):
        entry = formatted(make_record("running"))
    assert (entry["export_id"], entry["campaign_id"]) == ("e1", "c1")
    entry = formatted(make_record("queued", export_id="e2", campaign_id="c2"))
    assert (entry["export_id"], entry["campaign_id"]) == ("e2", "c2")
    assert "export_id" not in formatted(make_record("outside"))


async def test_tasks_started_in_the_context_keep_it() -> None:
    async def log_in_task() -> dict[str, object]:
        await asyncio.sleep(0)
        return formatted(make_record("part uploaded"))

    with log_context(export_id="e3", campaign_id="c3"):
        task = asyncio.ensure_future(log_in_task())
    entry = await task
    assert entry["export_id"] == "e3"


def test_pii_and_tokens_are_redacted_in_message_extra_and_traceback() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    try:
        raise ValueError("bad user fan@example.com")
    except ValueError:
        install_log_redaction()
        record = logging.getLogger("t").makeRecord(
            "t",
            logging.ERROR,
            __file__,
            1,
            "user %s sent Bearer %s",
            ("fan@example.com", token),
            __import__("sys").exc_info(),
            extra={"origin": {"email": "other@example.org", "phone": "+44 20 7946 0958"}},
        )
    line = JsonFormatter().format(record)
    for secret in ("fan@example.com", token, "other@example.org", "7946 0958"):
        assert secret not in line
    entry = orjson.loads(line)
    assert "ValueError" in entry["exc_info"]


def test_configure_logging_installs_json_on_the_root(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("warning")
        assert root.level == logging.WARNING
        logging.getLogger("tests.json").warning("hello %s", "world")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert orjson.loads(line)["message"] == "hello world"
        handler = logging.StreamHandler()
        root.addHandler(handler)
        use_json_format()
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_the_worker_command_runs_without_the_banner_table() -> None:
    from export_service import _without_banner

    assert _without_banner(["x", "worker", "-l", "info"]) == [
        "x",
        "--quiet",
        "worker",
        "-l",
        "info",
    ]
    assert _without_banner(["x", "send", "exports"]) == ["x", "send", "exports"]
