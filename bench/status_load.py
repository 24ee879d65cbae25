"""Benchmark: the worker with a large status history (`make bench`, issue 11).

On the embedded stack (Kafka, FerretDB, moto) it writes N finished export records over
C campaigns straight into the status table's changelog, then starts a real worker and
measures, each beside a baseline taken in the same run:

- recovery: process start to `/ready` with N records, against the same with an empty table;
- POST (a new export or a duplicate) and GET of one of the N records, p50/p99, against
  `/heartbeat` (same server, no table) sampled the same way. POSTs are measured twice: back to
  back, so that the exports they create run beside the next ones (on the same two cores as
  the broker and the database), and one at a time with no export running (each export is
  waited for, untimed, before the next POST);
- intake: `export.requested` events recorded per second (most name unknown campaigns and
  end FAILED at once, as in the issue), against the rate the test producer wrote them;
- idle: the worker's CPU share with the queue empty, and its RSS.

    python -m bench.status_load                        # 100k records, 1,000 campaigns
    python -m bench.status_load --records 20000 --intake 1000 --samples 100   # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from core.models import ExportRecord, Status, StoredObject
from devstack.stack import LocalStack
from devstack.worker import WorkerProcess, free_port
from web.devtoken import mint_token

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DEMO_DATA = ROOT / "deploy" / "compose" / "demo-data"
DEMO_CAMPAIGN = "demo-campaign"
SECRET = "bench-status-secret-0123456789-abcdefghij"
TOPICS = ("exports", "export-events", "exports-dlq")
DEMO_TYPES = ("codes", "entries", "scoring", "artistOptIn", "codeAssignments")


@dataclass(frozen=True)
class Result:
    records: int
    campaigns: int
    recovery_seconds: float
    recovery_empty_seconds: float
    get_ms_p50: float
    get_ms_p99: float
    post_ms_p50: float
    post_ms_p99: float
    post_empty_table_ms_p50: float
    post_empty_table_ms_p99: float
    post_no_export_running_ms_p50: float
    post_no_export_running_ms_p99: float
    post_no_export_running_empty_table_ms_p50: float
    post_no_export_running_empty_table_ms_p99: float
    heartbeat_ms_p50: float
    heartbeat_ms_p99: float
    intake_events: int
    intake_per_second: float
    produced_per_second: float
    idle_cpu_percent: float
    worker_rss_mib: float


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class Worker:
    """A worker of the bench (devstack.worker) and the requests it is measured with."""

    def __init__(self, stack: LocalStack, workdir: Path, app_id: str) -> None:
        self.token = mint_token(SECRET, sub="bench", supreme=True)
        self.started = time.monotonic()
        port = free_port()
        self.handle = WorkerProcess.spawn(
            stack.env
            | {
                "APP_ID": app_id,
                "JWT_ALGORITHM": "HS256",
                "JWT_SECRET": SECRET,
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            },
            workdir / f"worker-{port}.log",
            port=port,
        )
        self.process = self.handle.process
        self.url = self.handle.base_url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else orjson.dumps(body),
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        took = (time.perf_counter() - started) * 1000
        try:
            return status, orjson.loads(raw), took
        except orjson.JSONDecodeError:
            return status, raw.decode(errors="replace"), took

    def wait_ready(self, timeout: float = 300) -> float:
        """Seconds from the process start to its first 200 on /ready."""
        self.handle.wait_ready(timeout=timeout)
        return time.monotonic() - self.started

    def log_tail(self) -> str:
        return self.handle.log_tail()

    def metric(self, name: str, **labels: str) -> float:
        text = urllib.request.urlopen(self.url + "/metrics", timeout=30).read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.handle.stop(60)


def _history(records: int, campaigns: int) -> list[tuple[bytes, bytes]]:
    """Finished, announced exports spread over the last 80 days and `campaigns` campaigns."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(records):
        created = now - dt.timedelta(days=80) + dt.timedelta(seconds=i * 69 % (80 * 86_400))
        record = ExportRecord(
            id=f"hist-{i:07d}",
            campaign_id=f"bench-c{i % campaigns:04d}",
            export_type=DEMO_TYPES[i % len(DEMO_TYPES)],
            status=Status.FINISHED if i % 10 else Status.FAILED,
            created_at=created,
            triggered_at=created,
            finished_at=created + dt.timedelta(minutes=2),
            total_count=1000,
            row_count=1000,
            bucket="exports",
            objects=(StoredObject(key=f"x/{i}.csv", size=12345, sha256="0" * 64),),
            announced=True,
        )
        out.append((record.id.encode(), orjson.dumps(record.to_store())))
    return out


def _produce(stack: LocalStack, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Write the messages; returns the producer's own rate (messages per second)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
    started = time.monotonic()
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)
    return len(messages) / (time.monotonic() - started)


def _post_requests(count: int) -> list[tuple[str, str, Any]]:
    return [
        (
            "POST",
            f"/campaigns/{DEMO_CAMPAIGN}/exports",
            {"exportType": DEMO_TYPES[i % len(DEMO_TYPES)]},
        )
        for i in range(count)
    ]


def _latencies(
    worker: Worker, requests: list[tuple[str, str, Any]], *, one_at_a_time: bool = False
) -> list[float]:
    """Each request's latency. `one_at_a_time`: the export a POST creates is waited for
    (untimed) before the next request, so that no export runs while one is measured."""
    out = []
    for method, path, body in requests:
        status, answer, took = worker.call(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        out.append(took)
        if one_at_a_time:
            _wait_until_ended(worker, f"{path}/{answer['id']}")
    return out


def _wait_until_ended(worker: Worker, export_path: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        status, record, _ = worker.call("GET", export_path)
        if status == 200 and record["status"] not in ("PENDING", "TRIGGERED"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{export_path} did not end in 2 minutes")
        time.sleep(0.02)


def run(records: int, campaigns: int, samples: int, intake: int, idle_seconds: float) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="bench-status-") as tmp,
        LocalStack(state_dir=Path(tmp) / "stack") as stack,
    ):
        workdir = Path(tmp)
        stack.create_topics(TOPICS, partitions=1)
        stack.create_buckets(stack.bucket_names)
        stack.load_dataset(DEMO_DATA)

        # Baseline: the same worker with an empty table (its own group and changelog).
        empty = Worker(stack, workdir, f"bench-empty-{uuid.uuid4().hex[:6]}")
        recovery_empty = empty.wait_ready()
        # POSTs create exports that then run beside the next POSTs: the same mix on an empty
        # table is the baseline that shows what the 100k records add.
        posts_empty = _latencies(empty, _post_requests(samples))
        posts_alone_empty = _latencies(empty, _post_requests(samples // 2), one_at_a_time=True)
        empty.stop()

        app_id = f"bench-status-{uuid.uuid4().hex[:6]}"
        changelog = f"{app_id}-export-status-changelog"
        stack.create_topics([changelog], partitions=1)
        history = _history(records, campaigns)
        print(f"writing {records} records to {changelog}", flush=True)
        _produce(stack, changelog, history)

        worker = Worker(stack, workdir, app_id)
        recovery = worker.wait_ready()
        print(f"recovered {records} records in {recovery:.1f} s", flush=True)
        pid = worker.process.pid
        try:
            heartbeat = _latencies(worker, [("GET", "/heartbeat", None)] * samples)
            picks = [history[(i * 7919) % records][0].decode() for i in range(samples)]
            gets = _latencies(
                worker,
                [
                    ("GET", f"/campaigns/bench-c{int(p[5:]) % campaigns:04d}/exports/{p}", None)
                    for p in picks
                ],
            )
            posts = _latencies(worker, _post_requests(samples))
            posts_alone = _latencies(worker, _post_requests(samples // 2), one_at_a_time=True)

            events = [
                (
                    f"intake-{i}".encode(),
                    orjson.dumps(
                        {
                            "type": "export.requested",
                            "exportId": f"intake-{uuid.uuid4().hex}",
                            "campaignId": f"unknown-{i % campaigns}",
                            "exportType": "codes",
                        }
                    ),
                )
                for i in range(intake)
            ]
            # The exports topic is one partition: once the last event is recorded, all are.
            # (Polled with a GET of one record: a /metrics scrape would load the worker.)
            last_id = orjson.loads(events[-1][1])["exportId"]
            last_path = f"/campaigns/unknown-{(intake - 1) % campaigns}/exports/{last_id}"
            started = time.monotonic()
            produced_rate = _produce(stack, "exports", events)
            while worker.call("GET", last_path)[0] != 200:
                if time.monotonic() - started > 600:
                    raise RuntimeError("intake did not record every event in 10 minutes")
                time.sleep(0.02)
            intake_rate = intake / (time.monotonic() - started)
            print(f"intake: {intake_rate:.0f} events/s", flush=True)

            # Idle: once the queue has drained and every result is announced.
            deadline = time.monotonic() + 900
            while worker.metric("export_queue_depth") > 0 or worker.metric(
                "exports_by_status", status="TRIGGERED"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the queue did not drain")
                time.sleep(0.5)
            time.sleep(3)  # let the last result events go out before sampling idle CPU
            cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
            time.sleep(idle_seconds)
            idle = (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
            rss = _rss_mib(pid)
        finally:
            worker.stop()
    return Result(
        records=records,
        campaigns=campaigns,
        recovery_seconds=round(recovery, 2),
        recovery_empty_seconds=round(recovery_empty, 2),
        get_ms_p50=_p(gets, 0.5),
        get_ms_p99=_p(gets, 0.99),
        post_ms_p50=_p(posts, 0.5),
        post_ms_p99=_p(posts, 0.99),
        post_empty_table_ms_p50=_p(posts_empty, 0.5),
        post_empty_table_ms_p99=_p(posts_empty, 0.99),
        post_no_export_running_ms_p50=_p(posts_alone, 0.5),
        post_no_export_running_ms_p99=_p(posts_alone, 0.99),
        post_no_export_running_empty_table_ms_p50=_p(posts_alone_empty, 0.5),
        post_no_export_running_empty_table_ms_p99=_p(posts_alone_empty, 0.99),
        heartbeat_ms_p50=_p(heartbeat, 0.5),
        heartbeat_ms_p99=_p(heartbeat, 0.99),
        intake_events=intake,
        intake_per_second=round(intake_rate, 1),
        produced_per_second=round(produced_rate, 1),
        idle_cpu_percent=round(idle * 100, 2),
        worker_rss_mib=round(rss, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=400, help="requests per latency figure")
    parser.add_argument("--intake", type=int, default=5000, help="export.requested events")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--results", default=None, help="file name under bench/results")
    args = parser.parse_args()
    result = run(args.records, args.campaigns, args.samples, args.intake, args.idle_seconds)
    rows = asdict(result)
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"{name:<{width}}  {value}")
    targets = {
        "POST p99 < 20 ms (exports running)": result.post_ms_p99 < 20,
        "POST p99 < 20 ms (no export running)": result.post_no_export_running_ms_p99 < 20,
        "GET p99 < 20 ms": result.get_ms_p99 < 20,
        "intake >= 500/s": result.intake_per_second >= 500,
        "idle CPU < 2%": result.idle_cpu_percent < 2,
        "recovery < 30 s": result.recovery_seconds < 30,
    }
    for name, met in targets.items():
        print(f"{'met' if met else 'NOT met'}: {name}")
    if args.results:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / args.results).write_text(
            json.dumps({"result": rows, "targets": targets}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
