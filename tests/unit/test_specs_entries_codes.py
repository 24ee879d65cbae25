"""entries and codes over the hostile dataset, compared byte for byte to hand-written CSV."""

from __future__ import annotations

import csv
import io

import pytest

from core.errors import CampaignNotFound, NoMarketsFound
from exporters.registry import get_spec
from exporters.runner import RunOptions, count_source, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.hostile_data import dataset

OPTIONS = RunOptions(
    bucket_names={"exports": "b-exports", "scoring": "b-s", "vfScoring": "b-vf", "sfmc": "b-sfmc"},
    batch_size=2,  # several batches even on the small dataset
    columnar_batch_size=2,
    part_size=64,  # several parts even on the small dataset
)

CAMPAIGN = '"Summer, ""Live"" 🎤"'

ENTRIES_CSV = (
    "entryId,userId,email,firstName,lastName,phone,postalCode,countryCode,locale,marketId,"
    "marketName,marketCity,marketState,eventDate,isPrimaryMarket,verified,artistOptIn,"
    "smsOptIn,livenationOptIn,createdAt,campaignId,campaignName\r\n"
    "e1,u1,a@x.com,Zoë,O'Brien,+1 555,10001,US,en_US,m1,Zürich Hall,Zürich,,"
    f"2026-05-01T17:00:00Z,true,true,true,false,true,2026-02-01T10:00:00Z,c1,{CAMPAIGN}\r\n"
    'e1,u1,a@x.com,Zoë,O\'Brien,+1 555,10001,US,en_US,m2,"NYC, MSG",New York,NY,'
    f"2026-06-01T20:00:00Z,false,true,true,false,true,2026-02-01T10:00:00Z,c1,{CAMPAIGN}\r\n"
    'e2,u2,b@x.com,"Line\nBreak","""Quoted""",,,GB,fr_FR,m2,"NYC, MSG",New York,NY,'
    f"2026-06-01T20:00:00Z,true,false,,,,2026-02-02T00:00:00Z,c1,{CAMPAIGN}\r\n"
    f"e4,u3,c@x.com,مرحبا,🎸,,,,,gone,,,,,true,,,,,,c1,{CAMPAIGN}\r\n"
    "e4,u3,c@x.com,مرحبا,🎸,,,,,m1,Zürich Hall,Zürich,,2026-05-01T17:00:00Z,false,,,,,,"
    f"c1,{CAMPAIGN}\r\n"
)

CODES_CSV = (
    "code,type,status,marketId,marketName,assignedUserId,assignedAt,waveId\r\n"
    '"AB,C1",presale,ASSIGNED,m2,"NYC, MSG",u1,2026-03-01T12:30:15Z,w1\r\n'
    "XYZ,,AVAILABLE,nowhere,,,,\r\n"
)


async def _run(
    export_type: str, source: InMemorySource, store: InMemoryStore
) -> tuple[bytes, int, int]:
    spec = get_spec(export_type)
    ctx = await load_context(spec, source, export_id="x1", campaign_id="c1", params={})
    result = await run_export(spec, ctx, source=source, store=store, options=OPTIONS)
    (obj,) = result.objects
    body = store.objects[(result.bucket, obj.key)]
    assert obj.size == len(body)
    return body, result.row_count, result.skipped_count


async def test_entries_rows_match_the_hand_written_csv_byte_for_byte() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    body, rows, skipped = await _run("entries", source, store)
    assert body.decode("utf-8") == ENTRIES_CSV
    assert not body.startswith(b"\xef\xbb\xbf")
    assert (rows, skipped) == (5, 1)  # e3's user is gone: skipped once, not once per market


async def test_codes_rows_match_the_hand_written_csv_byte_for_byte() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    body, rows, skipped = await _run("codes", source, store)
    assert body.decode("utf-8") == CODES_CSV
    assert (rows, skipped) == (2, 0)


async def test_entries_output_parses_with_a_strict_csv_reader() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    body, _, _ = await _run("entries", source, store)
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=True)
    rows = list(reader)
    assert all(len(r) == 22 for r in rows)
    assert rows[3][3] == "Line\nBreak"
    assert rows[1][21] == 'Summer, "Live" 🎤'


async def test_object_key_and_acl_follow_the_spec() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    await _run("entries", source, store)
    ((bucket, key),) = store.objects
    assert bucket == "b-exports"
    assert key == "entries/c1/x1/Summer, Live 🎤 - entries.csv"
    assert store.acls[(bucket, key)] == "private"


async def test_acl_is_not_sent_to_buckets_with_acls_disabled() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    spec = get_spec("entries")
    ctx = await load_context(spec, source, export_id="x1", campaign_id="c1", params={})
    options = RunOptions(
        bucket_names=OPTIONS.bucket_names, acl_disabled_buckets=frozenset({"b-exports"})
    )
    await run_export(spec, ctx, source=source, store=store, options=options)
    assert list(store.acls.values()) == [None]


async def test_users_are_looked_up_once_per_batch_not_once_per_row() -> None:
    source, store = InMemorySource(dataset()), InMemoryStore()
    await _run("entries", source, store)
    user_lookups = [n for coll, n in source.lookups if coll == "users"]
    # 4 campaign entries in batches of 2: two look-ups, whatever the row count
    assert len(user_lookups) == 2


async def test_preliminary_count_counts_source_documents() -> None:
    source = InMemorySource(dataset())
    spec = get_spec("entries")
    ctx = await load_context(spec, source, export_id="x1", campaign_id="c1", params={})
    assert await count_source(spec, ctx, source) == 4


async def test_unknown_campaign_and_campaign_without_markets_are_refused() -> None:
    source = InMemorySource(dataset())
    with pytest.raises(CampaignNotFound):
        await load_context(get_spec("codes"), source, export_id="x", campaign_id="nope", params={})
    with pytest.raises(NoMarketsFound):
        await load_context(
            get_spec("entries"), source, export_id="x", campaign_id="empty", params={}
        )
    # codes do not need markets
    await load_context(get_spec("codes"), source, export_id="x", campaign_id="empty", params={})


async def test_planned_keys_are_the_keys_a_run_writes() -> None:
    from exporters.runner import planned_keys

    source, store = InMemorySource(dataset()), InMemoryStore()
    spec = get_spec("entries")
    ctx = await load_context(spec, source, export_id="x1", campaign_id="c1", params={})
    result = await run_export(spec, ctx, source=source, store=store, options=OPTIONS)
    assert planned_keys(spec, ctx) == [o.key for o in result.objects]
