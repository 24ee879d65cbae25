"""The source's replies gathered into chunks of at least a given size for the columnar engine.

The engine's cost per chunk (polars calls, look-up round trips) is then spread over more
rows, while the server still answers in replies of the size it serves best.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator


async def reply_groups(
    replies: AsyncIterator[bytes], chunk_bytes: int
) -> AsyncGenerator[list[bytes], None]:
    """Consecutive replies, gathered until they hold `chunk_bytes` (0: each reply alone)."""
    held: list[bytes] = []
    size = 0
    async for raw in replies:
        held.append(raw)
        size += len(raw)
        if size >= chunk_bytes:
            yield held
            held, size = [], 0
    if held:
        yield held


async def coalesced(replies: AsyncIterator[bytes], chunk_bytes: int) -> AsyncGenerator[bytes, None]:
    """Each group of `reply_groups` as one reply: a reply's documents are whole BSON
    documents, so joined replies are one valid reply."""
    async for held in reply_groups(replies, chunk_bytes):
        yield b"".join(held)
