"""The runner's preparation: context, preliminary count, leftovers of a crashed attempt."""

from __future__ import annotations

from agents.export_runner import _prepare
from core.deps import Deps
from core.models import ExportRecord
from exporters.registry import get_spec
from exporters.runner import load_context, planned_keys
from tests.fakes import InMemorySource, InMemoryStore


async def test_a_rerun_aborts_the_upload_a_crashed_attempt_left_behind(deps: Deps) -> None:
    assert isinstance(deps.store, InMemoryStore)
    assert isinstance(deps.source, InMemorySource)
    record = ExportRecord(id="rerun-1", campaign_id="c1", export_type="entries", attempts=1)
    ctx = await load_context(
        get_spec("entries"), deps.source, export_id=record.id, campaign_id="c1", params={}
    )
    (key,) = planned_keys(get_spec("entries"), ctx)
    leftover = await deps.store.start_upload("exports", key, content_type="text/csv", acl=None)
    other = await deps.store.start_upload("exports", key + ".other", content_type="x", acl=None)

    prepared = await _prepare(record)

    assert prepared.total == 4
    assert leftover.aborted
    assert not other.aborted
