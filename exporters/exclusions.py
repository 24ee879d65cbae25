"""Users to leave out of an export (scheduled SMS waves), exactly, in bounded memory.

The ids are read from the wave CSVs in S3. When there are more than `max_ids` of them, the
export runs in K = ceil(ids / max_ids) passes over the source: pass k holds only the ids
whose stable hash is k modulo K, and keeps only the source rows whose user hashes to k.
Memory is at most `max_ids` ids whatever the list size; the source is read K times.
"""

from __future__ import annotations

import codecs
import csv
import math
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from core.deps import ObjectStore
from exporters.spec import ExportContext, Row, SmsWaveExclusion


def partition_of(user_id: object, partitions: int) -> int:
    if partitions == 1:
        return 0
    return zlib.crc32(str(user_id or "").encode()) % partitions


async def wave_user_ids(store: ObjectStore, bucket: str, keys: list[str]) -> AsyncIterator[str]:
    """Every `userId` cell of the wave CSVs, streamed (UTF-8, BOM tolerated)."""
    for key in keys:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        pending = ""
        column: int | None = None
        async for chunk in store.iter_object(bucket, key):
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            for record in csv.reader(line.rstrip("\r") for line in lines):
                if column is None:
                    column = record.index("userId") if "userId" in record else 0
                elif len(record) > column and record[column]:
                    yield record[column]
        pending += decoder.decode(b"", final=True)
        for record in csv.reader([pending.rstrip("\r")] if pending.strip() else []):
            if column is not None and len(record) > column and record[column]:
                yield record[column]


@dataclass
class ExclusionPass:
    """One pass: the ids of partition `index` of `partitions`, and the row filter."""

    index: int
    partitions: int
    user_id: Callable[[Row], object]
    ids: set[str] = field(default_factory=set)

    def keep(self, row: Row) -> bool:
        return self.keeps(self.user_id(row))

    def keeps(self, user_id: object) -> bool:
        """Whether a row with this user id belongs to this pass and is not excluded."""
        if partition_of(user_id, self.partitions) != self.index:
            return False
        # Wave files hold text: a user id of another type (hostile data) is never listed.
        return not isinstance(user_id, str) or user_id not in self.ids


class Exclusion:
    """Plans the passes for a spec's SMS-wave exclusion and loads each pass's ids."""

    def __init__(
        self, spec: SmsWaveExclusion, ctx: ExportContext, store: ObjectStore, bucket: str
    ) -> None:
        self._spec = spec
        self._ctx = ctx
        self._store = store
        self._bucket = bucket
        self._keys: list[str] = []

    async def passes(self, max_ids: int) -> list[ExclusionPass]:
        self._keys = sorted(await self._store.list_keys(self._bucket, self._spec.prefix(self._ctx)))
        total = 0
        async for _ in wave_user_ids(self._store, self._bucket, self._keys):
            total += 1
        count = max(1, math.ceil(total / max_ids))
        return [ExclusionPass(i, count, self._spec.user_id) for i in range(count)]

    async def load(self, one: ExclusionPass) -> None:
        one.ids = set()
        async for user_id in wave_user_ids(self._store, self._bucket, self._keys):
            if partition_of(user_id, one.partitions) == one.index:
                one.ids.add(user_id)
