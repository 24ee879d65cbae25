"""Object keys and file names built only from sanitised parts (SPEC §3 object keys)."""

from __future__ import annotations

import re
import unicodedata

_MAX_NAME_BYTES = 200
# Path separators and control characters become spaces; characters that file systems
# and ZIP tools refuse in names are dropped.
_SEPARATORS = re.compile(r"[\x00-\x1f\x7f/\\]+")
_REFUSED = re.compile(r'[:*?"<>|]+')


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def safe_part(text: str, *, fallback: str = "export", limit: int = _MAX_NAME_BYTES) -> str:
    """One path segment: no separators or control characters, no dot-only names, bounded."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch
        for ch in unicodedata.normalize("NFC", text)
    )
    cleaned = _REFUSED.sub("", _SEPARATORS.sub(" ", cleaned))
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    if not cleaned:
        cleaned = fallback
    return _truncate_utf8(cleaned, limit).strip(" .") or fallback


def campaign_file_name(campaign_name: object, suffix: str, extension: str) -> str:
    """`{campaign name} - {suffix}.{extension}`, the whole name at most 200 bytes."""
    tail = f" - {suffix}.{extension}"
    name = safe_part(str(campaign_name or ""), fallback="campaign")
    return _truncate_utf8(name, _MAX_NAME_BYTES - len(tail.encode())).rstrip(" .") + tail


def object_key(export_type: str, campaign_id: str, export_id: str, file_name: str) -> str:
    """`{exportType}/{campaignId}/{exportId}/{file}` with every part sanitised."""
    return "/".join(
        (
            safe_part(export_type),
            safe_part(campaign_id, fallback="campaign"),
            safe_part(export_id),
            safe_part(file_name),
        )
    )
