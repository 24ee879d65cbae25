"""The engine never leaves a partial object: failures and cancellation abort the upload."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from core.errors import SourceUnavailable, UploadFailed
from exporters.registry import get_spec
from exporters.runner import Progress, RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore

OPTIONS = RunOptions(
    bucket_names={"exports": "b", "scoring": "b", "vfScoring": "b", "sfmc": "b"},
    batch_size=100,
    columnar_batch_size=100,
    part_size=4096,
    max_in_flight=2,
    progress_interval_seconds=3600,
    progress_interval_rows=1000,
)


def generated(entries: int) -> dict[str, list[dict[str, Any]]]:
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return {
        "campaigns": [{"_id": "c1", "name": "Big"}],
        "markets": [{"_id": "m1", "campaignId": "c1", "name": "M"}],
        "users": [{"_id": f"u{i}", "email": f"u{i}@x.com"} for i in range(entries)],
        "entries": [
            {
                "_id": f"e{i}",
                "campaignId": "c1",
                "userId": f"u{i}",
                "marketId": "m1",
                "createdAt": created,
            }
            for i in range(entries)
        ],
    }


async def _start(source: InMemorySource, store: InMemoryStore, **kw: Any) -> Any:
    spec = get_spec("entries")
    ctx = await load_context(spec, source, export_id="x", campaign_id="c1", params={})
    return run_export(spec, ctx, source=source, store=store, options=OPTIONS, **kw)


async def test_an_s3_failure_aborts_the_upload_and_leaves_no_object() -> None:
    source, store = InMemorySource(generated(2000)), InMemoryStore(fail_on_part=3)
    with pytest.raises(UploadFailed):
        await (await _start(source, store))
    (upload,) = store.uploads
    assert upload.aborted
    assert not upload.completed
    assert store.objects == {}
    assert source.closed_cursors == source.open_cursors


async def test_a_source_failure_mid_export_aborts_the_upload() -> None:
    source, store = InMemorySource(generated(2000), fail_after_batches=5), InMemoryStore()
    with pytest.raises(SourceUnavailable):
        await (await _start(source, store))
    assert store.uploads[0].aborted
    assert store.objects == {}


async def test_cancelling_an_export_closes_the_cursor_and_aborts_the_upload() -> None:
    source, store = InMemorySource(generated(5000), batch_delay=0.01), InMemoryStore()
    started = asyncio.Event()

    async def progress(_: Progress) -> None:
        started.set()

    task = asyncio.create_task(await _start(source, store, on_progress=progress))
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.uploads[0].aborted
    assert store.objects == {}
    assert source.open_cursors == source.closed_cursors == 2  # markets, then entries


async def test_parts_are_uploaded_while_rows_stream_not_at_the_end() -> None:
    source, store = InMemorySource(generated(3000)), InMemoryStore()
    parts_at_progress: list[int] = []

    async def progress(_: Progress) -> None:
        parts_at_progress.append(store.parts_sent)

    result = await (await _start(source, store, on_progress=progress))
    assert result.row_count == 3000
    assert parts_at_progress
    assert parts_at_progress[0] > 0
    upload = store.uploads[0]
    # every part but the last is exactly part_size: the sink buffers one part at most
    sizes = [len(upload.parts[n]) for n in sorted(upload.parts)]
    assert set(sizes[:-1]) == {OPTIONS.part_size}
    assert 0 < sizes[-1] <= OPTIONS.part_size
    assert len(sizes) > 10


async def test_progress_is_reported_every_n_rows() -> None:
    source, store = InMemorySource(generated(3500)), InMemoryStore()
    seen: list[int] = []

    async def progress(p: Progress) -> None:
        seen.append(p.row_count)

    await (await _start(source, store, on_progress=progress))
    assert seen == [1000, 2000, 3000]
