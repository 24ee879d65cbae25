"""core.heap: what is alive at start-up or after a recovery is left out of later collections."""

from __future__ import annotations

import gc

from core.heap import freeze_long_lived


class _Node:
    def __init__(self) -> None:
        self.itself = self  # a cycle: only the cyclic collector could ever free it


def _in_a_generation(obj: object) -> bool:
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


def test_objects_alive_when_frozen_are_not_visited_by_later_collections() -> None:
    long_lived = _Node()
    assert _in_a_generation(long_lived)
    freeze_long_lived()
    try:
        born_later = _Node()
        assert gc.get_freeze_count() > 0
        assert not _in_a_generation(long_lived)
        assert _in_a_generation(born_later)
    finally:
        gc.unfreeze()
