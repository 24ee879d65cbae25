"""How the interpreter runs the worker so that its event loop stays free: the GIL's switch
interval and what the cyclic garbage collector visits."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)


def use_switch_interval(seconds: float) -> None:
    """Let a thread keep the GIL at most `seconds` while another waits for it.

    The engine's CPU work runs in a worker thread; every time the loop wakes (a request's
    bytes, a broker's answer, a timer) it waits for the GIL, up to Python's default 5 ms, and
    a request wakes it several times.
    """
    sys.setswitchinterval(seconds)


def freeze_long_lived() -> None:
    """Collect once, then keep every object alive now out of later collections.

    A full collection visits every tracked object, with the GIL held: the libraries' own
    (botocore's service models, Faust's, pydantic's and polars' classes) and, once
    recovered, the status table and its indexes. In a worker holding 100,000 records each
    one took 100-270 ms (gc.callbacks, `make bench-status`), during which no request, timer
    or heartbeat ran. What is alive at start-up and after a recovery lives as long as the
    process, so later collections need not visit it. A frozen object that dies later is
    still freed by its reference count; only a cycle among frozen objects is kept.
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.info(
        "heap: %d long-lived objects kept out of garbage collection (%.0f ms)",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )


def low_priority_executor(nicer_by: int, max_workers: int | None = None) -> ThreadPoolExecutor:
    """Worker threads that the OS schedules after the event loop's thread (and after the
    broker's and database's processes on the same machine) when the CPU is short.

    `asyncio.to_thread` runs the exports' CPU work on the loop's default executor: batch work
    that should yield to requests. On Linux a thread has a nice value of its own.
    """

    nice = min(os.getpriority(os.PRIO_PROCESS, 0) + nicer_by, 19)

    def lower_priority() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:  # not allowed here: the threads keep the process's priority
            logger.warning("could not lower the priority of export threads to nice %d", nice)

    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix="export-cpu", initializer=lower_priority
    )
