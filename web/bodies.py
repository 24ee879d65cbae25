"""The REST API's answers as models: the views build their bodies with them, and
/openapi.json documents their schemas (web/openapi.py), so the two cannot drift."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.schemas import PublicCcpaRequest, PublicExportRecord


class _Body(BaseModel):
    # Every field is always written, so the schema requires each one; nothing else is sent.
    model_config = ConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="forbid",
        json_schema_serialization_defaults_required=True,
    )


class ErrorDetail(_Body):
    code: str = Field(examples=["INVALID_REQUEST"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(_Body):
    """Every error answer (SPEC §5)."""

    error: ErrorDetail


class DownloadUrl(_Body):
    key: str
    url: str = Field(description="a presigned GET, valid for PRESIGN_EXPIRY_SECONDS")


class ExportDownloads(BaseModel):
    """What GET of one export adds to the record (the record's fields come first)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    download_urls: list[DownloadUrl] = Field(
        default_factory=list,
        alias="downloadUrls",
        description="only when FINISHED: one presigned GET per object",
    )


class ExportPage(_Body):
    """A page of a campaign's exports, newest first."""

    items: list[PublicExportRecord]
    next: str | None = Field(description="cursor of the next page (null on the last one)")


class CcpaPage(_Body):
    """A page of CCPA deletion requests, newest first."""

    items: list[PublicCcpaRequest]
    next: str | None = Field(description="cursor of the next page (null on the last one)")


class Identity(_Body):
    """The caller as its token says."""

    sub: str
    supreme: bool
    campaigns: list[str] = Field(description="the campaigns the token names with REPORT")


class Heartbeat(_Body):
    status: Literal["ok"] = "ok"


class Readiness(_Body):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description='each check: "ok" or why it failed')
