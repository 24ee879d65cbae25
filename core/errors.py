"""Errors that own their code, HTTP status and message."""

from __future__ import annotations

from typing import Any, ClassVar


class ExportServiceError(Exception):
    """Base of every error the service reports by code."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


# Request errors (4xx)


class InvalidRequest(ExportServiceError):
    code, http_status = "INVALID_REQUEST", 400


class UnknownExportType(ExportServiceError):
    code, http_status = "UNKNOWN_EXPORT_TYPE", 400

    def __init__(self, *, export_type: object, known: list[str]) -> None:
        super().__init__(
            f"unknown exportType {export_type!r}",
            details={"exportType": export_type, "known": known},
        )


class InvalidParams(ExportServiceError):
    code, http_status = "INVALID_PARAMS", 400


class CampaignNotFound(ExportServiceError):
    code, http_status = "CAMPAIGN_NOT_FOUND", 404

    def __init__(self, *, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id} not found", details={"campaignId": campaign_id})


class ExportNotFound(ExportServiceError):
    code, http_status = "EXPORT_NOT_FOUND", 404

    def __init__(self, *, campaign_id: str, export_id: str) -> None:
        super().__init__(
            f"export {export_id} not found in campaign {campaign_id}",
            details={"campaignId": campaign_id, "exportId": export_id},
        )


class ExportRetired(ExportServiceError):
    code, http_status = "EXPORT_RETIRED", 404

    def __init__(self, *, campaign_id: str, export_id: str, retired_at: str) -> None:
        super().__init__(
            f"export {export_id} was removed from the status table on {retired_at}"
            " (STATUS_RETENTION_DAYS); export-events keeps its history",
            details={"campaignId": campaign_id, "exportId": export_id, "retiredAt": retired_at},
        )


class NotCancellable(ExportServiceError):
    code, http_status = "EXPORT_NOT_CANCELLABLE", 409

    def __init__(self, *, export_id: str, status: str) -> None:
        super().__init__(
            f"export {export_id} is {status}: only PENDING or TRIGGERED exports can be cancelled",
            details={"exportId": export_id, "status": status},
        )


class NoMarketsFound(ExportServiceError):
    code, http_status = "NO_MARKETS_FOUND", 422

    def __init__(self, *, campaign_id: str) -> None:
        super().__init__(
            f"campaign {campaign_id} has no markets", details={"campaignId": campaign_id}
        )


class NotReady(ExportServiceError):
    code, http_status = "NOT_READY", 503


# Auth and HTTP-level errors (the web layer's middleware and auth raise these)


class Unauthenticated(ExportServiceError):
    """Missing, malformed, expired or wrongly signed bearer token."""

    code, http_status = "UNAUTHENTICATED", 401

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, details={"reason": reason})
        challenge = 'Bearer realm="export-service"'
        if reason != "missing":  # RFC 6750 §3: no error code when no credentials were sent
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ExportServiceError):
    code, http_status = "FORBIDDEN", 403


class AuthNotConfigured(ExportServiceError):
    """No usable JWT key in the settings: protected endpoints fail closed."""

    code, http_status = "AUTH_NOT_CONFIGURED", 503


class NotFound(ExportServiceError):
    code, http_status = "NOT_FOUND", 404


class MethodNotAllowed(ExportServiceError):
    code, http_status = "METHOD_NOT_ALLOWED", 405

    def __init__(self, *, method: str, allowed: list[str]) -> None:
        super().__init__(
            f"method {method} is not allowed here",
            details={"method": method, "allowed": allowed},
        )
        self.headers = {"Allow": ", ".join(allowed)}


class PayloadTooLarge(ExportServiceError):
    code, http_status = "PAYLOAD_TOO_LARGE", 413

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes", details={"maxBytes": limit})


# Run errors: recorded on the export as error.code / error.message


class ExportFailed(ExportServiceError):
    code = "EXPORT_FAILED"


# Dependency faults (core.adapters.faults classifies each driver error into one of these).


class SourceUnavailable(ExportFailed):
    """MongoDB kept failing in a way that may pass (network, election) beyond the retry budget."""

    code, http_status = "SOURCE_UNAVAILABLE", 503


class SourceAuthFailed(ExportFailed):
    """MongoDB refused the credentials or the operation: retrying cannot help."""

    code = "SOURCE_AUTH_FAILED"


class SourceQueryFailed(ExportFailed):
    """MongoDB rejected a query or command for a reason that will not pass."""

    code = "SOURCE_QUERY_FAILED"


class UnreadableDocument(ExportFailed):
    """A stored document is not valid BSON, or not a shape the export can read."""

    code = "SOURCE_DOCUMENT_UNREADABLE"


class UploadFailed(ExportFailed):
    """S3 kept failing in a way that may pass (5xx, SlowDown, network) beyond the retry budget."""

    code, http_status = "UPLOAD_FAILED", 503


class BucketNotFound(ExportFailed):
    code = "S3_BUCKET_NOT_FOUND"


class StorageAccessDenied(ExportFailed):
    """S3 refused the credentials, the signature or the permission."""

    code = "S3_ACCESS_DENIED"


class StorageRequestRejected(ExportFailed):
    """S3 answered 4xx for another reason (a missing object, an invalid argument)."""

    code = "S3_REQUEST_REJECTED"


class ExportTimedOut(ExportFailed):
    code = "EXPORT_TIMEOUT"


class ExportCancelled(ExportFailed):
    code = "EXPORT_CANCELLED"
