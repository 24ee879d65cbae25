"""The export record (what the status table holds and the API returns) and its status."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field


class Status(enum.StrEnum):
    PENDING = "PENDING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"
    CANCELLED = "CANCELLED"


ACTIVE_STATUSES = frozenset({Status.PENDING, Status.TRIGGERED})
TERMINAL_STATUSES = frozenset(
    {Status.FINISHED, Status.FAILED, Status.EXPIRED, Status.DELETED, Status.CANCELLED}
)

Source = Literal["rest", "kafka"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_export_id() -> str:
    return uuid.uuid4().hex


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class StoredObject(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    size: int
    sha256: str


class PlannedUploads(BaseModel):
    """Where a triggered run writes: the object keys it may have open multipart uploads on,
    and the prefix of its staging objects. Kept on the record so that whatever ends the
    export (a failure, a cancel, a retry on another day) can clean them up."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    keys: tuple[str, ...] = ()
    staging_prefix: str | None = None


_BOOKKEEPING = frozenset(
    {
        "attempts",
        "strikes",
        "reached",
        "previous_reach",
        "clean_stop",
        "announced",
        "planned",
        "cleanup_pending",
        "trace_parent",
    }
)


class ExportRecord(BaseModel):
    """One export request and everything known about its run."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    campaign_id: str = Field(alias="campaignId")
    export_type: str = Field(alias="exportType")
    params: dict[str, Any] = Field(default_factory=dict)
    status: Status = Status.PENDING
    source: Source = "rest"
    requested_by: str | None = Field(None, alias="requestedBy")
    created_at: dt.datetime = Field(default_factory=utcnow, alias="createdAt")
    triggered_at: dt.datetime | None = Field(None, alias="triggeredAt")
    finished_at: dt.datetime | None = Field(None, alias="finishedAt")
    total_count: int | None = Field(None, alias="totalCount")
    row_count: int = Field(0, alias="rowCount")
    skipped_count: int = Field(0, alias="skippedCount")
    # While TRIGGERED: the smoothed rate and the time left (core/progress.py); once ended,
    # the whole run's rate and no time left.
    rows_per_second: float | None = Field(None, alias="rowsPerSecond")
    eta_seconds: float | None = Field(None, alias="etaSeconds")
    bucket: str | None = None
    objects: tuple[StoredObject, ...] = ()
    error: ErrorInfo | None = None
    deleted_at: dt.datetime | None = Field(None, alias="deletedAt")
    deleted_by: str | None = Field(None, alias="deletedBy")
    # The trace that follows the export (core/tracing.py): its id, public so that users can
    # find it, and the W3C `traceparent` of the request the run's spans continue.
    trace_id: str | None = Field(None, alias="traceId")
    trace_parent: str | None = Field(None, alias="traceParent")
    # Run bookkeeping, not part of the public record (core/lifecycle.py says how it is
    # used): tries started, tries in a row that got no further than the one before, how far
    # the current try got and how far the one before it got, whether the last try was
    # stopped cleanly (a shutdown: not a try), where the run writes, whether a clean-up of
    # those uploads failed and waits to be tried again, and whether the terminal event
    # reached export-events.
    attempts: int = 0
    strikes: int = 0
    reached: int = 0
    previous_reach: int = 0
    clean_stop: bool = False
    planned: PlannedUploads | None = None
    cleanup_pending: bool = Field(False, alias="cleanupPending")
    announced: bool = False

    def to_public(self) -> dict[str, Any]:
        """The record as the API and export-events show it."""
        return self.model_dump(mode="json", by_alias=True, exclude=set(_BOOKKEEPING))

    def to_store(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> ExportRecord:
        return cls.model_validate(data)

    def evolve(self, **changes: Any) -> ExportRecord:
        """A copy with the given fields (by field name) changed."""
        return self.model_copy(update=changes)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def duplicate_key(self) -> tuple[str, str, bytes, dt.date]:
        """What makes two requests the same export (SPEC §4 duplicate rule)."""
        return (
            self.campaign_id,
            self.export_type,
            orjson.dumps(self.params, option=orjson.OPT_SORT_KEYS),
            self.created_at.astimezone(dt.UTC).date(),
        )


class CcpaStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


CCPA_EXEMPT_TYPES = frozenset({"verifiedEntries", "scoring", "autoReminderEmail"})
"""Export types whose files CCPA deletion keeps (SPEC §5)."""


class CcpaDeletedExport(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    export_id: str = Field(alias="exportId")
    campaign_id: str = Field(alias="campaignId")
    export_type: str = Field(alias="exportType")
    bucket: str | None = None
    object_count: int = Field(alias="objectCount")
    keys: tuple[str, ...] = ()


class CcpaExemptExport(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    export_id: str = Field(alias="exportId")
    campaign_id: str = Field(alias="campaignId")
    export_type: str = Field(alias="exportType")
    object_count: int = Field(alias="objectCount")


class CcpaSummary(BaseModel):
    """What one CCPA deletion did: the campaigns found, exports deleted and kept."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    campaign_ids: tuple[str, ...] = Field((), alias="campaignIds")
    deleted: tuple[CcpaDeletedExport, ...] = ()
    exempt: tuple[CcpaExemptExport, ...] = ()
    deleted_object_count: int = Field(0, alias="deletedObjectCount")


class CcpaRequest(BaseModel):
    """One CCPA deletion request (`ccpa.deletion_requested`) and its outcome."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    request_id: str = Field(alias="requestId")
    user_id: str = Field(alias="userId")
    status: CcpaStatus = CcpaStatus.PENDING
    source: Source = "rest"
    requested_by: str | None = Field(None, alias="requestedBy")
    created_at: dt.datetime = Field(default_factory=utcnow, alias="createdAt")
    started_at: dt.datetime | None = Field(None, alias="startedAt")
    finished_at: dt.datetime | None = Field(None, alias="finishedAt")
    summary: CcpaSummary | None = None
    error: ErrorInfo | None = None
    trace_id: str | None = Field(None, alias="traceId")
    trace_parent: str | None = Field(None, alias="traceParent")
    # Run bookkeeping, as on ExportRecord.
    attempts: int = 0
    announced: bool = False

    @property
    def deleted_by(self) -> str:
        """The `deletedBy` of the exports this request deletes."""
        return f"ccpa:{self.request_id}"

    def to_public(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", by_alias=True, exclude={"attempts", "announced", "trace_parent"}
        )

    def to_store(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> CcpaRequest:
        return cls.model_validate(data)

    def evolve(self, **changes: Any) -> CcpaRequest:
        return self.model_copy(update=changes)
