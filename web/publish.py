"""Publishing a request event from a view: 503 at once when the broker is away.

A view records the request, then publishes it on the exports topic and waits for the
broker's acknowledgement. While the broker is away that wait would last the producer's
request timeout (minutes), so a view first checks that the broker answered within the
last second (one metadata round trip otherwise) and refuses with 503 QUEUE_UNAVAILABLE
before recording anything. A send that fails forgets the record; one not acknowledged
within PUBLISH_TIMEOUT_SECONDS keeps it (the producer may still deliver it, and the runner
works from the status table), and says so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from aiohttp import web
from opentelemetry.trace import SpanKind

from core import tracing
from core.errors import ExportServiceError
from web.context import context_of

logger = logging.getLogger(__name__)

_SEEN_FOR_SECONDS = 1.0
_PROBE_TIMEOUT_SECONDS = 1.0


class PublishFailed(ExportServiceError):
    code, http_status = "QUEUE_UNAVAILABLE", 503


async def require_broker(request: web.Request) -> None:
    """Raise PublishFailed unless the broker answered within the last second."""
    context = context_of(request)
    if time.monotonic() - context.broker_seen_at < _SEEN_FOR_SECONDS:
        return
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_SECONDS):
            await context.broker.ping()
    except Exception as exc:
        raise PublishFailed(
            "the broker is unreachable: nothing was recorded, try again shortly"
        ) from exc
    context.broker_seen_at = time.monotonic()


async def publish_request(
    request: web.Request, key: str, value: bytes, *, forget: Callable[[], None]
) -> None:
    """Send a request event and wait for the broker; `forget` drops the record on failure."""
    context = context_of(request)
    timeout = context.app.settings.publish_timeout_seconds
    topic = context.app.settings.topic_exports

    async def send() -> None:
        # The event carries the request's trace: the intake and the run continue it.
        attributes = {"messaging.message.id": key}
        with tracing.span("send exports", kind=SpanKind.PRODUCER, attributes=attributes):
            headers = tracing.kafka_headers()
            await context.broker.send(topic, key=key.encode(), value=value, headers=headers)

    sending = asyncio.ensure_future(send())
    try:
        # Shielded: a time-out stops the wait, not the send (the producer still holds the
        # event, and Faust must be able to resolve its own future).
        await asyncio.wait_for(asyncio.shield(sending), timeout)
    except TimeoutError as exc:
        sending.add_done_callback(functools.partial(_late_outcome, key))
        logger.warning("request %s: not acknowledged within %g s; kept", key, timeout)
        raise PublishFailed(
            f"the broker did not acknowledge the request within {timeout:g} s; it is kept "
            "and runs once the broker is back (sending it again returns it)",
            details={"id": key, "kept": True},
        ) from exc
    except Exception as exc:
        forget()
        logger.exception("publishing request %s failed", key)
        raise PublishFailed("the export queue is unavailable, try again") from exc


def _late_outcome(key: str, sending: asyncio.Future[None]) -> None:
    """How a send that outlived its request ended (the record was kept either way)."""
    if sending.cancelled():
        return
    if (exc := sending.exception()) is not None:
        logger.error("request %s: kept, but its event was never delivered: %s", key, exc)
    else:
        logger.info("request %s: its event reached the broker after the request ended", key)
