"""The README documents every setting, and the worker honours LOG_LEVEL."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text("utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []


def test_log_level_setting_becomes_the_worker_flag() -> None:
    from export_service import _with_default_log_level

    defaulted = _with_default_log_level(["x", "worker"], "WARNING")
    assert defaulted == ["x", "worker", "--loglevel", "warn"]
    # Faust's worker refuses any other spelling (it exits with a usage error).
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        flag = _with_default_log_level(["x", "worker"], level)[-1]
        assert flag in {"crit", "error", "warn", "info", "debug"}
    explicit = ["x", "worker", "-l", "info"]
    assert _with_default_log_level(explicit, "WARNING") == explicit
