"""ObjectSink: fixed-size parts, and the object's size and sha256 whatever the write sizes."""

from __future__ import annotations

import hashlib
import random

import pytest

from exporters.sink import ObjectSink
from tests.fakes import InMemoryStore


@pytest.mark.parametrize("write_sizes", [[1, 7, 300], [700_000, 3, 2_000_000, 5], [5_000_000]])
async def test_parts_size_and_sha256_match_the_bytes_written(write_sizes: list[int]) -> None:
    rng = random.Random(len(write_sizes))
    writes = [rng.randbytes(size) for size in write_sizes]
    store = InMemoryStore()
    upload = await store.start_upload("b", "k", content_type="text/csv", acl=None)
    sink = ObjectSink(upload, part_size=1_000_000, max_in_flight=2)
    for data in writes:
        await sink.write(data)
    stored = await sink.close()
    whole = b"".join(writes)
    assert store.objects[("b", "k")] == whole
    assert (stored.key, stored.size, stored.sha256) == (
        "k",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
    )
