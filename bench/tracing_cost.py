"""Benchmark: what tracing costs an export, off (the default) and on.

The entries export of bench.engine's generated dataset runs through the engine, as the
runner runs it (an `export.run` span around it, a span event per progress report, a span per
S3 part), in three modes, interleaved in one process so that the machine's noise hits each
alike:

- `baseline`: core.tracing's spans replaced by no-ops, as if the service had no tracing code;
- `off`: what runs with no OTEL_* variable set (OpenTelemetry's no-op provider);
- `on`: the SDK's provider with a batch processor and an exporter that drops what it gets
  (the cost of recording and batching, without a collector's network time).

Figures are CPU-seconds per run (median and least of the repetitions) and the ratio to the
baseline. Since a 2-core machine's noise is larger than what `off` adds, the bench also
counts it: the spans and events one export makes, times what one no-op span with an event
costs, as a fraction of the export's CPU time.

    make bench-tracing
    python -m bench.tracing_cost --users 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.engine import RESULTS, CountingStore, ReplaySource, ensure_dataset, join_fields
from core import tracing
from devstack.generate import BIG_CAMPAIGN_ID

MODES = ("baseline", "off", "on")


class DroppingExporter(SpanExporter):
    """Counts the spans (and their events) the batch processor hands over, keeps none."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += sum(1 + len(span.events) for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


@contextlib.contextmanager
def _no_spans(*_: Any, **__: Any) -> Iterator[trace.Span]:
    yield trace.INVALID_SPAN


@contextlib.contextmanager
def _mode(name: str, exporter: DroppingExporter) -> Iterator[TracerProvider | None]:
    if name == "baseline":
        original = tracing.span
        tracing.span = _no_spans
        try:
            yield None
        finally:
            tracing.span = original
    elif name == "on":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracing.use_provider(provider)
        try:
            yield provider
        finally:
            tracing.use_provider(None)
            provider.force_flush()
            provider.shutdown()
    else:
        yield None


async def run_once(directory: Path, mode: str, exporter: DroppingExporter) -> dict[str, Any]:
    """One entries export in `mode`: its rows and CPU-seconds."""
    from exporters.registry import get_spec
    from exporters.runner import Progress, RunOptions, load_context, run_export

    spec = get_spec("entries")
    source = ReplaySource(directory)
    ctx = await load_context(
        spec, source, export_id="bench", campaign_id=BIG_CAMPAIGN_ID, params={}
    )
    source.prepare(
        spec.source.collection,
        spec.source.query(ctx),
        join_fields(spec),
    )
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"},
        progress_interval_rows=10_000,
    )

    async def on_progress(progress: Progress) -> None:
        trace.get_current_span().add_event("progress", {"export.rows": progress.row_count})

    with _mode(mode, exporter):
        cpu = time.process_time()
        with tracing.span("export.run", attributes={"export.type": spec.name}):
            result = await run_export(
                spec,
                ctx,
                source=source,
                store=CountingStore(),
                options=options,
                on_progress=on_progress,
            )
        cpu = time.process_time() - cpu
    return {"mode": mode, "rows": result.row_count, "cpu_seconds": cpu}


async def measure(directory: Path, repeat: int) -> dict[str, Any]:
    exporter = DroppingExporter()
    await run_once(directory, "off", exporter)  # warm caches and imports
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    rows: set[int] = set()
    for _ in range(repeat):
        for mode in MODES:
            run = await run_once(directory, mode, exporter)
            runs[mode].append(run["cpu_seconds"])
            rows.add(run["rows"])
    assert len(rows) == 1, f"the modes wrote different rows: {rows}"
    baseline = statistics.median(runs["baseline"])
    figures = {
        mode: {
            "cpu_seconds_median": round(statistics.median(values), 4),
            "cpu_seconds_min": round(min(values), 4),
            "cpu_seconds": [round(v, 4) for v in values],
            "x_baseline": round(statistics.median(values) / baseline, 3),
        }
        for mode, values in runs.items()
    }
    per_span_ns = _noop_span_ns()
    spans_per_export = exporter.spans / repeat
    off_cpu = statistics.median(runs["off"])
    return {
        "rows": rows.pop(),
        "repeat": repeat,
        # The machine's noise is larger than what `off` adds; this is what it adds, counted:
        # the spans and events an export makes, at what one no-op span costs here.
        "noop_span_ns": round(per_span_ns),
        "spans_and_events_per_export": spans_per_export,
        "off_overhead_fraction": round(spans_per_export * per_span_ns / 1e9 / off_cpu, 8),
        "spans_exported_when_on": exporter.spans,
        "modes": figures,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _noop_span_ns(iterations: int = 200_000) -> float:
    """CPU nanoseconds of one span plus one event with tracing off (the no-op provider)."""
    started = time.process_time_ns()
    for _ in range(iterations):
        with tracing.span("bench", attributes={"export.rows": 1}) as span:
            span.add_event("progress", {"export.rows": 1})
    return (time.process_time_ns() - started) / iterations


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| mode | CPU-s per export (median / min) | x baseline (median) | rows per CPU-s |",
        "|---|---|---|---|",
    ]
    for mode, figures in report["modes"].items():
        rate = report["rows"] / figures["cpu_seconds_median"]
        lines.append(
            f"| {mode} | {figures['cpu_seconds_median']} / {figures['cpu_seconds_min']} "
            f"| {figures['x_baseline']} | {rate:,.0f} |"
        )
    lines.append(
        f"\noff, counted: {report['spans_and_events_per_export']:g} spans and events per "
        f"export x {report['noop_span_ns']} ns = {report['off_overhead_fraction']:.2e} of its CPU"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(measure(ensure_dataset(args.users, args.seed), args.repeat))
    report["users"] = args.users
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tracing.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    print(_table(report))


if __name__ == "__main__":
    main()
