"""core.interpreter: the GIL's switch interval, and what later collections leave out."""

from __future__ import annotations

import gc
import sys

from core.interpreter import freeze_long_lived, use_switch_interval
from core.settings import Settings


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


def test_the_worker_switches_threads_at_the_configured_interval() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default
    try:
        use_switch_interval(Settings().thread_switch_interval_seconds)
        assert sys.getswitchinterval() == 0.0005
    finally:
        sys.setswitchinterval(before)
