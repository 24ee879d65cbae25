"""Retrying dependency calls: capped exponential backoff with full jitter, within a budget.

An adapter wraps each call in `Retrier.call`. A fault its classifier calls retryable is
tried again after a random delay in [0, min(max_delay, initial x 2^n)] until the call has
kept failing for `budget_seconds`; a permanent fault, or one that outlasts the budget, is
raised as the fault's export error (the driver's exception as its cause). Errors the
classifier does not know (None) are raised unchanged. The export's own timeout cancels a
call while it waits, like any other await.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)

from core.errors import ExportServiceError

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    """What a dependency error means: may it pass, a bounded label, the error to fail with."""

    retryable: bool
    reason: str
    error: type[ExportServiceError]


Classifier = Callable[[BaseException], Fault | None]
RetryHook = Callable[[str, str], None]
"""Called with (dependency, reason) before each retry: the metrics' counter."""


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay_seconds: float = 0.25
    max_delay_seconds: float = 8.0
    budget_seconds: float = 120.0


DEFAULT_RETRY = RetryPolicy()
# What a REST request waits for: a blip is absorbed, an outage answers 503 in seconds.
REQUEST_RETRY = RetryPolicy(initial_delay_seconds=0.1, max_delay_seconds=0.5, budget_seconds=2.0)
NO_RETRY = RetryPolicy(budget_seconds=0.0)


class Retrier:
    """Retries the calls of one dependency (`mongodb`, `s3`) under one policy."""

    def __init__(
        self,
        dependency: str,
        classify: Classifier,
        policy: RetryPolicy = DEFAULT_RETRY,
        on_retry: RetryHook | None = None,
    ) -> None:
        self.dependency = dependency
        self.policy = policy
        self._classify = classify
        self._on_retry = on_retry

    def fault(self, exc: BaseException) -> Fault | None:
        return self._classify(exc) if isinstance(exc, Exception) else None

    async def call(
        self,
        what: str,
        operation: Callable[[], Awaitable[T]],
        *,
        policy: RetryPolicy | None = None,
    ) -> T:
        """`operation()`'s result; `what` names it in logs and errors ("reading entries")."""
        used = policy or self.policy

        def retryable(exc: BaseException) -> bool:
            fault = self.fault(exc)
            return fault is not None and fault.retryable

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            fault = self.fault(exc) if exc else None
            reason = fault.reason if fault else "unknown"
            if self._on_retry is not None:
                self._on_retry(self.dependency, reason)
            delay = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "%s: %s failed (%s, try %d), retrying in %.2f s: %s",
                self.dependency,
                what,
                reason,
                state.attempt_number,
                delay,
                exc,
                extra={
                    "dependency": self.dependency,
                    "reason": reason,
                    "retry": state.attempt_number,
                },
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_before_delay(used.budget_seconds),
            wait=wait_random_exponential(
                multiplier=used.initial_delay_seconds, max=used.max_delay_seconds
            ),
            before_sleep=before_sleep,
            reraise=True,
        )
        started_tries = 0

        async def counted() -> T:
            nonlocal started_tries
            started_tries += 1
            return await operation()

        try:
            return await retrying(counted)
        except Exception as exc:
            fault = self.fault(exc)
            if fault is None or isinstance(exc, ExportServiceError):
                raise
            after = f" after {started_tries} tries" if started_tries > 1 else ""
            raise fault.error(f"{what} failed{after} ({fault.reason}): {exc}") from exc
