"""What `exportctl` exits with: one code per outcome a script may want to tell apart."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    """The call succeeded; an export or deletion that was waited for FINISHED/COMPLETED."""
    ERROR = 1
    """Anything else: the service answered 5xx, an unexpected answer."""
    USAGE = 2
    """A bad command line (click's own code)."""
    FAILED = 3
    EXPIRED = 4
    CANCELLED = 5
    AUTH = 6
    """401 or 403: no token, a bad or expired one, or no REPORT on the campaign."""
    NOT_FOUND = 7
    """404: no such campaign, export or CCPA request (or retired by retention)."""
    VERIFY_FAILED = 8
    """A downloaded object's size or sha256 differs from the export record's."""
    UNAVAILABLE = 9
    """The service cannot be reached, or answered 503 (not ready, broker down)."""
    REJECTED = 10
    """The service refused the request (400, 409, 413, 422): the message says why."""
    DELETED = 11
    """The export's files were deleted (a CCPA request)."""
    DOWNLOAD_FAILED = 12
    """The object store refused or broke a download (its presigned URL, not the token)."""
    TIMED_OUT = 124
    """`--timeout` passed before the export ended (as timeout(1) exits)."""


_BY_STATUS = {
    "FINISHED": ExitCode.OK,
    "COMPLETED": ExitCode.OK,
    "FAILED": ExitCode.FAILED,
    "EXPIRED": ExitCode.EXPIRED,
    "CANCELLED": ExitCode.CANCELLED,
    "DELETED": ExitCode.DELETED,
}


def for_status(status: str) -> ExitCode:
    """The exit code of an export's (or CCPA request's) status; OK while it still runs."""
    return _BY_STATUS.get(status, ExitCode.OK)


def for_http_status(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 503:
        return ExitCode.UNAVAILABLE
    if 400 <= status < 500:
        return ExitCode.REJECTED
    return ExitCode.ERROR
