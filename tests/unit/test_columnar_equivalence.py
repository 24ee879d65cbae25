"""The columnar engine writes the row engine's bytes, on fuzzed hostile documents.

The row engine (exporters.rows + compile_cells, itself checked against reference_cells) is
the definition. Each seed generates a dataset where every field the exports read may be
missing, null, of the declared type, or of any other type BSON holds (integer phones, string
dates, lone values where lists belong, documents where values belong, NaN, -0.0, huge and
tiny floats, dates before 1970 and at the ends of Python's range), with unicode, quotes,
commas and CR/LF in the strings. Every export type runs on both engines over the same
source, in small batches so that rows cross batch boundaries, and the objects must be
byte-identical, with the same row and skipped counts.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import random
import zipfile
from typing import Any

import pytest
from bson import Int64, ObjectId

from exporters.columnar import ColumnarPlan, planned
from exporters.registry import SPECS, get_spec
from exporters.runner import RunOptions, load_context, run_export
from exporters.spec import ExportSpec
from tests.fakes import InMemorySource, InMemoryStore
from tests.promoter_shapes import OPT_INS, PROMOTER_IDS, gives_rows

UTC = dt.UTC
BUCKETS = {"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"}

STRINGS = (
    "",
    " ",
    "plain",
    'quote " and, comma',
    "line\r\nbreak",
    "lf\nonly",
    "cr\ronly",
    "Zoë 🎤 Ødegård",
    "\u2028sep",
    "\x1c\x1d",
    "  padded  ",
    "#hash",
    "=1+1",
)
OTHERS: tuple[Any, ...] = (
    0,
    -7,
    15550000000,
    Int64(2**62),
    True,
    False,
    0.1,
    -0.0,
    1e-05,
    1e-7,
    1e21,
    123456789.125,
    float("nan"),
    float("inf"),
    dt.datetime(2026, 5, 1, 17, 0, 0, 999000, tzinfo=UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=UTC),
    dt.datetime(1, 1, 1, tzinfo=UTC),
    dt.datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    "2026-01-02",
    ["a", "b"],
    ["a", 1, None],
    [],
    {"nested": "doc"},
    {},
    ObjectId("64b7f0c2a1b2c3d4e5f60718"),
)
# What promoterOptIn's rule and its pushed-down filter must agree on: lone ids, [""], ids
# among non-strings, nested lists, documents, optIns as a list of documents...
PROMOTER_SHAPES = tuple(PROMOTER_IDS.values())
OPT_IN_SHAPES = tuple(OPT_INS.values())
_MISSING = object()


class Fuzz:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def value(self, usual: Any, *, odd: float = 0.25) -> Any:
        """Mostly `usual` (a value or a zero-argument callable), sometimes anything else."""
        roll = self.rng.random()
        if roll < odd / 3:
            return _MISSING
        if roll < odd * 2 / 3:
            return None
        if roll < odd:
            return self.rng.choice(OTHERS + STRINGS)
        return usual() if callable(usual) else usual

    def text(self) -> str:
        return self.rng.choice(STRINGS[2:]) + str(self.rng.randrange(100))

    def date(self) -> dt.datetime:
        base = dt.datetime(2026, 3, 1, tzinfo=UTC)
        return base + dt.timedelta(milliseconds=self.rng.randrange(-(10**11), 10**11))

    def doc(self, _id: Any, fields: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {"_id": _id}
        for name, value in fields.items():
            if value is not _MISSING:
                doc[name] = value
        return doc


def dataset(seed: int) -> dict[str, list[dict[str, Any]]]:
    f = Fuzz(seed)
    rng = f.rng
    market_ids = [f"m{i}" for i in range(6)]
    user_ids = [f"u{i}" for i in range(60)]
    entry_ids = [f"e{i}" for i in range(150)]

    def some(ids: list[str]) -> Any:
        return lambda: rng.choice([*ids, "dangling", ""])

    markets = [
        f.doc(
            m,
            {
                "campaignId": "c1",
                "name": f.value(f.text),
                "city": f.value(f.text),
                "state": f.value("NY"),
                "eventDate": f.value(f.date),
                "promoterIds": f.value(lambda: ["p1", "p2"]),
                # The SFMC region's fallback, read from the cached markets (a few odd ones).
                "countryCode": f.value(lambda: rng.choice(["US", "gb", " IE ", "FR"]), odd=0.4),
            },
        )
        for m in market_ids[:5]  # m5 is named by entries but does not exist
    ]
    users = [
        f.doc(
            u,
            {
                "email": f.value(f.text),
                "firstName": f.value(f.text),
                "lastName": f.value(f.text),
                "phone": f.value(lambda: rng.choice(["+1555", " ", "", "  +44  "])),
                "postalCode": f.value(f.text),
                "countryCode": f.value(lambda: rng.choice(["US", "GB", "CA", "MX"])),
                "locale": f.value(lambda: rng.choice(["en_US", "fr_CA", "es_MX", ""])),
            },
        )
        for u in user_ids
    ]
    entries = []
    for e in entry_ids:
        opt_ins = f.value(
            lambda: {
                "artist": f.value(lambda: rng.random() < 0.6, odd=0.1),
                "sms": f.value(lambda: rng.random() < 0.5, odd=0.1),
                "livenation": f.value(lambda: rng.random() < 0.4, odd=0.1),
                "promoterIds": f.value(
                    lambda: (
                        copy.deepcopy(rng.choice(PROMOTER_SHAPES))
                        if rng.random() < 0.3
                        else rng.sample(["p1", "p2", "p3"], 2)
                    ),
                    odd=0.1,
                ),
            },
            odd=0.1,
        )
        if isinstance(opt_ins, dict):
            opt_ins = {k: v for k, v in opt_ins.items() if v is not _MISSING}
        if rng.random() < 0.05:  # optIns as a list of documents, a string, ...
            opt_ins = copy.deepcopy(rng.choice(OPT_IN_SHAPES))
        # Field names like nested paths ("optIns.artist", "ids[]"), as real fields.
        odd_names: dict[str, Any] = {}
        if rng.random() < 0.05:
            odd_names["optIns.artist"] = True
        if rng.random() < 0.05:
            odd_names["additionalMarketIds[]"] = "m3"
        entries.append(
            f.doc(
                e,
                {
                    "campaignId": "c1",
                    "userId": f.value(some(user_ids), odd=0.15),
                    "marketId": f.value(some(market_ids), odd=0.15),
                    "additionalMarketIds": f.value(
                        lambda: (
                            rng.sample([*market_ids, "dangling"], rng.randrange(4))
                            + ([market_ids[0]] if rng.random() < 0.2 else [])
                        )
                    ),
                    "locale": f.value(lambda: rng.choice(["en_US", "fr_CA", ""])),
                    "verified": f.value(lambda: rng.random() < 0.7),
                    "optIns": opt_ins,
                    "createdAt": f.value(f.date),
                    **odd_names,
                },
            )
        )
    scoring = [
        f.doc(
            f"s{i}",
            {
                "campaignId": "c1",
                "userId": f.value(some(user_ids), odd=0.15),
                "entryId": f.value(some(entry_ids), odd=0.15),
                "marketId": f.value(some(market_ids), odd=0.15),
                "score": f.value(lambda: rng.choice([87.5, 0.1, 1e-05, 3.0, 1e21])),
                "rank": f.value(lambda: rng.randrange(-5, 10**6)),
                "tier": f.value(lambda: rng.choice(["A", "B", ""])),
                "verified": f.value(lambda: rng.random() < 0.5),
                "selected": f.value(lambda: rng.random() < 0.5),
            },
        )
        for i in range(120)
    ]
    codes = [
        f.doc(
            f"k{i}",
            {
                "campaignId": "c1",
                "marketId": f.value(some(market_ids), odd=0.15),
                "code": f.value(f.text),
                "type": f.value("presale"),
                "status": f.value(lambda: rng.choice(["AVAILABLE", "ASSIGNED"])),
                "assignedUserId": f.value(some(user_ids)),
                "assignedEntryId": f.value(some(entry_ids)),
                "waveId": f.value(lambda: rng.choice(["w1", "w2"]), odd=0.1),
                "assignedAt": f.value(f.date),
            },
        )
        for i in range(120)
    ]
    return {
        "campaigns": [{"_id": "c1", "name": 'Fuzz, "Tour" 🎸\r\n', "artist": "A"}],
        "markets": markets,
        "users": users,
        "entries": entries,
        "scoring": scoring,
        "codes": codes,
        "promoters": [{"_id": "p1", "name": "Promo, One"}, {"_id": "p2", "name": f.text()}],
    }


PARAMS: dict[str, dict[str, Any]] = {
    "codeWave": {"waveId": "w1"},
    "reminderEmailSample": {"sampleSize": 3},
}


async def _run(
    spec: ExportSpec,
    data: dict[str, Any],
    engine: str,
    chunk_bytes: int = 0,
    exclusion_max_ids: int = 1_000_000,
    small_files: bool = False,
) -> tuple[Any, ...]:
    source, store = InMemorySource(data), InMemoryStore()
    # An SMS wave listing every third user, whom waitlist leaves out.
    listed = [str(doc["_id"]) for doc in data["users"][::3]]
    wave = ("userId\r\n" + "\r\n".join(listed) + "\r\n").encode()
    store.objects[(BUCKETS["vfScoring"], "sms-waves/c1/wave-1.csv")] = wave
    ctx = await load_context(
        spec, source, export_id="x", campaign_id="c1", params=PARAMS.get(spec.name, {})
    )
    options = RunOptions(
        bucket_names=BUCKETS,
        batch_size=17,
        columnar_batch_size=17,
        columnar_chunk_bytes=chunk_bytes,
        engine=engine,  # type: ignore[arg-type]
        exclusion_max_ids=exclusion_max_ids,
        # Split ZIP members of a few rows, cut inside batches and across them, and a staging
        # budget that stages members while the rows come.
        max_rows_per_file=4 if small_files else 500_000,
        staging_buffer_bytes=600 if small_files else 16 * 1024 * 1024,
    )
    result = await run_export(spec, ctx, source=source, store=store, options=options)
    written = {
        key: body for key, body in store.objects.items() if key[1] != "sms-waves/c1/wave-1.csv"
    }
    return result.row_count, result.skipped_count, written


COLUMNAR = [spec for spec in SPECS if isinstance(planned([spec])[spec.name], ColumnarPlan)]


def test_the_common_types_run_columnar() -> None:
    assert {spec.name for spec in COLUMNAR} >= {
        "entries",
        "verifiedEntries",
        "codes",
        "codeAssignments",
        "codeWave",
        "scoring",
        "optInScoring",
        "vfScoring",
        "artistOptIn",
        "livenationOptIn",
        "smsOptIn",
        "waitlist",
        "promoterOptIn",
        "reminderEmail",
        "reminderEmailSample",
        "autoReminderEmail",
        "fanlist",
    }


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_both_engines_write_the_same_bytes(spec: ExportSpec, seed: int) -> None:
    data = dataset(seed)
    # Odd seeds read the source in several hash partitions of the SMS-wave ids (at most 5 ids
    # per pass), and join the columnar engine's replies of 17 documents into chunks of about
    # 4 KiB (EXPORT_COLUMNAR_CHUNK_BYTES). Every third seed splits ZIP members at 4 rows.
    max_ids = 5 if seed % 2 else 1_000_000
    small = seed % 3 == 0
    rows = await _run(spec, data, "rows", exclusion_max_ids=max_ids, small_files=small)
    columnar = await _run(spec, data, "columnar", 4096 if seed % 2 else 0, max_ids, small)
    assert columnar[:2] == rows[:2]
    assert columnar[2].keys() == rows[2].keys()
    for key, body in rows[2].items():
        assert _content(columnar[2][key]) == _content(body), key


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("engine", ["rows", "columnar"])
async def test_promoter_opt_in_filtered_by_the_server_writes_what_a_whole_campaign_does(
    engine: str, seed: int
) -> None:
    """promoterOptIn's source filter only leaves out entries that give no row: the objects
    and counts are those of reading every entry of the campaign."""
    spec = get_spec("promoterOptIn")
    every_entry = dataclasses.replace(
        spec,
        source=dataclasses.replace(spec.source, query=lambda ctx: {"campaignId": ctx.campaign_id}),
    )
    data = dataset(seed)
    small = seed % 3 == 0
    filtered = await _run(spec, data, engine, 4096 if seed % 2 else 0, small_files=small)
    whole = await _run(every_entry, data, engine, 4096 if seed % 2 else 0, small_files=small)
    assert filtered[:2] == whole[:2]
    assert filtered[2].keys() == whole[2].keys()
    for key, body in whole[2].items():
        assert _content(filtered[2][key]) == _content(body), key
    # The filter reads fewer entries, and the fuzz has entries that give rows in odd shapes.
    source = InMemorySource(data)
    query = spec.source.query(await _context(spec, source))
    read = await source.count("entries", query)
    assert sum(gives_rows(e) for e in data["entries"]) <= read < len(data["entries"])
    assert any(
        gives_rows(e) and not isinstance(e["optIns"]["promoterIds"], list) for e in data["entries"]
    )


async def _context(spec: ExportSpec, source: InMemorySource) -> Any:
    return await load_context(spec, source, export_id="x", campaign_id="c1", params={})


def _content(body: bytes) -> Any:
    # A ZIP carries the time it was written: compare its members, not its bytes.
    if not body.startswith(b"PK"):
        return body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


async def test_the_fuzz_reaches_the_slow_rows_and_the_fast_ones() -> None:
    """The comparison means something only if both kinds of rows occur: check it does."""
    from exporters.registry import get_spec

    spec = get_spec("entries")
    plan = planned([spec])["entries"]
    assert isinstance(plan, ColumnarPlan)
    source = InMemorySource(dataset(0))
    suspect = total = 0
    async for raw in source.find_raw("entries", {"campaignId": "c1"}, batch_size=17):
        batch = plan.source.decode(raw)
        suspect += len(batch.suspect)
        total += len(batch)
    assert 0 < suspect < total


@pytest.mark.parametrize("seed", range(4))
async def test_a_filter_of_suspect_values_builds_no_reference_row(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smsOptIn's filter reads user.phone, which the fuzz makes an integer, a list, a NaN...:
    the columns' values of a suspect document are read from it as the driver decodes it, so
    the filter's answer is the row rules' without building the row."""
    from exporters.columnar import ColumnarBatches
    from exporters.registry import get_spec

    spec = get_spec("smsOptIn")
    data = dataset(seed)
    rows = await _run(spec, data, "rows")

    def no_row(*_: object, **__: object) -> None:
        raise AssertionError("a reference row was built")

    monkeypatch.setattr(ColumnarBatches, "_reference_row", no_row)
    assert await _run(spec, data, "columnar") == rows
    phones = [user.get("phone") for user in data["users"]]
    assert any(phone is not None and not isinstance(phone, str) for phone in phones)


def _told_apart(*values: Any) -> str:
    return repr(values)


async def test_a_rule_that_tells_every_value_apart_reads_the_row_rules_values() -> None:
    """The SFMC rules read None, "" and a value of another type alike, which would hide a
    rule's value read wrongly by the columnar engine (a flagged row's, a cached market's
    integer, a null read as ""): a rule that writes the repr of its values shows each one."""
    from dataclasses import replace

    from exporters.registry import get_spec
    from exporters.spec import Computed, col

    paths = ("user.countryCode", "market.countryCode", "entry.locale", "user.locale", "doc.tier")
    odd_markets = 0
    for name in ("reminderEmail", "autoReminderEmail"):
        spec = get_spec(name)
        spec = replace(spec, columns=(*spec.columns, col("Probe", Computed(paths, _told_apart))))
        assert isinstance(planned([spec])[name], ColumnarPlan)
        for seed in range(6):
            data = dataset(seed)
            rows = await _run(spec, data, "rows", small_files=seed % 2 == 0)
            columnar = await _run(spec, data, "columnar", small_files=seed % 2 == 0)
            assert columnar[:2] == rows[:2]
            assert {k: _content(v) for k, v in columnar[2].items()} == {
                k: _content(v) for k, v in rows[2].items()
            }, (name, seed)
            countries = [market.get("countryCode") for market in data["markets"]]
            odd_markets += any(c is not None and not isinstance(c, str) for c in countries)
    assert odd_markets
