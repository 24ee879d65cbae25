"""The one place where real clients are built: opens Deps for the app and closes them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from core.adapters.mongo import MongoSource, mongo_retrier
from core.adapters.s3 import S3ObjectStore, s3_retrier
from core.deps import Deps
from core.retry import REQUEST_RETRY, RetryPolicy
from core.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        initial_delay_seconds=settings.retry_initial_delay_seconds,
        max_delay_seconds=settings.retry_max_delay_seconds,
        budget_seconds=settings.retry_budget_seconds,
    )


async def open_deps(
    settings: Settings, stack: AsyncExitStack, record_retry: Callable[[str, str], None]
) -> Deps:
    """Open the MongoDB and S3 clients; `stack` closes them; `record_retry(dependency,
    reason)` counts their retries."""
    policy = retry_policy(settings)
    source = MongoSource.connect(
        settings.mongo_url.get_secret_value(),
        settings.mongo_database,
        driver=settings.mongo_driver,
        lookup_chunk=settings.mongo_lookup_chunk_size,
        lookup_concurrency=settings.mongo_lookup_concurrency,
        read_ahead=settings.mongo_read_ahead_batches,
        retrier=mongo_retrier(policy, record_retry),
    )
    stack.push_async_callback(source.close)
    session = get_session()
    client = await stack.enter_async_context(
        session.create_client(
            "s3",
            **settings.s3_client_options(),
            config=AioConfig(
                s3={"addressing_style": settings.s3_addressing_style},
                signature_version="s3v4",
                # Retries are ours (core.retry): one policy, counted and logged.
                retries={"total_max_attempts": 1, "mode": "standard"},
                # A frozen S3 is a fault to retry, not a minute-long hang per call.
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=max(10, settings.s3_max_concurrent_parts * 2),
            ),
        )
    )
    store = S3ObjectStore(client, s3_retrier(policy, record_retry))
    request_source = source.with_retrier(mongo_retrier(REQUEST_RETRY, record_retry))
    return Deps(source=source, store=store, request_source=request_source)
