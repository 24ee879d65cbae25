"""Table writes that a changelog replay may not contain yet.

A table's writes reach its changelog asynchronously. When a rebalance keeps the table's
partition here, Faust replays the changelog from where it last read up to the highwater
it reads then, over the data it holds. A write still on its way at that moment, or landed
past that highwater, is not in the replay: the replay leaves the key at an older value
(a running export back to PENDING, an ended one back to TRIGGERED, a new one gone).

`UnreplayedWrites` remembers this process's latest write per key until a replay can no
longer miss it, so that the table can put those writes back after a recovery.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class _Write(Generic[V]):
    value: V | None  # None: the key was deleted
    sequence: int
    offset: int | None = None  # its changelog offset, once the broker has it


class UnreplayedWrites(Generic[K, V]):
    """The latest write per key that a replay in progress might not contain.

    A landed write is forgotten at once outside a rebalance: any later replay reads a
    highwater past it. During a rebalance it is kept, with its offset, until the recovery
    has ended (`settled`) and the table has put back what the replay missed.
    """

    def __init__(self) -> None:
        self._writes: dict[K, _Write[V]] = {}
        self._sequence = 0
        self._landed_while_rebalancing: set[K] = set()

    def __len__(self) -> int:
        return len(self._writes)

    def sent(self, key: K, value: V | None) -> int:
        """Record a write on its way to the changelog; returns its sequence number."""
        self._sequence += 1
        self._writes[key] = _Write(value, self._sequence)
        return self._sequence

    def landed(self, key: K, sequence: int, offset: int, *, rebalancing: bool) -> None:
        """The broker has stored write `sequence` of `key` at changelog `offset`."""
        if not rebalancing:
            self._forget_landed()
        write = self._writes.get(key)
        if write is None or write.sequence != sequence:
            return  # a later write of the key is still to land
        if rebalancing:
            write.offset = offset
            self._landed_while_rebalancing.add(key)
        else:
            del self._writes[key]

    def missed_by(self, replayed_to: int) -> Iterator[tuple[K, V | None]]:
        """The writes a replay that read the changelog up to offset `replayed_to` missed:
        those not landed yet and those landed past it."""
        for key, write in self._writes.items():
            if write.offset is None or write.offset > replayed_to:
                yield key, write.value

    def settled(self) -> None:
        """A recovery has ended: the landed writes are in any replay to come."""
        self._forget_landed()

    def _forget_landed(self) -> None:
        for key in self._landed_while_rebalancing:
            write = self._writes.get(key)
            if write is not None and write.offset is not None:
                del self._writes[key]
        self._landed_while_rebalancing.clear()
