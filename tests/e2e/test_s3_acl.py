"""The ACL header on the wire: sent as the spec says, and never to ACL-disabled buckets.

moto reads `private` and `bucket-owner-full-control` back alike, so the header the adapter
*sends* is what is checked (a botocore event hook on the real client).
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from pydantic import SecretStr

from core.metrics import ServiceMetrics
from core.settings import Settings
from core.wiring import open_deps
from devstack.stack import LocalStack
from exporters.registry import get_spec
from exporters.runner import RunOptions, load_context, run_export
from tests.fakes import InMemorySource
from tests.unit.catalogue_data import catalogue


async def _sent_acls(stack: LocalStack, export_type: str, disabled: frozenset[str]) -> list[Any]:
    env = stack.env
    settings = Settings(
        s3_endpoint_url=stack.s3_endpoint_url,
        s3_access_key_id=SecretStr(env["S3_ACCESS_KEY_ID"]),
        s3_secret_access_key=SecretStr(env["S3_SECRET_ACCESS_KEY"]),
    )
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.headers.get("x-amz-acl"))

    async with AsyncExitStack() as resources:
        deps = await open_deps(settings, resources, ServiceMetrics().record_retry)
        client = deps.store._client  # type: ignore[attr-defined]
        client.meta.events.register("before-send.s3.CreateMultipartUpload", capture)
        source = InMemorySource(catalogue())
        spec = get_spec(export_type)
        ctx = await load_context(
            spec, source, export_id=uuid.uuid4().hex, campaign_id="c1", params={}
        )
        options = RunOptions(bucket_names=settings.bucket_map(), acl_disabled_buckets=disabled)
        await run_export(spec, ctx, source=source, store=deps.store, options=options)
    return [v.decode() if isinstance(v, bytes) else v for v in sent]


async def test_scoring_exports_send_bucket_owner_full_control(stack: LocalStack) -> None:
    assert await _sent_acls(stack, "scoring", frozenset()) == ["bucket-owner-full-control"]


async def test_private_exports_send_private(stack: LocalStack) -> None:
    assert await _sent_acls(stack, "codes", frozenset()) == ["private"]


async def test_no_acl_header_goes_to_a_bucket_with_acls_disabled(stack: LocalStack) -> None:
    assert await _sent_acls(stack, "scoring", frozenset({"scoring"})) == [None]
