"""Documents whose fields have unexpected shapes give rows, not crashes."""

from __future__ import annotations

from typing import Any

import pytest

from exporters.registry import SPECS
from exporters.runner import RunOptions, load_context, run_export
from exporters.spec import ExportSpec
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.catalogue_data import catalogue


def odd() -> dict[str, list[dict[str, Any]]]:
    data = catalogue()
    data["entries"] += [
        {
            "_id": "o1",
            "campaignId": "c1",
            "userId": "u1",
            "marketId": "m1",
            "additionalMarketIds": "m2",
            "optIns": ["artist"],
            "createdAt": "2026-01-01",
        },
        {
            "_id": "o2",
            "campaignId": "c1",
            "userId": "u2",
            "marketId": None,
            "additionalMarketIds": {"a": 1},
            "optIns": {"promoterIds": "p1", "sms": "yes"},
        },
        {"_id": "o3", "campaignId": "c1", "userId": None},
    ]
    data["scoring"] += [
        {
            "_id": "o4",
            "campaignId": "c1",
            "userId": "u3",
            "entryId": None,
            "selected": True,
            "score": "n/a",
            "rank": None,
        },
    ]
    data["users"] += [{"_id": "u9", "email": 12345, "firstName": ["list"], "countryCode": 7}]
    return data


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_every_type_survives_odd_shapes(spec: ExportSpec) -> None:
    source, store = InMemorySource(odd()), InMemoryStore()
    params = {"waveId": "w1"} if spec.name == "codeWave" else {}
    ctx = await load_context(spec, source, export_id="o", campaign_id="c1", params=params)
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"}
    )
    result = await run_export(spec, ctx, source=source, store=store, options=options)
    assert result.objects


async def test_a_lone_additional_market_id_counts_as_one_market() -> None:
    from exporters.registry import get_spec

    source, store = InMemorySource(odd()), InMemoryStore()
    spec = get_spec("entries")
    ctx = await load_context(spec, source, export_id="o", campaign_id="c1", params={})
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"}
    )
    result = await run_export(spec, ctx, source=source, store=store, options=options)
    body = store.objects[("e", result.objects[0].key)].decode()
    o1 = [line for line in body.split("\r\n") if line.startswith("o1,")]
    assert [line.split(",")[9] for line in o1] == ["m1", "m2"]
    assert all(line.split(",")[19] == "2026-01-01" for line in o1)  # a string date, verbatim
