"""CCPA deletion over fake deps: what is deleted, what is kept, and replays."""

from __future__ import annotations

from typing import Any

import orjson

from agents.ccpa import CcpaDeletion
from core.deps import Deps
from core.models import (
    CcpaRequest,
    CcpaStatus,
    ExportRecord,
    Status,
    StoredObject,
    new_export_id,
)
from tests.fakes import InMemorySource, InMemoryStore, seed
from topics.status import StatusStore


def finished(
    status_store: StatusStore, campaign: str, export_type: str, keys: list[str]
) -> ExportRecord:
    record = ExportRecord(
        id=new_export_id(),
        campaign_id=campaign,
        export_type=export_type,
        status=Status.FINISHED,
        bucket="exports",
        objects=tuple(StoredObject(key=k, size=1, sha256="00") for k in keys),
        announced=True,
    )
    seed(status_store, record)
    return record


async def test_the_users_campaigns_come_from_their_entries(deps: Deps, ccpa: CcpaDeletion) -> None:
    assert await ccpa.user_campaigns("u1") == ["c1", "c2"]
    assert await ccpa.user_campaigns("nobody") == []


async def test_non_exempt_finished_exports_lose_their_objects_and_become_deleted(
    deps: Deps, status_store: StatusStore, ccpa: CcpaDeletion
) -> None:
    store = deps.store
    assert isinstance(store, InMemoryStore)
    source = deps.source
    assert isinstance(source, InMemorySource)
    user = f"u-{new_export_id()}"
    campaign = f"c-{new_export_id()}"
    source.collections["entries"].append({"_id": user, "campaignId": campaign, "userId": user})
    entries = finished(
        status_store, campaign, "entries", [f"{campaign}/a.csv", f"{campaign}/b.csv"]
    )
    scoring = finished(status_store, campaign, "scoring", [f"{campaign}/s.csv"])
    other = finished(status_store, f"{campaign}-other", "entries", [f"{campaign}-other/x.csv"])
    pending = ExportRecord(id=new_export_id(), campaign_id=campaign, export_type="codes")
    seed(status_store, pending)
    for key in (f"{campaign}/a.csv", f"{campaign}/b.csv", f"{campaign}/s.csv"):
        store.objects[("exports", key)] = b"x"
    store.objects[("exports", f"{campaign}-other/x.csv")] = b"x"
    request = CcpaRequest(request_id=new_export_id(), user_id=user)

    summary = await ccpa.delete_user_exports(request)

    assert summary.campaign_ids == (campaign,)
    assert [(d.export_id, d.object_count) for d in summary.deleted] == [(entries.id, 2)]
    assert [e.export_id for e in summary.exempt] == [scoring.id]
    assert summary.deleted_object_count == 2
    assert ("exports", f"{campaign}/a.csv") not in store.objects
    assert ("exports", f"{campaign}/s.csv") in store.objects
    assert ("exports", f"{campaign}-other/x.csv") in store.objects
    deleted = status_store.get(entries.id)
    assert deleted is not None
    assert deleted.status == Status.DELETED
    assert deleted.deleted_by == f"ccpa:{request.request_id}"
    assert deleted.deleted_at is not None
    assert status_store.get(other.id) == other
    assert status_store.get(pending.id) == pending

    # Run again (a crash before COMPLETED was recorded): the same summary, nothing new.
    again = await ccpa.delete_user_exports(request)
    assert again == summary
    # Another request for the same user finds nothing left to delete.
    later = await ccpa.delete_user_exports(CcpaRequest(request_id=new_export_id(), user_id=user))
    assert later.deleted == ()
    assert [e.export_id for e in later.exempt] == [scoring.id]


async def test_the_intake_records_a_deletion_once(
    deps: Deps, status_store: StatusStore, intake: Any, ccpa: CcpaDeletion
) -> None:
    request_id = new_export_id()
    event = orjson.dumps(
        {"type": "ccpa.deletion_requested", "requestId": request_id, "userId": "u1"}
    )
    async with intake.test_context() as agent:
        await agent.put(event)
        first = status_store.get_ccpa(request_id)
        assert first is not None
        assert (first.status, first.source) == (CcpaStatus.PENDING, "kafka")
        seed(status_store, first.evolve(status=CcpaStatus.COMPLETED, announced=True))
        await agent.put(event)
    replayed = status_store.get_ccpa(request_id)
    assert replayed is not None
    assert replayed.status == CcpaStatus.COMPLETED
