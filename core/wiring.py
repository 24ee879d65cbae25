"""The one place where real clients are built: opens Deps for the app and closes them."""

from __future__ import annotations

from contextlib import AsyncExitStack

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from core.adapters.mongo import MongoSource
from core.adapters.s3 import S3ObjectStore
from core.deps import Deps
from core.settings import Settings


async def open_deps(settings: Settings, stack: AsyncExitStack) -> Deps:
    """Open the MongoDB and S3 clients; `stack` closes them."""
    source = MongoSource.connect(
        settings.mongo_url.get_secret_value(),
        settings.mongo_database,
        driver=settings.mongo_driver,
        lookup_chunk=settings.mongo_lookup_chunk_size,
        lookup_concurrency=settings.mongo_lookup_concurrency,
        read_ahead=settings.mongo_read_ahead_batches,
    )
    stack.push_async_callback(source.close)
    session = get_session()
    client = await stack.enter_async_context(
        session.create_client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=(
                settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None
            ),
            aws_secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            config=AioConfig(
                s3={"addressing_style": settings.s3_addressing_style},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=max(10, settings.s3_max_concurrent_parts * 2),
            ),
        )
    )
    return Deps(source=source, store=S3ObjectStore(client))
