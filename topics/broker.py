"""The Kafka side of the Broker port: sends on the app's declared topics, the producer's
metadata round trip, and the consumer's assignment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.app import ExportApp
from topics.definitions import Declared


class KafkaBroker:
    """Broker over one app's producer and consumer; sends only to the topics it declared."""

    def __init__(self, app: ExportApp, declared: Declared) -> None:
        self._app = app
        self._topics = {
            topic.get_topic_name(): topic
            for topic in (declared.exports, declared.export_events, declared.dlq)
        }

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        fut = await self._topics[topic].send(key=key, value=value, headers=list(headers))
        await fut

    async def ping(self) -> None:
        """A metadata round trip over the producer's connection to the cluster."""
        producer: Any = getattr(self._app.producer, "_producer", None)
        if producer is None:
            raise ConnectionError("the Kafka producer is not started")
        await producer.client.fetch_all_metadata()

    def holds_partition_of(self, topic: str) -> bool:
        assignment: Any = self._app.consumer.assignment()
        return any(tp.topic == topic for tp in assignment)
