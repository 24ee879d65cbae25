"""Topics are created with one partition before use; a wrongly partitioned one is refused."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from core.topic_admin import TopicLayoutError, ensure_topics
from devstack.stack import LocalStack


def partitions(stack: LocalStack, topic: str) -> int:
    metadata = AdminClient({"bootstrap.servers": stack.bootstrap_servers}).list_topics(timeout=10)
    return len(metadata.topics[topic].partitions)


async def test_missing_topics_are_created_with_one_partition(stack: LocalStack) -> None:
    names = [f"t-{uuid.uuid4().hex}" for _ in range(3)]
    await ensure_topics(f"kafka://{stack.bootstrap_servers}", names)
    assert [partitions(stack, n) for n in names] == [1, 1, 1]
    await ensure_topics(f"kafka://{stack.bootstrap_servers}", names)  # idempotent


async def test_a_topic_with_several_partitions_is_refused(stack: LocalStack) -> None:
    name = f"t-{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=4, replication_factor=1)])[name].result(30)
    with pytest.raises(TopicLayoutError, match="exactly 1 partition"):
        await ensure_topics(f"kafka://{stack.bootstrap_servers}", [name])
