"""core.interpreter: the GIL's switch interval, and what later collections leave out."""

from __future__ import annotations

import gc
import os
import sys
import threading

from core.interpreter import freeze_long_lived, low_priority_executor, use_switch_interval
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


def test_export_threads_run_at_a_lower_priority_than_the_loop() -> None:
    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_nice = own_nice()
    with low_priority_executor(10, max_workers=1) as executor:
        assert executor.submit(own_nice).result() == min(loop_nice + 10, 19)
    assert own_nice() == loop_nice
