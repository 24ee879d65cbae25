"""ZIP layouts on generated data: staging through S3, splitting, and clean failure."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from typing import Any

import pytest

from core.errors import UploadFailed
from exporters.registry import get_spec
from exporters.runner import RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore

PROMOTERS = ["p1", "p2", "p3", "p4", "p5"]
COUNTRIES = ["US", "GB", "IE", "DE", "CA"]
LOCALES = ["en_US", "en_GB", "fr_FR", None]


def generated(n: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "campaigns": [{"_id": "c1", "name": "Gen"}],
        "markets": [{"_id": "m1", "campaignId": "c1", "name": "M1", "countryCode": "US"}],
        "promoters": [{"_id": p, "name": p.upper()} for p in PROMOTERS],
        "users": [
            {"_id": f"u{i}", "email": f"u{i}@x", "countryCode": COUNTRIES[i % 5]} for i in range(n)
        ],
        "entries": [
            {
                "_id": f"e{i}",
                "campaignId": "c1",
                "userId": f"u{i}",
                "marketId": "m1",
                "locale": LOCALES[i % 4],
                "optIns": {"promoterIds": PROMOTERS[: 1 + i % 5]},
            }
            for i in range(n)
        ],
        "scoring": [
            {
                "_id": f"s{i}",
                "campaignId": "c1",
                "userId": f"u{i}",
                "entryId": f"e{i}",
                "marketId": "m1",
                "selected": True,
            }
            for i in range(n)
        ],
    }


def opts(**kw: Any) -> RunOptions:
    base: dict[str, Any] = {
        "bucket_names": {"exports": "b", "scoring": "b", "vfScoring": "b", "sfmc": "b"},
        "batch_size": 250,
        "columnar_batch_size": 250,
        "part_size": 8192,
        "staging_buffer_bytes": 4096,
    }
    return RunOptions(**{**base, **kw})


async def run(export_type: str, n: int, store: InMemoryStore, **kw: Any) -> Any:
    source = InMemorySource(generated(n))
    spec = get_spec(export_type)
    ctx = await load_context(spec, source, export_id="z", campaign_id="c1", params={})
    return await run_export(spec, ctx, source=source, store=store, options=opts(**kw))


def members(store: InMemoryStore, key: str) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(store.objects[("b", key)])) as archive:
        assert archive.testzip() is None
        return {
            name: list(csv.reader(io.StringIO(archive.read(name).decode(), newline="")))
            for name in archive.namelist()
        }


async def test_promoter_zip_is_staged_in_s3_and_the_staging_is_removed() -> None:
    store = InMemoryStore()
    result = await run("promoterOptIn", 2000, store)
    assert store.puts > 10  # rows went through staging chunks, not one big buffer
    (obj,) = result.objects
    assert list(store.objects) == [("b", obj.key)]  # staging chunks deleted
    found = members(store, obj.key)
    # entry i opted in to the first 1 + i % 5 promoters
    expected = Counter(p for i in range(2000) for p in PROMOTERS[: 1 + i % 5])
    assert {name: len(rows) - 1 for name, rows in found.items()} == {
        f"{p}.csv": expected[p] for p in PROMOTERS
    }
    rows_p3 = found["p3.csv"][1:]
    assert {r[0] for r in rows_p3} == {f"u{i}@x" for i in range(2000) if i % 5 >= 2}
    assert result.row_count == sum(expected.values())


async def test_split_parts_are_full_except_the_last_of_each_group() -> None:
    store = InMemoryStore()
    result = await run("reminderEmail", 1000, store, max_rows_per_file=70)
    found = members(store, result.objects[0].key)
    groups: dict[str, list[int]] = {}
    for name in found:
        group, number = name.rsplit("_", 1)
        groups.setdefault(group, []).append(int(number.removesuffix(".csv")))
    for group, numbers in groups.items():
        numbers.sort()
        assert numbers == list(range(1, len(numbers) + 1))
        sizes = [len(found[f"{group}_{n}.csv"]) - 1 for n in numbers]
        assert all(size == 70 for size in sizes[:-1])
        assert 0 < sizes[-1] <= 70
    assert sum(len(rows) - 1 for rows in found.values()) == 1000
    # US/CA/DE users -> NA, GB/IE -> UK
    na = sum(len(r) - 1 for name, r in found.items() if name.startswith("NA/"))
    assert na == 600


async def test_a_failing_zip_upload_leaves_neither_archive_nor_staging() -> None:
    store = InMemoryStore(fail_on_part=2)
    with pytest.raises(UploadFailed):
        await run("promoterOptIn", 2000, store)
    assert store.objects == {}
    assert all(u.aborted for u in store.uploads)


async def test_a_failing_staging_write_aborts_cleanly() -> None:
    store = InMemoryStore(fail_on_put=True)
    with pytest.raises(UploadFailed):
        await run("promoterOptIn", 2000, store)
    assert store.objects == {}
    assert not any(u.completed for u in store.uploads)
