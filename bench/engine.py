"""Benchmark: every export type through the engine, from raw BSON replies to S3 parts.

The data is devstack.generate's hostile dataset (integer phones, missing and null fields,
lone values where lists belong, deleted users), encoded once as BSON and cached under
.cache/bench-data. Each type runs in its own process (so that peak RSS is its own) over a
source that replays those bytes as a server's replies: the columnar engine gets the bytes,
the row engine gets them decoded by bson as a driver would, inside the timed run. Parts go
to a store that counts their bytes (the S3 client is measured by `make bench-stack`).

Beside each type, measured in the same process on the same rows:
- `csv_writer`: a bare csv.writer writing the export's own cells (already strings);
- `decode`: decoding the source replies to dicts with bson's C extension (the least any
  dict-based engine does), and `decode_arrow`: to the columnar engine's typed columns;
- `loop lag` while the export runs: a 5 ms timer's lateness (p50, p99, max), and the latency
  of GET /heartbeat on an aiohttp server on the export's own loop, polled from a thread. The
  probes run during an export of their own, after the measured ones: their CPU (about 6% of
  a core) is not the export's.

Figures are rows per CPU-second of the whole process (every thread), and wall rows/s: the
median of `--repeat` exports (5) run after the first in their process, as a worker runs its
exports after its first, with the lowest and highest beside it; the first run's rows per
CPU-second are printed too (it also pays the process's one-time costs).
Beside them, the same figure without the CPU the replay itself spends answering (joining a
reply's documents, looking up `$in` keys in its index), which a real server spends in its
own process, and the source documents read per CPU-second (the figure that says how fast a
type runs when it writes few rows of a full scan, as reminderEmailSample does).
A join's look-ups answer with the join's projection applied (`_id` and the top-level fields it
includes, in the document's order), as a server does in its own process; the projected
documents are encoded outside the timed run, so the engine gets the bytes a server would send
and does all of its own work on them.

    make bench                                  # 50k users (about 60k entries, 110k rows)
    python -m bench.engine --users 20000 --types entries,codes
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion

from core.deps import MultipartUpload
from devstack.generate import BIG_CAMPAIGN_ID, COLLECTIONS, GENERATOR_VERSION, generated_documents
from devstack.query import matches, value_at

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PARAMS: dict[str, dict[str, Any]] = {"codeWave": {"waveId": "wave-0"}}


# -- the data ---------------------------------------------------------------------------


def dataset_dir(users: int, seed: int) -> Path:
    return ROOT / ".cache" / "bench-data" / f"bson-users-{users}-seed-{seed}-v{GENERATOR_VERSION}"


def ensure_dataset(users: int, seed: int) -> Path:
    """`<collection>.bson` files (documents back to back), written once per size."""
    directory = dataset_dir(users, seed)
    if (directory / "done").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    handles = {name: (directory / f"{name}.bson").open("wb") for name in COLLECTIONS}
    try:
        for collection, doc in generated_documents(users=users, seed=seed):
            handles[collection].write(bson.encode(doc))
    finally:
        for handle in handles.values():
            handle.close()
    (directory / "done").write_text("")
    return directory


def _split(raw: bytes) -> list[bytes]:
    docs, position = [], 0
    while position < len(raw):
        size = int.from_bytes(raw[position : position + 4], "little")
        docs.append(raw[position : position + size])
        position += size
    return docs


Projection = Mapping[str, Any] | None
# Dates as milliseconds and every other value as its own type: a document re-encoded after
# projection keeps the bytes of each value it keeps.
_EXACT: CodecOptions[dict[str, Any]] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_MS
)


def projected(raw: bytes, projection: Projection) -> bytes:
    """The document as a server returns it under an inclusion projection of top-level
    fields: `_id` and the fields named, in the document's order."""
    if not projection:
        return raw
    if any("." in name for name in projection) or not all(projection.values()):
        raise ValueError(
            f"the replay applies inclusion projections of top-level fields only: {projection}"
        )
    kept = {"_id", *projection}
    doc = bson.decode(raw, codec_options=_EXACT)
    return bson.encode({name: value for name, value in doc.items() if name in kept})


def _projection_key(projection: Projection) -> str:
    return repr(sorted(projection.items())) if projection else ""


def join_fields(spec: Any) -> list[tuple[str, str, Projection]]:
    """What the replay indexes for a spec's looked-up joins: collection, field, projection."""
    return [(j.collection, j.field, j.projection) for j in spec.joins if not j.cached]


class ReplaySource:
    """Serves the cached BSON as a server would: raw replies, or decoded by bson (a driver)."""

    def __init__(self, directory: Path) -> None:
        from exporters.bson_columns import DRIVER_CODEC_OPTIONS

        self._codec = DRIVER_CODEC_OPTIONS
        self.raw: dict[str, list[bytes]] = {
            name: _split((directory / f"{name}.bson").read_bytes()) for name in COLLECTIONS
        }
        self.docs: dict[str, list[dict[str, Any]]] = {}
        self._selected: dict[tuple[str, str], list[bytes]] = {}
        self._presorted: set[tuple[str, str]] = set()
        self._by_field: dict[tuple[str, str, str], dict[str, bytes]] = {}
        # CPU seconds this replay (standing for the server) spends answering in the timed run,
        # on the export's own thread: reported so that the engine's share can be told apart.
        self.server_seconds = 0.0

    def prepare(
        self,
        collection: str,
        query: Mapping[str, Any],
        join_fields: Sequence[tuple[str, str, Projection]],
    ) -> None:
        """Select and index outside the timed run what a server's indexes would answer; a
        join's documents are indexed as its projection leaves them."""
        docs = self._decoded(collection)
        self._selected[(collection, repr(sorted(query.items())))] = [
            raw for raw, doc in zip(self.raw[collection], docs, strict=True) if matches(doc, query)
        ]
        for join_collection, field, projection in join_fields:
            index: dict[str, list[bytes]] = {}
            for raw, doc in zip(
                self.raw[join_collection], self._decoded(join_collection), strict=True
            ):
                key = value_at(doc, field)
                if isinstance(key, str):
                    index.setdefault(key, []).append(projected(raw, projection))
            # Each key's documents as one run of bytes: a look-up is then a join in C.
            joined = {key: b"".join(docs) for key, docs in index.items()}
            self._by_field[(join_collection, field, _projection_key(projection))] = joined

    def _decoded(self, collection: str) -> list[dict[str, Any]]:
        if collection not in self.docs:
            self.docs[collection] = [
                bson.decode(raw, codec_options=self._codec) for raw in self.raw[collection]
            ]
        return self.docs[collection]

    def selected_docs(self, collection: str, query: Mapping[str, Any]) -> list[bytes]:
        return self._selected[(collection, repr(sorted(query.items())))]

    async def find_raw(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        docs = self.sorted_docs(collection, query, sort)
        for start in range(0, len(docs), batch_size):
            cpu = time.thread_time()
            reply = b"".join(docs[start : start + batch_size])
            self.server_seconds += time.thread_time() - cpu
            yield reply
            await asyncio.sleep(0)

    def sorted_docs(
        self, collection: str, query: Mapping[str, Any], sort: Sequence[tuple[str, int]] | None
    ) -> list[bytes]:
        docs = self.selected_docs(collection, query)
        key = (collection, repr(sorted(query.items())))
        if sort and key not in self._presorted:
            self._presorted.add(key)
            (name, _), *_ = sort
            keyed = [(str(value_at(bson.decode(raw), name) or ""), raw) for raw in docs]
            docs = [raw for _, raw in sorted(keyed, key=lambda pair: pair[0])]
            self._selected[key] = docs
        return docs

    async def find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        projection: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        sort: Sequence[tuple[str, int]] | None = None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        if collection in ("markets", "campaigns", "promoters"):
            yield [d for d in self._decoded(collection) if matches(d, query)]
            return
        async with aclosing(
            self.find_raw(collection, query, batch_size=batch_size, sort=sort)
        ) as replies:
            async for raw in replies:
                # In a thread, as core.adapters.mongo decodes.
                yield await asyncio.to_thread(bson.decode_all, raw, self._codec)

    def _lookup(
        self, collection: str, field: str, values: Collection[str], projection: Projection
    ) -> bytes:
        index = self._by_field.get((collection, field, _projection_key(projection)))
        if index is None:  # small collections: markets, promoters
            return b"".join(
                raw
                for raw, doc in zip(self.raw[collection], self._decoded(collection), strict=True)
                if value_at(doc, field) in values
            )
        return b"".join(filter(None, map(index.get, values)))

    async def find_in_raw(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        cpu = time.thread_time()
        reply = self._lookup(collection, field, values, projection)
        self.server_seconds += time.thread_time() - cpu
        return [reply]

    async def find_in(
        self,
        collection: str,
        field: str,
        values: Collection[str],
        *,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        cpu = time.thread_time()
        reply = self._lookup(collection, field, values, projection)
        self.server_seconds += time.thread_time() - cpu
        # The driver's work, in a thread as core.adapters.mongo decodes.
        return await asyncio.to_thread(bson.decode_all, reply, self._codec)

    async def find_by_ids(
        self, collection: str, ids: Collection[str], *, projection: Mapping[str, Any] | None = None
    ) -> dict[str, dict[str, Any]]:
        found = await self.find_in(collection, "_id", ids, projection=projection)
        return {d["_id"]: d for d in found}

    async def find_one(self, collection: str, query: Mapping[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self._decoded(collection) if matches(d, query)), None)

    async def distinct(self, collection: str, field: str, query: Mapping[str, Any]) -> list[Any]:
        return list({value_at(d, field) for d in self._decoded(collection) if matches(d, query)})

    async def count(self, collection: str, query: Mapping[str, Any]) -> int:
        return len(self.selected_docs(collection, query))

    async def ping(self) -> None:
        return None


class _Upload:
    def __init__(self, store: CountingStore, bucket: str, key: str) -> None:
        self._store = store
        self.bucket = bucket
        self.key = key

    async def upload_part(self, part_number: int, data: bytes) -> None:
        self._store.part_bytes += len(data)
        self._store.parts += 1

    async def complete(self) -> None:
        return None

    async def abort(self) -> None:
        return None


class CountingStore:
    """Multipart parts are counted and dropped; staged objects (ZIP layouts) are kept."""

    def __init__(self) -> None:
        self.part_bytes = 0
        self.parts = 0
        self.objects: dict[str, bytes] = {}

    async def start_upload(
        self, bucket: str, key: str, *, content_type: str, acl: str | None
    ) -> MultipartUpload:
        return _Upload(self, bucket, key)

    async def put_object(self, bucket: str, key: str, data: bytes, *, content_type: str) -> None:
        self.objects[key] = data

    async def iter_object(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        yield self.objects[key]

    async def presign_get(self, bucket: str, key: str, *, expires_in: int) -> str:
        return key

    async def delete_objects(self, bucket: str, keys: Collection[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)

    async def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [key for key in self.objects if key.startswith(prefix)]

    async def abort_uploads(self, bucket: str, keys: Collection[str]) -> int:
        return 0

    async def ping(self, bucket: str) -> None:
        return None


# -- one type, in a child process ------------------------------------------------------


@dataclass(frozen=True)
class _Measured:
    """One measured export: CPU seconds of the process, wall seconds, and the CPU seconds
    the replay spent answering (the stand-in server's share)."""

    cpu: float
    wall: float
    server: float


class _Lag:
    """A 5 ms timer's lateness on the loop, and /heartbeat latency polled from a thread."""

    def __init__(self) -> None:
        self.late_ms: list[float] = []
        self.heartbeat_ms: list[float] = []
        self._stop = threading.Event()

    async def tick(self) -> None:
        while True:
            due = time.perf_counter() + 0.005
            await asyncio.sleep(0.005)
            self.late_ms.append((time.perf_counter() - due) * 1000)

    def poll(self, url: str) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as reply:
                reply.read()
            self.heartbeat_ms.append((time.perf_counter() - start) * 1000)
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()

    @staticmethod
    def summary(values: list[float]) -> dict[str, float]:
        if len(values) < 2:
            return {"samples": len(values)}
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return {
            "samples": len(values),
            "p50": round(cuts[49], 2),
            "p99": round(cuts[98], 2),
            "max": round(max(values), 2),
        }


async def _heartbeat_server() -> tuple[Any, str]:
    from aiohttp import web

    async def heartbeat(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/heartbeat", heartbeat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/heartbeat"


async def _run_type(
    name: str,
    directory: Path,
    engine: str,
    batch_size: int | None = None,
    chunk_bytes: int | None = None,
    repeat: int = 5,
) -> dict[str, Any]:
    from core.interpreter import freeze_long_lived, use_switch_interval
    from core.settings import Settings
    from exporters.columnar import ColumnarPlan, plan_or_reason
    from exporters.registry import get_spec
    from exporters.runner import RunOptions, load_context, run_export

    # As the worker runs (export_service.main).
    use_switch_interval(Settings.model_fields["thread_switch_interval_seconds"].default)
    spec = get_spec(name)
    source = ReplaySource(directory)
    ctx = await load_context(
        spec, source, export_id="bench", campaign_id=BIG_CAMPAIGN_ID, params=PARAMS.get(name, {})
    )
    query = spec.source.query(ctx)
    source.prepare(spec.source.collection, query, join_fields(spec))
    # A sorted source is sorted by the server's index: outside the timed run too.
    source.sorted_docs(spec.source.collection, query, spec.source.sort or None)
    # The replayed dataset stands in for the server: as the worker does after start-up, keep
    # what lives for the whole run out of the collector's full collections (each took about
    # 250 ms over the decoded dataset, with the loop stopped).
    freeze_long_lived()
    plan = plan_or_reason(spec)
    uses_columnar = engine == "columnar" and isinstance(plan, ColumnarPlan)
    defaults = Settings.model_fields
    row_batch = batch_size or defaults["mongo_batch_size"].default
    columnar_batch = batch_size or defaults["export_columnar_batch_size"].default
    batch_size = columnar_batch if uses_columnar else row_batch
    chunk = defaults["export_columnar_chunk_bytes"].default if chunk_bytes is None else chunk_bytes
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"},
        batch_size=row_batch,
        columnar_batch_size=columnar_batch,
        columnar_chunk_bytes=chunk,
        columnar_in_flight=defaults["export_columnar_chunks_in_flight"].default,
        engine=engine,  # type: ignore[arg-type]
    )
    # A worker runs its exports one after another; the first of a process also pays one-time
    # costs (memory touched for the first time, polars' and the thread pool's first calls,
    # 15-35% of a type's CPU). That first export is measured apart, then `repeat` more, whose
    # median is the figure: a short export (codeWave's 5k rows last 40 ms) moves by 20-30%
    # from one run to the next on this machine, and the median of several says what one
    # does. The loop's probes (a timer, /heartbeat polled over HTTP) cost CPU in this process
    # too (about 6% of a core, more while the export runs): they run during one more export,
    # measured apart, so that the figures are the export's own.
    first_cpu = time.process_time()
    first = await run_export(spec, ctx, source=source, store=CountingStore(), options=options)
    first_cpu = time.process_time() - first_cpu
    runs: list[_Measured] = []
    for _ in range(max(1, repeat)):
        store = CountingStore()
        source.server_seconds = 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        result = await run_export(spec, ctx, source=source, store=store, options=options)
        runs.append(
            _Measured(time.process_time() - cpu, time.perf_counter() - wall, source.server_seconds)
        )
    lag = _Lag()
    server, url = await _heartbeat_server()
    ticker = asyncio.create_task(lag.tick())
    poller = threading.Thread(target=lag.poll, args=(url,), daemon=True)
    poller.start()
    probed_cpu = time.process_time()
    probed = await run_export(spec, ctx, source=source, store=CountingStore(), options=options)
    probed_cpu = time.process_time() - probed_cpu
    lag.stop()
    ticker.cancel()
    with suppress(asyncio.CancelledError):
        await ticker
    await asyncio.to_thread(poller.join)  # its last request is served by this loop
    await server.cleanup()
    source_docs = len(source.selected_docs(spec.source.collection, query))
    # A measured run's own figures (the higher middle one when `repeat` is even).
    cpu = statistics.median_high(run.cpu for run in runs)
    wall = statistics.median_high(run.wall for run in runs)
    engine_cpu = statistics.median_high(run.cpu - run.server for run in runs)
    rates = sorted(round(result.row_count / run.cpu) for run in runs if run.cpu)
    out: dict[str, Any] = {
        "type": name,
        "engine": "columnar" if uses_columnar else "rows",
        "batch_size": batch_size,
        "chunk_bytes": chunk if uses_columnar else None,
        "why_rows": None
        if uses_columnar
        else (plan if isinstance(plan, str) else "EXPORT_ENGINE=rows"),
        "rows": result.row_count,
        "source_docs": source_docs,
        "bytes": store.part_bytes + sum(len(v) for v in store.objects.values()),
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "rows_per_cpu_second": round(result.row_count / cpu) if cpu else None,
        "repeat": len(runs),
        "rows_per_cpu_second_range": [rates[0], rates[-1]] if rates else None,
        "probed_rows_per_cpu_second": round(probed.row_count / probed_cpu) if probed_cpu else None,
        "first_export_rows_per_cpu_second": round(first.row_count / first_cpu)
        if first_cpu
        else None,
        # For a type that writes few rows of a full scan (reminderEmailSample: 70 of 10,000
        # scoring records), what it reads per CPU-second says how fast it runs.
        "source_docs_per_cpu_second": round(source_docs / cpu) if cpu else None,
        "replay_cpu_seconds": round(statistics.median_high(run.server for run in runs), 3),
        "rows_per_cpu_second_without_replay": round(result.row_count / engine_cpu)
        if engine_cpu > 0
        else None,
        "rows_per_second": round(result.row_count / wall) if wall else None,
        "loop_lag_ms": _Lag.summary(lag.late_ms),
        "heartbeat_ms": _Lag.summary(lag.heartbeat_ms),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out |= await _baselines(
        spec, ctx, source, query, plan if uses_columnar else None, batch_size, result.row_count
    )
    return out


async def _baselines(
    spec: Any,
    ctx: Any,
    source: ReplaySource,
    query: Mapping[str, Any],
    plan: Any,
    batch_size: int,
    rows: int,
) -> dict[str, Any]:
    from exporters.bson_columns import DRIVER_CODEC_OPTIONS
    from exporters.cells import compile_cells
    from exporters.rows import RowBuilder

    docs = source.selected_docs(spec.source.collection, query)
    replies = [b"".join(docs[i : i + batch_size]) for i in range(0, len(docs), batch_size)]
    cpu = time.process_time()
    for raw in replies:
        bson.decode_all(raw, codec_options=DRIVER_CODEC_OPTIONS)
    decode = time.process_time() - cpu
    figures: dict[str, Any] = {
        "decode_rows_per_cpu_second": round(rows / decode) if decode else None
    }
    if plan is not None:
        # A fold's source is decoded into the fields the fold reads, not its rows' fields.
        schema = plan.source if plan.fold is None else plan.fold.schema
        cpu = time.process_time()
        for raw in replies:
            schema.decode(raw)
        arrow = time.process_time() - cpu
        figures["decode_arrow_rows_per_cpu_second"] = round(rows / arrow) if arrow else None
    # The export's own cells (its first 1,000 documents joined by the row engine, untimed)
    # through a bare csv.writer, repeated to the export's row count.
    builder = RowBuilder(spec, ctx, source)
    sample_docs = bson.decode_all(b"".join(docs[:1000]), codec_options=DRIVER_CODEC_OPTIONS)
    sample = compile_cells(spec.columns)(await builder.build(sample_docs)) or [list(spec.header)]
    repeat = max(1, rows // max(1, len(sample)))
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\r\n")
    cpu = time.process_time()
    for _ in range(repeat):
        writer.writerows(sample)
        sink.seek(0)
        sink.truncate()
    csv_seconds = time.process_time() - cpu
    figures["csv_writer_rows_per_cpu_second"] = (
        round(repeat * len(sample) / csv_seconds) if csv_seconds else None
    )
    return figures


# -- the parent ------------------------------------------------------------------------


def _child(
    name: str,
    directory: Path,
    engine: str,
    batch_size: int | None,
    chunk_bytes: int | None,
    repeat: int,
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.engine",
            "--child",
            name,
            "--data",
            str(directory),
            "--engine",
            engine,
            *(["--batch-size", str(batch_size)] if batch_size else []),
            *(["--chunk-bytes", str(chunk_bytes)] if chunk_bytes is not None else []),
            "--repeat",
            str(repeat),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_COLUMNS = (
    "type",
    "engine",
    "rows",
    "rows/CPU-s (median)",
    "range",
    "first export of the process: rows/CPU-s",
    "source docs/CPU-s",
    "without the replay's look-ups",
    "csv.writer rows/CPU-s",
    "x csv.writer",
    "decode ceiling (dicts / arrow)",
    "rows/s wall",
    "loop lag p50 / p99 / max ms",
    "/heartbeat p99 / max ms",
    "peak RSS MiB",
)


def _row(r: dict[str, Any]) -> list[str]:
    csv_rate = r["csv_writer_rows_per_cpu_second"] or 1
    lag, beat = r["loop_lag_ms"], r["heartbeat_ms"]
    return [
        r["type"],
        r["engine"],
        f"{r['rows']:,}",
        f"{r['rows_per_cpu_second']:,}",
        "{:,}-{:,}".format(*r["rows_per_cpu_second_range"]),
        f"{r['first_export_rows_per_cpu_second']:,}",
        f"{r['source_docs_per_cpu_second']:,}",
        f"{r['rows_per_cpu_second_without_replay'] or 0:,}",
        f"{csv_rate:,}",
        f"{(r['rows_per_cpu_second'] or 0) / csv_rate:.2f}",
        f"{r['decode_rows_per_cpu_second']:,} / {r.get('decode_arrow_rows_per_cpu_second') or '-'}",
        f"{r['rows_per_second']:,}",
        f"{lag.get('p50', '-')} / {lag.get('p99', '-')} / {lag.get('max', '-')}",
        f"{beat.get('p99', '-')} / {beat.get('max', '-')}",
        str(r["peak_rss_mib"]),
    ]


def _table(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--types", help="comma-separated export types (default: all 17)")
    parser.add_argument("--engine", choices=["columnar", "rows"], default="columnar")
    parser.add_argument(
        "--compare-rows", action="store_true", help="also run each type on the row engine"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="documents per reply for either engine (default: MONGO_BATCH_SIZE's default for "
        "the row engine, EXPORT_COLUMNAR_BATCH_SIZE's for the columnar one)",
    )
    parser.add_argument(
        "--chunk-bytes",
        type=int,
        default=None,
        help="replies joined per columnar chunk (default: EXPORT_COLUMNAR_CHUNK_BYTES's; 0: none)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="measured exports per type after the first; the figures are their median",
    )
    parser.add_argument("--child")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(
                asyncio.run(
                    _run_type(
                        args.child,
                        Path(args.data),
                        args.engine,
                        args.batch_size,
                        args.chunk_bytes,
                        args.repeat,
                    )
                )
            )
        )
        return
    from exporters.registry import SPECS

    names = args.types.split(",") if args.types else [spec.name for spec in SPECS]
    directory = ensure_dataset(args.users, args.seed)
    results = []
    for name in names:
        results.append(
            _child(name, directory, args.engine, args.batch_size, args.chunk_bytes, args.repeat)
        )
        print(json.dumps(results[-1]), flush=True)
        if args.compare_rows and results[-1]["engine"] == "columnar":
            results.append(
                _child(name, directory, "rows", args.batch_size, args.chunk_bytes, args.repeat)
            )
            print(json.dumps(results[-1]), flush=True)
    report = {
        "machine": f"{os.cpu_count()} cpus",
        "users": args.users,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(report, indent=2))
    print(_table(results))


if __name__ == "__main__":
    main()
