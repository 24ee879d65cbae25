"""Creates the service's topics with one partition before any client touches them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

logger = logging.getLogger(__name__)


class TopicLayoutError(RuntimeError):
    """A topic exists with a partition count the service cannot work with."""


_CREATED_TOPICS_WAIT_SECONDS = 10.0


def bootstrap_servers(broker_url: str) -> list[str]:
    """Faust broker URL(s) (`kafka://h1:9092;h2:9092`) as aiokafka bootstrap servers."""
    servers = []
    for part in broker_url.replace(",", ";").split(";"):
        part = part.strip()
        if part:
            servers.append(part.split("://", 1)[-1].rstrip("/"))
    return servers


def _partition_counts(described: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in described:
        if isinstance(topic, dict):
            counts[topic["topic"]] = len(topic.get("partitions", []))
        else:  # older aiokafka answers tuples: (error_code, name, is_internal, partitions)
            counts[topic[1]] = len(topic[3])
    return counts


async def ensure_topics(
    broker_url: str, names: Iterable[str], *, partitions: int = 1, replication_factor: int = 1
) -> None:
    """Create missing topics with `partitions` partitions, then check every count.

    A broker that auto-creates topics with its own default (tansu makes four) would
    otherwise split the serial queue; we refuse to start rather than run wrongly.
    """
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            logger.info("creating topics %s with %d partition(s)", missing, partitions)
            await admin.create_topics(
                [
                    NewTopic(n, num_partitions=partitions, replication_factor=replication_factor)
                    for n in missing
                ]
            )
        counts = _partition_counts(await admin.describe_topics(wanted))
        # A topic just created can be described before its partitions are: ask again for a
        # few seconds rather than refuse to start on a layout that is still being made.
        deadline = time.monotonic() + _CREATED_TOPICS_WAIT_SECONDS
        while any(counts.get(n, 0) == 0 for n in missing) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            counts = _partition_counts(await admin.describe_topics(wanted))
        wrong = {n: counts.get(n, 0) for n in wanted if counts.get(n, 0) != partitions}
        if wrong:
            raise TopicLayoutError(
                f"topics must have exactly {partitions} partition(s), found {wrong}"
            )
    finally:
        await admin.close()
