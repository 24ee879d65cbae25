"""Every export type over the catalogue dataset, against rows written out by hand."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from typing import Any

import pytest

from core.errors import InvalidParams, NoMarketsFound
from exporters.registry import get_spec
from exporters.runner import ExportResult, RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.catalogue_data import SMS_WAVE, catalogue

BUCKETS = {"exports": "b-exports", "scoring": "b-scoring", "vfScoring": "b-vf", "sfmc": "b-sfmc"}
FEST = 'Fest, "26"'
TODAY = dt.datetime.now(dt.UTC).strftime("%Y%m%d")


def options(**overrides: Any) -> RunOptions:
    base: dict[str, Any] = {
        "bucket_names": BUCKETS,
        "batch_size": 2,
        "part_size": 64,
        "staging_buffer_bytes": 1024,
    }
    return RunOptions(**{**base, **overrides})


async def run(
    export_type: str,
    params: dict[str, Any] | None = None,
    waves: dict[str, bytes] | None = None,
    **opts: Any,
) -> tuple[ExportResult, InMemoryStore]:
    source, store = InMemorySource(catalogue()), InMemoryStore()
    for key, body in (dict([SMS_WAVE]) if waves is None else waves).items():
        store.objects[(BUCKETS["vfScoring"], key)] = body
    spec = get_spec(export_type)
    ctx = await load_context(spec, source, export_id="x1", campaign_id="c1", params=params)
    result = await run_export(spec, ctx, source=source, store=store, options=options(**opts))
    assert not [u for u in store.uploads if not (u.completed or u.aborted)]
    return result, store


def parse(body: bytes) -> list[list[str]]:
    assert not body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def single_csv(result: ExportResult, store: InMemoryStore) -> tuple[list[str], list[list[str]]]:
    (obj,) = result.objects
    rows = parse(store.objects[(result.bucket, obj.key)])
    return rows[0], rows[1:]


def unzip(result: ExportResult, store: InMemoryStore) -> dict[str, list[list[str]]]:
    (obj,) = result.objects
    body = store.objects[(result.bucket, obj.key)]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        return {name: parse(archive.read(name)) for name in archive.namelist()}


ENTRY_HEADER = [
    "entryId",
    "userId",
    "email",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "countryCode",
    "locale",
    "marketId",
    "marketName",
    "marketCity",
    "marketState",
    "eventDate",
    "isPrimaryMarket",
    "verified",
    "artistOptIn",
    "smsOptIn",
    "livenationOptIn",
    "createdAt",
    "campaignId",
    "campaignName",
]
SCORING_HEADER = [
    "userId",
    "entryId",
    "email",
    "marketId",
    "score",
    "rank",
    "tier",
    "verified",
    "selected",
]
REMINDER_HEADER = [
    "SubscriberKey",
    "EmailAddress",
    "FirstName",
    "Locale",
    "MarketName",
    "EventDate",
    "PresaleCode",
    "CampaignName",
]
PARIS = ["m1", "Paris", "", "", "2026-07-01T19:00:00Z"]
LONDON = ["m2", "London", "", "", "2026-07-02T19:00:00Z"]


async def test_verified_entries() -> None:
    result, store = await run("verifiedEntries")
    header, rows = single_csv(result, store)
    assert header == ENTRY_HEADER
    ann = ["e1", "u1", "a@x", "Ann", "Lee", "+1", "1", "us", "en_MX"]
    flags = ["true", "true", "true", "false", "2026-01-01T00:00:00Z", "c1", FEST]
    assert sorted(rows) == sorted(
        [
            ann + PARIS + ["true"] + flags,
            ann + LONDON + ["false"] + flags,
            [
                "e3",
                "u3",
                "c@x",
                "C",
                "D",
                "  ",
                "",
                "",
                "fr_FR",
                *PARIS,
                "true",
                "true",
                "",
                "true",
                "",
                "2026-01-03T00:00:00Z",
                "c1",
                FEST,
            ],
        ]
    )
    assert result.bucket == "b-vf"
    assert result.skipped_count == 1  # e4: its user is gone
    assert store.acls[(result.bucket, result.objects[0].key)] == "private"


async def test_code_assignments() -> None:
    result, store = await run("codeAssignments")
    header, rows = single_csv(result, store)
    assert header == [
        "code",
        "marketId",
        "marketName",
        "userId",
        "email",
        "firstName",
        "lastName",
        "entryId",
        "assignedAt",
        "waveId",
    ]
    assert sorted(rows) == [
        ["C1", "m1", "Paris", "u1", "a@x", "Ann", "Lee", "e1", "2026-02-02T00:00:00Z", "w1"],
        ["C2", "m1", "Paris", "u1", "a@x", "Ann", "Lee", "e1", "2026-02-01T00:00:00Z", "w1"],
        ["C3", "m2", "London", "u2", "b@x", "Bé", 'Q"x', "e2", "2026-02-03T00:00:00Z", "w2"],
    ]
    assert result.skipped_count == 1  # C5's user is gone


async def test_code_wave() -> None:
    result, store = await run("codeWave", {"waveId": "w1"})
    header, rows = single_csv(result, store)
    assert header == [
        "code",
        "userId",
        "email",
        "phone",
        "firstName",
        "marketId",
        "marketName",
        "waveId",
    ]
    assert sorted(rows) == [
        ["C1", "u1", "a@x", "+1", "Ann", "m1", "Paris", "w1"],
        ["C2", "u1", "a@x", "+1", "Ann", "m1", "Paris", "w1"],
        ["C4", "", "", "", "", "m2", "London", "w1"],  # unassigned: empty user columns
    ]
    assert result.skipped_count == 1


@pytest.mark.parametrize("params", [{}, {"waveId": ""}, {"waveId": 3}, {"waveId": "w", "x": 1}])
async def test_code_wave_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        await run("codeWave", params)


SCORING = {
    "s1": ["u1", "e1", "a@x", "m1", "90.5", "1", "A", "true", "true"],
    "s2": ["u2", "e2", "b@x", "m2", "80.0", "2", "B", "false", "true"],
    "s3": ["u3", "e3", "c@x", "m1", "70.25", "3", "", "true", "false"],
    "s5": ["u4", "e6", "d@x", "m2", "50.0", "5", "", "false", "false"],
    "s6": ["u1", "e5", "a@x", "m2", "40.0", "6", "", "false", "true"],
}


@pytest.mark.parametrize(
    ("export_type", "expected", "bucket"),
    [
        ("scoring", ["s1", "s2", "s3", "s5", "s6"], "b-scoring"),
        ("optInScoring", ["s1", "s2", "s6"], "b-scoring"),
        ("vfScoring", ["s1", "s3"], "b-vf"),
    ],
)
async def test_scoring_types(export_type: str, expected: list[str], bucket: str) -> None:
    result, store = await run(export_type)
    header, rows = single_csv(result, store)
    assert header == SCORING_HEADER
    assert sorted(rows) == sorted(SCORING[s] for s in expected)
    assert result.bucket == bucket
    assert store.acls[(bucket, result.objects[0].key)] == "bucket-owner-full-control"


async def test_waitlist_leaves_out_users_of_scheduled_sms_waves() -> None:
    result, store = await run("waitlist")
    header, rows = single_csv(result, store)
    assert header == [
        "userId",
        "email",
        "firstName",
        "lastName",
        "phone",
        "marketId",
        "marketName",
        "score",
        "rank",
    ]
    # s3 (u3) is in wave-1.csv, s4's user is gone: only u4 is left
    assert rows == [["u4", "d@x", "D", "", "+4", "m2", "London", "50.0", "5"]]
    assert result.skipped_count == 1


async def test_waitlist_exclusion_in_several_passes_gives_the_same_rows() -> None:
    waves = {
        SMS_WAVE[0]: SMS_WAVE[1],
        "sms-waves/c1/wave-2.csv": b"userId\nu9\nu8\nu4",  # LF, no final newline
        "sms-waves/other/wave.csv": b"userId\r\nu5\r\n",  # another campaign's wave
    }
    one, store_one = await run("waitlist", waves=waves)
    # 4 ids, at most 1 in memory: 4 passes over the source, one hash partition each
    many, store_many = await run("waitlist", waves=waves, exclusion_max_ids=1)
    assert single_csv(one, store_one)[1] == single_csv(many, store_many)[1] == []
    assert many.skipped_count == one.skipped_count == 1
    without_waves, store_none = await run("waitlist", waves={})
    assert sorted(r[0] for r in single_csv(without_waves, store_none)[1]) == ["u3", "u4"]


async def test_fanlist() -> None:
    result, store = await run("fanlist")
    header, rows = single_csv(result, store)
    assert header == [
        "userId",
        "email",
        "firstName",
        "lastName",
        "phone",
        "postalCode",
        "countryCode",
        "locale",
        "marketCount",
        "firstEntryAt",
    ]
    assert sorted(rows) == [
        ["u1", "a@x", "Ann", "Lee", "+1", "1", "us", "en_US", "3", "2025-12-31T12:00:00Z"],
        ["u2", "b@x", "Bé", 'Q"x', "", "", "GB", "en_UK", "1", "2026-01-02T00:00:00Z"],
        ["u3", "c@x", "C", "D", "  ", "", "", "fr_FR", "1", "2026-01-03T00:00:00Z"],
        ["u4", "d@x", "D", "", "+4", "", "IE", "", "1", ""],
    ]
    assert result.skipped_count == 1  # the user behind e4 is gone


async def test_fanlist_groups_users_across_batch_boundaries() -> None:
    small, store_small = await run("fanlist", batch_size=1)
    big, store_big = await run("fanlist", batch_size=1000)
    assert sorted(single_csv(small, store_small)[1]) == sorted(single_csv(big, store_big)[1])


OPT_IN_HEADER = ["email", "firstName", "lastName", "postalCode", "countryCode", "locale", "optInAt"]


async def test_artist_opt_in() -> None:
    result, store = await run("artistOptIn")
    header, rows = single_csv(result, store)
    assert header == OPT_IN_HEADER
    assert rows == [["a@x", "Ann", "Lee", "1", "us", "en_MX", "2026-01-01T00:00:00Z"]]


async def test_livenation_opt_in() -> None:
    result, store = await run("livenationOptIn")
    header, rows = single_csv(result, store)
    assert header == OPT_IN_HEADER
    assert sorted(rows) == [
        ["a@x", "Ann", "Lee", "1", "us", "en_US", "2025-12-31T12:00:00Z"],
        ["b@x", "Bé", 'Q"x', "", "GB", "en_UK", "2026-01-02T00:00:00Z"],
    ]


async def test_sms_opt_in_needs_a_phone_number() -> None:
    result, store = await run("smsOptIn")
    header, rows = single_csv(result, store)
    assert header == ["phone", "firstName", "lastName", "countryCode", "marketName"]
    assert rows == [["+1", "Ann", "Lee", "us", "Paris"]]  # u2: no phone, u3: blank phone


async def test_promoter_opt_in_is_a_zip_with_a_csv_per_promoter() -> None:
    result, store = await run("promoterOptIn")
    members = unzip(result, store)
    header = [
        "email",
        "firstName",
        "lastName",
        "postalCode",
        "countryCode",
        "promoterId",
        "promoterName",
    ]
    assert members == {
        "p1.csv": [header, ["a@x", "Ann", "Lee", "1", "us", "p1", "Promo, One"]],
        "p2.csv": [header, ["a@x", "Ann", "Lee", "1", "us", "p2", "Deux"]],
        "p3.csv": [header, ["b@x", "Bé", 'Q"x', "", "GB", "p3", ""]],  # promoter gone
    }
    assert result.objects[0].key == "promoterOptIn/c1/x1/Fest, 26 - promoterOptIn.zip"
    assert store.objects.keys() == {(result.bucket, result.objects[0].key), ("b-vf", SMS_WAVE[0])}


REMINDER_NA = [
    ["u1", "a@x", "Ann", "en-us", "Paris", "2026-07-01T19:00:00Z", "C2", FEST],  # en_MX -> en-us
    ["u1", "a@x", "Ann", "en-us", "London", "2026-07-02T19:00:00Z", "", FEST],  # no code
]
REMINDER_UK = [["u2", "b@x", "Bé", "en-gb", "London", "2026-07-02T19:00:00Z", "C3", FEST]]


async def test_reminder_email_zip_is_segmented_by_region_and_locale() -> None:
    result, store = await run("reminderEmail")
    members = unzip(result, store)
    assert sorted(members) == ["NA/en-us_1.csv", "UK/en-gb_1.csv"]
    assert members["NA/en-us_1.csv"][0] == REMINDER_HEADER
    assert sorted(members["NA/en-us_1.csv"][1:]) == sorted(REMINDER_NA)
    assert members["UK/en-gb_1.csv"][1:] == REMINDER_UK
    (obj,) = result.objects
    assert obj.key == "reminderEmail/c1/x1/Combined - Fest, 26 ASU - Reminder Email Data.zip"


async def test_reminder_email_files_split_every_max_rows() -> None:
    result, store = await run("reminderEmail", max_rows_per_file=1)
    members = unzip(result, store)
    assert sorted(members) == ["NA/en-us_1.csv", "NA/en-us_2.csv", "UK/en-gb_1.csv"]
    na = members["NA/en-us_1.csv"][1:] + members["NA/en-us_2.csv"][1:]
    assert sorted(na) == sorted(REMINDER_NA)
    assert all(len(rows) == 2 for rows in members.values())  # header + 1 row each


async def test_reminder_email_sample_caps_rows_per_region_and_locale() -> None:
    result, store = await run("reminderEmailSample", {"sampleSize": 1})
    members = unzip(result, store)
    assert sorted(members) == ["NA/en-us_1.csv", "UK/en-gb_1.csv"]
    assert len(members["NA/en-us_1.csv"]) == 2
    assert members["NA/en-us_1.csv"][1] in REMINDER_NA
    assert result.row_count == 2


@pytest.mark.parametrize(
    "params",
    [
        {"sampleSize": 0},
        {"sampleSize": 1001},
        {"sampleSize": "5"},
        {"sampleSize": True},
        {"sampleSize": 2.5},
    ],
)
async def test_sample_size_is_bounded(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        await run("reminderEmailSample", params)


async def test_auto_reminder_email_writes_one_object_per_region_to_sfmc() -> None:
    result, store = await run("autoReminderEmail")
    assert result.bucket == "b-sfmc"
    keys = sorted(o.key for o in result.objects)
    assert keys == [f"NA/c1_{TODAY}.csv", f"UK/c1_{TODAY}.csv"]
    na = parse(store.objects[("b-sfmc", f"NA/c1_{TODAY}.csv")])
    assert na[0] == REMINDER_HEADER
    assert sorted(na[1:]) == sorted(REMINDER_NA)
    assert parse(store.objects[("b-sfmc", f"UK/c1_{TODAY}.csv")])[1:] == REMINDER_UK


@pytest.mark.parametrize(
    "export_type",
    ["entries", "verifiedEntries", "reminderEmail", "reminderEmailSample", "autoReminderEmail"],
)
async def test_market_based_types_need_markets(export_type: str) -> None:
    source = InMemorySource(catalogue())
    with pytest.raises(NoMarketsFound):
        await load_context(
            get_spec(export_type), source, export_id="x", campaign_id="bare", params={}
        )


async def test_a_whole_number_written_as_a_float_is_a_valid_sample_size() -> None:
    # JSON Schema (and so the OpenAPI document) counts 2.0 as an integer
    result, _ = await run("reminderEmailSample", {"sampleSize": 2.0})
    assert result.row_count == 3
