"""The Faust app class: its settings, its metrics, and the Deps it opens and closes.

No app exists at import: the composition root (`export_service.build`) makes one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, cast

import faust

from core.deps import Deps
from core.interpreter import freeze_long_lived, low_priority_executor
from core.kafka_consumer import SteppingTransport
from core.logging import use_json_format
from core.metrics import ServiceMetrics
from core.models import ExportRecord
from core.settings import Settings
from core.topic_admin import ensure_topics

logger = logging.getLogger(__name__)

Drain = Callable[[float], Awaitable[None]]
Canceller = Callable[[str, str, str | None], Awaitable[ExportRecord]]
"""cancel(campaign_id, export_id, requested_by) -> the record once cancelled."""


class ExportWorker(faust.Worker):
    """Faust's worker with JSON log lines and no banner on stdout (every line is a log)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["quiet"] = True
        super().__init__(*args, **kwargs)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        use_json_format(logger)
        # mode leaves the root logger at DEBUG with only its handler at `level`: every
        # debug call of Faust, aiokafka, botocore and pymongo then builds a record that is
        # dropped (a fifth of the worker's time during a recovery).
        logger.setLevel(level or logging.INFO)


class ExportApp(faust.App):
    """faust.App that creates its topics first and owns the service's clients and metrics.

    `deps` given (tests): those clients are used and nothing is opened at start.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        deps: Deps | None = None,
        service_metrics: ServiceMetrics | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings
        self.service_metrics = service_metrics or ServiceMetrics()
        self._deps: Deps | None = deps
        self._deps_stack: AsyncExitStack | None = None
        self._drains: list[Drain] = []
        self._canceller: Canceller | None = None
        super().__init__(
            settings.app_id,
            broker=settings.kafka_broker_url,
            store="memory://",
            datadir=settings.data_dir,
            topic_partitions=1,
            topic_replication_factor=settings.kafka_replication_factor,
            topic_allow_declare=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.kafka_session_timeout_seconds,
            broker_heartbeat_interval=settings.kafka_heartbeat_interval_seconds,
            producer_acks=-1,
            table_cleanup_interval=timedelta(minutes=5).total_seconds(),
            web_host=settings.web_host,
            web_bind=settings.web_host,  # listen where WEB_HOST says, not on every interface
            web_port=settings.web_port,
            # What the other workers of the group forward table reads to (web/routing.py).
            canonical_url=settings.canonical_url(),
            web_in_thread=False,
            # aiohttp refuses larger bodies while reading them (413); web/middleware.py shapes it.
            web_application_options={"client_max_size": settings.max_request_body_bytes},
            # CORS off: no cross-origin browser access unless a deployment adds it in front.
            web_cors_options={},
            # Faust's own blueprints expose raw table contents and internals; the service
            # serves only its documented API.
            web_stats_enabled=False,
            web_graph_enabled=False,
            web_router_enabled=False,
            web_tables_enabled=False,
            web_metrics_enabled=False,
            stream_recovery_delay=0.0,
            # Together these make recovery fetch the changelog in large batches: 100k
            # records recover in about 15 s instead of about 70 s (bench/status_load.py).
            consumer_max_fetch_size=settings.kafka_max_fetch_bytes,
            stream_buffer_maxsize=settings.kafka_stream_buffer_size,
            # Faust's own sensor metrics (faust_*) in the registry /metrics serves.
            monitor=self.service_metrics.faust_monitor(),
            Worker=ExportWorker,
            **options,
        )

        self.service_metrics.set_timeout(settings.export_timeout_seconds)

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme in {"kafka", "aiokafka"}:
            return SteppingTransport(self.conf.broker_consumer, self)
        return super()._new_transport()

    @property
    def deps(self) -> Deps:
        """The opened clients; asked at call time by agents and views."""
        if self._deps is None:
            raise RuntimeError("the app's dependencies are not open yet")
        return self._deps

    @deps.setter
    def deps(self, deps: Deps) -> None:
        self._deps = deps

    def table_ready(self) -> bool:
        """True once the tables are recovered and no rebalance is under way.

        Faust starts the web server before recovery; views that read or write the status
        table answer 503 until this holds.
        """
        return (
            cast(Any, self.tables).recovery.completed.is_set()
            and not self.in_recovery
            and not getattr(self, "rebalancing", False)
        )

    async def on_first_start(self) -> None:
        await super().on_first_start()
        # `faust worker --web-port` rewrites canonical_url from web_host (maybe a wildcard
        # address); advertise the reachable one before the consumer joins the group.
        self.conf.canonical_url = self.settings.canonical_url(self.conf.web_port)  # type: ignore[assignment]
        # Before the consumer and producer start: topics exist with one partition.
        await ensure_topics(
            self.settings.kafka_broker_url,
            self.settings.topics(),
            replication_factor=self.settings.kafka_replication_factor,
        )

    async def on_start(self) -> None:
        await super().on_start()
        if self._deps is None:
            from core.wiring import open_deps  # real clients, only when running

            self._deps_stack = AsyncExitStack()
            self._deps = await open_deps(
                self.settings, self._deps_stack, self.service_metrics.record_retry
            )
        # The libraries and clients are loaded: what exists now lives for the process.
        freeze_long_lived()
        if self.settings.export_thread_nice:
            asyncio.get_running_loop().set_default_executor(
                low_priority_executor(self.settings.export_thread_nice)
            )

    def use_canceller(self, canceller: Canceller) -> None:
        """What cancels an export (the runner's); given by the composition root."""
        self._canceller = canceller

    async def cancel_export(
        self, campaign_id: str, export_id: str, requested_by: str | None
    ) -> ExportRecord:
        if self._canceller is None:
            raise RuntimeError("no canceller: the runner is not wired into this app")
        return await self._canceller(campaign_id, export_id, requested_by)

    def on_drain(self, drain: Drain) -> Drain:
        """Register `drain(grace_seconds)`: awaited when the app stops, before the consumer
        and producer stop, so that running work can end (and write its status) cleanly."""
        self._drains.append(drain)
        return drain

    async def on_stop(self) -> None:
        # `should_stop` is already true here: the runner takes no new export.
        for drain in self._drains:
            try:
                await drain(self.settings.shutdown_grace_seconds)
            except Exception:
                logger.exception("draining running work at shutdown failed")
        await super().on_stop()

    async def on_shutdown(self) -> None:
        if self._deps_stack is not None:
            await self._deps_stack.aclose()
            self._deps_stack = None
            self._deps = None
        await super().on_shutdown()
