"""`exportctl download`: every object of a FINISHED export, checked against its record.

Each object is streamed to `<name>.part` beside its destination while its sha256 is
computed; only an object whose size and digest equal the record's is renamed into place.
A mismatch removes the partial file and is reported (exit code VERIFY_FAILED).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from cli.client import ApiError, ExportServiceClient
from cli.render import err

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Downloaded:
    key: str
    path: Path
    size: int
    sha256: str
    verified: bool
    skipped: bool = False
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "verified": self.verified,
            "skipped": self.skipped,
            "problem": self.problem,
        }


class UnsafeKey(ValueError):
    """An object key that would be written outside the destination directory."""


def destination(directory: Path, key: str) -> Path:
    """`directory/<key>`, keeping the key's folders; refuses keys that climb out."""
    parts = PurePosixPath(key).parts
    if not parts or PurePosixPath(key).is_absolute() or any(p in ("..", ".") for p in parts):
        raise UnsafeKey(f"refusing object key {key!r}")
    return directory.joinpath(*parts)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _urls(record: Mapping[str, Any]) -> dict[str, str]:
    return {u["key"]: u["url"] for u in record.get("downloadUrls") or []}


def download_export(
    client: ExportServiceClient,
    record: Mapping[str, Any],
    directory: Path,
    *,
    overwrite: bool,
    show_bar: bool,
    refresh: Callable[[], Mapping[str, Any]] | None = None,
) -> list[Downloaded]:
    """Download and verify each object of `record` (a GET of one FINISHED export).

    A presigned URL the store refuses (403: it expired during a long download) is asked
    for again once, with `refresh` (a new GET of the export)."""
    urls = _urls(record)
    objects = list(record.get("objects") or [])
    total = sum(int(o["size"]) for o in objects)
    results: list[Downloaded] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=not show_bar,
    )
    with progress:
        task = progress.add_task("downloading", total=total)
        for obj in objects:
            key, size, sha256 = str(obj["key"]), int(obj["size"]), str(obj["sha256"])
            path = destination(directory, key)
            if path.exists() and not overwrite:
                if path.stat().st_size == size and _sha256_of(path) == sha256:
                    progress.advance(task, size)
                    results.append(Downloaded(key, path, size, sha256, True, skipped=True))
                    continue
                raise FileExistsError(f"{path} exists and differs (use --overwrite)")
            if key not in urls:
                raise ApiError(f"no download URL for {key}", code="NO_DOWNLOAD_URL")
            progress.update(task, description=PurePosixPath(key).name)
            try:
                fetched = _fetch_one(client, urls[key], path, size, sha256, progress, task)
            except ApiError as exc:
                if refresh is None or exc.http_status != 403:
                    raise
                urls = _urls(refresh())
                fetched = _fetch_one(client, urls[key], path, size, sha256, progress, task)
            results.append(Downloaded(key, *fetched))
    return results


def _fetch_one(
    client: ExportServiceClient,
    url: str,
    path: Path,
    size: int,
    sha256: str,
    progress: Progress,
    task: Any,
) -> tuple[Path, int, str, bool, bool, str | None]:
    """(path, bytes written, their sha256, verified, skipped, problem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    written = 0
    try:
        with client.download(url) as response, partial.open("wb") as file:
            for chunk in response.iter_bytes(_CHUNK):
                file.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                progress.advance(task, len(chunk))
        got = digest.hexdigest()
        problem = None
        if written != size:
            problem = f"size {written:,} bytes, the record says {size:,}"
        elif got != sha256:
            problem = f"sha256 {got}, the record says {sha256}"
        if problem is not None:
            partial.unlink(missing_ok=True)
            return path, written, got, False, False, problem
        os.replace(partial, path)
        return path, written, got, True, False, None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
