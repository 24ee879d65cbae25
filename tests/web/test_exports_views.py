"""REST views: status codes, the error shape, listing and download URLs."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest

from core.app import ExportApp
from core.deps import Deps
from core.models import ExportRecord, Status, StoredObject, new_export_id
from tests.fakes import FakeBroker, seed
from topics.status import StatusStore


def assert_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The spec's error shape with this code; the error object."""
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return dict(body["error"])


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/campaigns/c1/exports", b"{not json", 400, "INVALID_REQUEST"),
        ("/campaigns/c1/exports", b"[1, 2]", 400, "INVALID_REQUEST"),
        ("/campaigns/c1/exports", b'{"exportType": 3}', 400, "INVALID_REQUEST"),
        ("/campaigns/c1/exports", b'{"exportType": "entries", "extra": 1}', 400, "INVALID_REQUEST"),
        ("/campaigns/c1/exports", b'{"exportType": "nope"}', 400, "UNKNOWN_EXPORT_TYPE"),
        (
            "/campaigns/c1/exports",
            b'{"exportType": "entries", "params": {"x": 1}}',
            400,
            "INVALID_PARAMS",
        ),
        ("/campaigns/missing/exports", b'{"exportType": "entries"}', 404, "CAMPAIGN_NOT_FOUND"),
        ("/campaigns/empty/exports", b'{"exportType": "entries"}', 422, "NO_MARKETS_FOUND"),
        ("/campaigns/bad%20id/exports", b'{"exportType": "entries"}', 400, "INVALID_REQUEST"),
    ],
)
async def test_bad_requests_get_the_error_shape(
    client: Any, path: str, body: bytes, status: int, code: str
) -> None:
    response = await client.post(path, data=body)
    assert response.status == status
    assert_error(await response.json(), code)


async def test_a_request_the_queue_cannot_take_is_refused_and_not_recorded(
    client: Any, status_store: StatusStore, broker: FakeBroker
) -> None:
    # The broker answers probes but refuses the send: the request must not linger as PENDING.
    broker.send_error = ConnectionError("the producer is not started")
    before = len(status_store.for_campaign("c1"))
    response = await client.post("/campaigns/c1/exports", json={"exportType": "entries"})
    assert response.status == 503
    assert_error(await response.json(), "QUEUE_UNAVAILABLE")
    assert len(status_store.for_campaign("c1")) == before


async def test_unknown_export_is_404(client: Any) -> None:
    response = await client.get(f"/campaigns/c1/exports/{new_export_id()}")
    assert response.status == 404
    assert_error(await response.json(), "EXPORT_NOT_FOUND")


async def test_an_export_of_another_campaign_is_not_found(
    client: Any, status_store: StatusStore
) -> None:
    record = ExportRecord(id=new_export_id(), campaign_id="c2", export_type="codes")
    seed(status_store, record)
    response = await client.get(f"/campaigns/c1/exports/{record.id}")
    assert response.status == 404


async def test_finished_export_has_download_urls_others_do_not(
    client: Any, status_store: StatusStore
) -> None:
    done = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="entries",
        status=Status.FINISHED,
        bucket="exports",
        objects=(StoredObject(key="entries/c1/x/a.csv", size=3, sha256="00"),),
    )
    waiting = ExportRecord(id=new_export_id(), campaign_id="c1", export_type="codes")
    seed(status_store, done)
    seed(status_store, waiting)
    body = await (await client.get(f"/campaigns/c1/exports/{done.id}")).json()
    assert body["status"] == "FINISHED"
    assert body["downloadUrls"] == [
        {"key": "entries/c1/x/a.csv", "url": "memory://exports/entries/c1/x/a.csv?expires=3600"}
    ]
    body = await (await client.get(f"/campaigns/c1/exports/{waiting.id}")).json()
    assert "downloadUrls" not in body


async def test_listing_filters_and_pages_newest_first(
    client: Any, status_store: StatusStore
) -> None:
    campaign = f"list-{new_export_id()}"
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    for i in range(5):
        seed(
            status_store,
            ExportRecord(
                id=f"{campaign}-{i}",
                campaign_id=campaign,
                export_type="entries" if i % 2 else "codes",
                status=Status.FINISHED if i < 3 else Status.PENDING,
                created_at=start + dt.timedelta(minutes=i),
            ),
        )
    page = await (await client.get(f"/campaigns/{campaign}/exports?limit=2")).json()
    assert [r["id"] for r in page["items"]] == [f"{campaign}-4", f"{campaign}-3"]
    rest = await (
        await client.get(f"/campaigns/{campaign}/exports?limit=10&cursor={page['next']}")
    ).json()
    assert [r["id"] for r in rest["items"]] == [f"{campaign}-{i}" for i in (2, 1, 0)]
    assert rest["next"] is None
    finished = await (
        await client.get(f"/campaigns/{campaign}/exports?status=FINISHED&exportType=codes")
    ).json()
    assert [r["id"] for r in finished["items"]] == [f"{campaign}-2", f"{campaign}-0"]
    bad = await client.get(f"/campaigns/{campaign}/exports?limit=0")
    assert bad.status == 400
    assert_error(await bad.json(), "INVALID_REQUEST")


async def test_heartbeat(client: Any) -> None:
    response = await client.get("/heartbeat")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_ready_reports_each_check(client: Any) -> None:
    response = await client.get("/ready")
    body = await response.json()
    assert response.status == 200, body
    assert body == {
        "status": "ready",
        "checks": {
            "statusTable": "ok",
            "exportsPartition": "ok",
            "kafka": "ok",
            "mongodb": "ok",
            "s3": "ok",
        },
    }


async def test_ready_says_why_kafka_is_not_ready(
    client: Any, monkeypatch: pytest.MonkeyPatch, app: ExportApp, broker: FakeBroker
) -> None:
    broker.ping_error = ConnectionError("no broker at kafka:9092")
    broker.holds = False
    response = await client.get("/ready")
    body = await response.json()
    assert response.status == 503
    assert body["checks"]["kafka"] == "ConnectionError: no broker at kafka:9092"
    assert body["checks"]["exportsPartition"] == (
        f"no partition of {app.settings.topic_exports} assigned (starting, rebalancing or standby)"
    )
    assert body["checks"]["mongodb"] == "ok"


async def test_table_backed_views_wait_for_recovery(client: Any, app: ExportApp) -> None:
    cast(Any, app.tables).recovery.completed.clear()
    try:
        response = await client.get("/campaigns/c1/exports")
        assert response.status == 503
        assert_error(await response.json(), "NOT_READY")
        ready = await client.get("/ready")
        assert ready.status == 503
        assert (await ready.json())["checks"]["statusTable"] != "ok"
    finally:
        cast(Any, app.tables).recovery.completed.set()


@pytest.mark.parametrize(
    "status", [s for s in Status if s != Status.FINISHED], ids=lambda s: str(s.value)
)
async def test_only_finished_exports_get_download_urls(
    client: Any, status: Status, status_store: StatusStore
) -> None:
    record = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="entries",
        status=status,
        bucket="exports",
        objects=(StoredObject(key="entries/c1/x/a.csv", size=3, sha256="00"),),
    )
    seed(status_store, record)
    body = await (await client.get(f"/campaigns/c1/exports/{record.id}")).json()
    assert body["status"] == status.value
    assert "downloadUrls" not in body


async def test_every_object_gets_a_url_with_the_configured_expiry(
    client: Any, status_store: StatusStore, app: ExportApp
) -> None:
    keys = [f"promoterOptIn/c1/x/part-{i}.csv" for i in range(3)]
    record = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="promoterOptIn",
        status=Status.FINISHED,
        bucket="exports",
        objects=tuple(StoredObject(key=k, size=1, sha256="00") for k in keys),
    )
    seed(status_store, record)
    app.settings = app.settings.model_copy(update={"presign_expiry_seconds": 600})
    body = await (await client.get(f"/campaigns/c1/exports/{record.id}")).json()
    assert body["downloadUrls"] == [
        {"key": k, "url": f"memory://exports/{k}?expires=600"} for k in keys
    ]


async def test_with_the_broker_away_a_request_is_refused_at_once_and_not_recorded(
    client: Any, monkeypatch: pytest.MonkeyPatch, status_store: StatusStore, broker: FakeBroker
) -> None:
    broker.ping_error = ConnectionError("no broker")
    before = len(status_store.for_campaign("c1"))
    for path, body in [
        ("/campaigns/c1/exports", {"exportType": "entries"}),
        ("/ccpa/users/u-away", None),
    ]:
        response = await (client.post(path, json=body) if body else client.delete(path))
        assert response.status == 503
        error = assert_error(await response.json(), "QUEUE_UNAVAILABLE")
        assert "nothing was recorded" in error["message"]
    assert len(status_store.for_campaign("c1")) == before


async def test_a_request_the_broker_does_not_acknowledge_in_time_is_kept_and_says_so(
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    status_store: StatusStore,
    app: ExportApp,
    broker: FakeBroker,
) -> None:
    broker.acknowledges = False
    app.settings = app.settings.model_copy(update={"publish_timeout_seconds": 0.05})
    params = {"waveId": f"w-{new_export_id()}"}
    response = await client.post(
        "/campaigns/c1/exports", json={"exportType": "codeWave", "params": params}
    )
    assert response.status == 503
    error = assert_error(await response.json(), "QUEUE_UNAVAILABLE")
    assert error["details"]["kept"] is True
    kept = status_store.get(error["details"]["id"])
    assert kept is not None
    assert kept.status == Status.PENDING


async def test_cancelling_answers_202_with_the_cancelled_export_then_409_once_ended(
    client: Any, status_store: StatusStore
) -> None:
    export = ExportRecord(
        id=new_export_id(),
        campaign_id="c1",
        export_type="codes",
        params={},
        created_at=dt.datetime.now(dt.UTC),
    )
    seed(status_store, export)
    path = f"/campaigns/c1/exports/{export.id}"
    response = await client.delete(path)
    assert response.status == 202  # SPEC §5
    body = await response.json()
    assert (body["id"], body["status"]) == (export.id, "CANCELLED")
    again = await client.delete(path)
    assert again.status == 409
    error = assert_error(await again.json(), "EXPORT_NOT_CANCELLABLE")
    assert error["details"]["status"] == "CANCELLED"


async def test_a_duplicate_request_is_answered_from_the_table_without_the_database(
    client: Any, deps: Deps
) -> None:
    first = await client.post("/campaigns/c1/exports", json={"exportType": "codes"})
    assert first.status == 202
    original = await first.json()

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a duplicate read the database")

    source = cast(Any, deps.source)
    source.find_one = unreachable  # on the fake this test was given, not on a module
    again = await client.post("/campaigns/c1/exports", json={"exportType": "codes"})
    assert again.status == 200
    assert (await again.json())["id"] == original["id"]
