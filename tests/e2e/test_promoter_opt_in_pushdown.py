"""promoterOptIn's source filter over the wire: the stack's FerretDB returns every entry that
the row rule turns into a row, and the export it feeds writes what reading every entry of the
campaign writes.

Entries of every hostile shape of `optIns.promoterIds` (tests/promoter_shapes.py) are inserted
through pymongo; what must come back is computed in Python from the row rule
(`entry_promoters`) over the entries inserted, never from the filter under test.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure

from core.adapters.mongo import MongoSource
from devstack.query import matches
from devstack.stack import LocalStack
from exporters.options import RunOptions
from exporters.registry import get_spec
from exporters.runner import load_context, run_export
from exporters.spec import ExportContext, ExportSpec, NoParams
from tests.fakes import InMemorySource, InMemoryStore
from tests.promoter_shapes import NOT_STORABLE_ON_FERRETDB, gives_rows, hostile_entries

pytestmark = pytest.mark.e2e

Doc = dict[str, Any]
CAMPAIGN = "promoter-pushdown"
OTHER = "promoter-pushdown-other"
SPEC = get_spec("promoterOptIn")
# The same spec reading every entry of the campaign: what the filter must not change.
EVERY_ENTRY = dataclasses.replace(
    SPEC, source=dataclasses.replace(SPEC.source, query=lambda ctx: {"campaignId": ctx.campaign_id})
)
PREFIXES = ("kept-", "ghost-", "other-")


@dataclass
class Stored:
    database: str
    collections: dict[str, list[Doc]]  # what FerretDB accepted
    refused: set[str]

    @property
    def campaign_entries(self) -> list[Doc]:
        return [e for e in self.collections["entries"] if e["campaignId"] == CAMPAIGN]


def _collections() -> dict[str, list[Doc]]:
    return {
        "campaigns": [{"_id": CAMPAIGN, "name": "Pushdown, Tour"}, {"_id": OTHER, "name": "O"}],
        "users": [
            {"_id": "u1", "email": "a@x.com", "firstName": "Zoë", "countryCode": "CH"},
        ],
        "promoters": [{"_id": "p1", "name": "Promo, One"}, {"_id": "p2", "name": "Two"}],
        # Each shape with a user, with a user that does not exist (skipped when it has
        # rows), and in another campaign.
        "entries": hostile_entries(CAMPAIGN, "u1", "kept-")
        + hostile_entries(CAMPAIGN, "ghost", "ghost-")
        + hostile_entries(OTHER, "u1", "other-"),
    }


@pytest.fixture(scope="module")
def stored(stack: LocalStack) -> Iterator[Stored]:
    client: MongoClient[Doc] = MongoClient(stack.mongo_url)
    db: Database[Doc] = client[f"promoters-{uuid.uuid4().hex[:8]}"]
    db.entries.create_index([("campaignId", ASCENDING)])
    accepted: dict[str, list[Doc]] = {}
    refused: set[str] = set()
    for name, docs in _collections().items():
        accepted[name] = []
        for doc in docs:
            try:
                db[name].insert_one(dict(doc))
            except OperationFailure:
                refused.add(doc["_id"])
            else:
                accepted[name].append(doc)
    yield Stored(db.name, accepted, refused)
    client.drop_database(db.name)
    client.close()


@pytest.fixture
def database(stack: LocalStack, stored: Stored) -> Iterator[Database[Doc]]:
    client: MongoClient[Doc] = MongoClient(stack.mongo_url)
    yield client[stored.database]
    client.close()


def _query() -> dict[str, Any]:
    ctx = ExportContext(export_id="x", campaign={"_id": CAMPAIGN}, markets={}, params=NoParams())
    return dict(SPEC.source.query(ctx))


def test_ferretdb_refuses_only_the_nested_arrays(stored: Stored) -> None:
    assert stored.refused == {p + n for p in PREFIXES for n in NOT_STORABLE_ON_FERRETDB}


def test_the_filter_returns_every_entry_that_gives_a_row(
    stored: Stored, database: Database[Doc]
) -> None:
    query = _query()
    found = {d["_id"] for d in database.entries.find(query)}
    in_campaign = {e["_id"] for e in stored.campaign_entries}
    with_rows = {e["_id"] for e in stored.campaign_entries if gives_rows(e)}
    assert {"kept-list", "kept-lone-string", "kept-non-strings-then-id"} <= with_rows
    assert with_rows <= found <= in_campaign
    assert {"kept-empty-list", "kept-no-opt-ins", "ghost-empty-list"}.isdisjoint(found)
    assert database.command("count", "entries", query=query)["n"] == len(found)


def test_ferretdb_answers_as_the_in_process_sources_do(
    stored: Stored, database: Database[Doc]
) -> None:
    """Where the path reaches one value (optIns a document, or not there), FerretDB selects
    what MongoDB's rules select (devstack.query, which the fake source and the bench use).
    Through an array of documents FerretDB tests each document's value apart, where MongoDB
    tests them together: `[{promoterIds: []}, {promoterIds: ["p2"]}]` passes on FerretDB only.
    Such an entry gives no row (optIns must be a document), so either answer is a superset."""
    query = _query()
    found = {d["_id"] for d in database.entries.find(query)}
    single = [e for e in stored.campaign_entries if not isinstance(e.get("optIns"), list)]
    assert {e["_id"] for e in single if matches(e, query)} == found & {e["_id"] for e in single}


def _content(objects: dict[tuple[str, str], bytes]) -> dict[tuple[str, str], Any]:
    # A ZIP carries the time it was written: compare its members, not its bytes.
    contents: dict[tuple[str, str], Any] = {}
    for key, body in objects.items():
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            contents[key] = [(name, archive.read(name)) for name in archive.namelist()]
    return contents


async def _export(spec: ExportSpec, source: Any, engine: str) -> tuple[int, int, Any]:
    store = InMemoryStore()
    ctx = await load_context(spec, source, export_id="x", campaign_id=CAMPAIGN, params={})
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"},
        batch_size=4,
        columnar_batch_size=4,
        engine=engine,  # type: ignore[arg-type]
    )
    result = await run_export(spec, ctx, source=source, store=store, options=options)
    return result.row_count, result.skipped_count, _content(store.objects)


@pytest.mark.parametrize("engine", ["columnar", "rows"])
async def test_the_export_over_the_wire_writes_what_every_entry_gives(
    stack: LocalStack, stored: Stored, engine: str
) -> None:
    source = MongoSource.connect(stack.mongo_url, stored.database)
    try:
        filtered = await _export(SPEC, source, engine)
    finally:
        await source.close()
    # The reference: every entry inserted, read in process by the row engine.
    whole = await _export(EVERY_ENTRY, InMemorySource(stored.collections), "rows")
    assert filtered == whole
    rows, skipped, _ = whole
    assert rows > 0
    assert skipped > 0
