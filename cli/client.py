"""The REST API as Python calls: one httpx client, errors in the API's shape."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from cli.exit_codes import ExitCode, for_http_status

ACTIVE = frozenset({"PENDING", "TRIGGERED", "RUNNING"})
DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
"""Statuses of an export (or CCPA request) that has not ended."""


@dataclass
class ApiError(Exception):
    """An error answer (`{"error": {"code", "message", "details"}}`) or no answer at all."""

    message: str
    code: str = "ERROR"
    http_status: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        if self.code == DOWNLOAD_FAILED:
            return ExitCode.DOWNLOAD_FAILED
        if self.http_status is None:
            return ExitCode.UNAVAILABLE
        return for_http_status(self.http_status)

    def __str__(self) -> str:
        where = f"{self.http_status} " if self.http_status is not None else ""
        return f"{where}{self.code}: {self.message}"


def _path_id(value: str) -> str:
    return quote(value, safe="")


class ExportServiceClient:
    """A client of one export-service; `token` is the bearer JWT."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Accept": "application/json", "User-Agent": "exportctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        # Presigned URLs carry their own authorisation: never send the API token to S3.
        self._downloads = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()
        self._downloads.close()

    def __enter__(self) -> ExportServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/me")

    def openapi(self) -> dict[str, Any]:
        return self._call("GET", "/openapi.json")

    def request_export(
        self, campaign_id: str, export_type: str, params: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """(the export, whether it is new): an equal active export is answered instead."""
        body = {"exportType": export_type, "params": dict(params)}
        response = self._send("POST", f"/campaigns/{_path_id(campaign_id)}/exports", json=body)
        return _json(response), response.status_code == 202

    def get_export(self, campaign_id: str, export_id: str) -> dict[str, Any]:
        return self._call(
            "GET", f"/campaigns/{_path_id(campaign_id)}/exports/{_path_id(export_id)}"
        )

    def cancel_export(self, campaign_id: str, export_id: str) -> dict[str, Any]:
        return self._call(
            "DELETE", f"/campaigns/{_path_id(campaign_id)}/exports/{_path_id(export_id)}"
        )

    def list_exports(
        self,
        campaign_id: str,
        *,
        status: str | None = None,
        export_type: str | None = None,
        limit: int = 50,
        every_page: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """The campaign's exports newest first; all pages when `every_page`."""
        query = {"status": status, "exportType": export_type, "limit": limit}
        yield from self._pages(f"/campaigns/{_path_id(campaign_id)}/exports", query, every_page)

    def request_ccpa_deletion(self, user_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/ccpa/users/{_path_id(user_id)}")

    def get_ccpa(self, request_id: str) -> dict[str, Any]:
        return self._call("GET", f"/ccpa/requests/{_path_id(request_id)}")

    def list_ccpa(
        self, *, status: str | None = None, limit: int = 50, every_page: bool = False
    ) -> Iterator[dict[str, Any]]:
        yield from self._pages("/ccpa/requests", {"status": status, "limit": limit}, every_page)

    @contextmanager
    def download(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET of a presigned URL; raises ApiError on an error answer."""
        try:
            with self._downloads.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    raise ApiError(
                        f"the object store answered {response.status_code}: {response.text[:300]}",
                        code=DOWNLOAD_FAILED,
                        http_status=response.status_code,
                    )
                yield response
        except httpx.HTTPError as exc:
            raise ApiError(f"download failed: {exc}", code=DOWNLOAD_FAILED) from exc

    # -- plumbing ------------------------------------------------------------------------

    def _pages(
        self, path: str, query: Mapping[str, Any], every_page: bool
    ) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in query.items() if v is not None}
        while True:
            page = self._call("GET", path, params=params)
            yield from page["items"]
            if not every_page or page.get("next") is None:
                return
            params["cursor"] = page["next"]

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _json(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach {self._http.base_url}: {exc}", code="UNREACHABLE"
            ) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(
            f"expected JSON, got {response.headers.get('content-type')}",
            http_status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise ApiError("expected a JSON object", http_status=response.status_code)
    return body


def _error_of(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(
            str(error["message"]),
            code=str(error["code"]),
            http_status=response.status_code,
            details=error.get("details") or {},
        )
    except (ValueError, KeyError, TypeError):
        return ApiError(
            response.text[:300] or response.reason_phrase, http_status=response.status_code
        )
