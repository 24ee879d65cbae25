"""The soak: every export type requested over REST and Kafka while the worker is SIGKILLed
and each dependency restarts, then a check that nothing was lost, left behind or doubled.

`make soak` runs it (`python -m devstack.soak --seed N`); the suite runs a short version.
It starts its own stack (Kafka, FerretDB, SeaweedFS) and worker under `--workdir`, prints
what it did and found, exits 1 on any loss, and stops every process it started.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from devstack.build import DEFAULT_CACHE_DIR
from devstack.demo import write_demo_dataset
from devstack.stack import KAFKA, MONGO, S3, LocalStack
from devstack.worker import WorkerExited, WorkerProcess, free_port
from exporters.registry import BY_NAME
from web.devtoken import mint_token

log = logging.getLogger("devstack.soak")

TOPICS = {"exports": "exports", "events": "export-events", "dlq": "exports-dlq"}
TERMINAL = {"FINISHED", "FAILED", "EXPIRED", "CANCELLED"}
RESULT_EVENTS = {"export.finished", "export.failed", "export.expired", "export.cancelled"}
JWT_SECRET = "soak-jwt-secret-not-for-production-0123456789"  # noqa: S105 (its own worker)
# Types whose required params the demo dataset answers; the others take none.
PARAMS: dict[str, dict[str, Any]] = {"codeWave": {"waveId": "wave-1"}}
# One request only: its keys carry the date, not the export id, so a second one the same day
# would overwrite the first one's objects (SPEC: the SFMC drop folder's naming).
ONCE = {"autoReminderEmail"}


MessageCheck = Callable[[str, bytes, bytes | None, list[tuple[str, bytes]] | None], None]


@dataclass(frozen=True)
class SoakConfig:
    seed: int
    workdir: Path
    entries: int = 20_000
    kills: int = 4
    restart_dependencies: bool = True
    deadline_seconds: float = 1200.0
    cache_dir: Path = DEFAULT_CACHE_DIR
    # Seconds between two disturbances, drawn uniformly from this range.
    pause_seconds: tuple[float, float] = (3.0, 12.0)
    # Called with (channel, value, key, headers) for every message the soak produces on the
    # exports topic ("exports") and consumes from export-events ("exportEvents"): the suite
    # checks them against the AsyncAPI document; it raises to refuse one.
    check_message: MessageCheck | None = None


@dataclass
class SoakReport:
    seed: int
    exports: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: Counter[str] = field(default_factory=Counter)
    answered_by_duplicate: int = 0
    objects_checked: int = 0
    bytes_checked: int = 0
    repeated_events: int = 0
    seconds: float = 0.0
    losses: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.losses

    def summary(self) -> str:
        lines = [
            f"soak seed {self.seed}: {'OK' if self.ok else 'LOSS'} in {self.seconds:.0f} s",
            f"  requests            {sum(self.by_channel.values())} ({dict(self.by_channel)})",
            f"  exports             {self.exports} ({self.answered_by_duplicate} requests were"
            " duplicates of an active export of the same type)",
            f"  terminal statuses   {dict(self.statuses)}",
            f"  worker SIGKILLs     {self.kills}",
            f"  dependency restarts {dict(self.restarts)}",
            f"  objects verified    {self.objects_checked} ({self.bytes_checked} bytes, sha256)",
            f"  repeated events     {self.repeated_events} (same eventId: at-least-once)",
        ]
        lines += [f"  LOSS: {loss}" for loss in self.losses[:50]]
        return "\n".join(lines)


class _Worker:
    """The current worker process; replaced after each kill (same group, same data dir)."""

    def __init__(self, stack: LocalStack, workdir: Path) -> None:
        self._stack = stack
        self._workdir = workdir
        self._lock = threading.Lock()
        self.token = mint_token(JWT_SECRET, sub="soak", supreme=True, expires_in=6 * 3600)
        self.handle = self._spawn()

    def _spawn(self) -> WorkerProcess:
        env = self._stack.env | {
            "JWT_ALGORITHM": "HS256",
            "JWT_SECRET": JWT_SECRET,
            "KAFKA_SESSION_TIMEOUT_SECONDS": "6",
            "KAFKA_HEARTBEAT_INTERVAL_SECONDS": "1",
        }
        port = free_port()
        handle = WorkerProcess.spawn(
            env,
            self._workdir / f"worker-{port}.log",
            port=port,
            data_dir=self._workdir / "worker-data",
            log_level="info",
        )
        try:
            handle.wait_ready(timeout=180)
        except BaseException:
            handle.kill()
            raise
        return handle

    def kill_and_replace(self) -> None:
        with self._lock:
            self.handle.kill()
        replacement = self._spawn()
        with self._lock:
            self.handle = replacement

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        with self._lock:
            base = self.handle.base_url
        data = None if body is None else orjson.dumps(body)
        req = urllib.request.Request(  # noqa: S310 (the worker on loopback)
            base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as response:  # noqa: S310
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, orjson.loads(exc.read())
            except orjson.JSONDecodeError:
                return exc.code, None
        except (OSError, urllib.error.URLError):
            return 0, None  # the worker is being replaced

    def stop(self) -> None:
        with self._lock:
            self.handle.stop()


def run_soak(config: SoakConfig) -> SoakReport:
    report = SoakReport(seed=config.seed)
    rng = random.Random(config.seed)  # noqa: S311 (a test schedule, not a secret)
    started = time.monotonic()
    workdir = config.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    campaign = write_demo_dataset(data, entries=config.entries, seed=config.seed)
    with LocalStack(cache_dir=config.cache_dir, state_dir=workdir / "stack") as stack:
        stack.create_topics(TOPICS.values())
        stack.create_buckets(stack.bucket_names)
        stack.load_dataset(data)
        inputs = _all_objects(stack)  # the dataset's own files, not exports
        worker = _Worker(stack, workdir)
        try:
            requested = _request_and_disturb(stack, worker, campaign, rng, config, report)
            records = _wait_all(worker, campaign, requested, started + config.deadline_seconds)
            _check(stack, records, inputs, report, config.check_message)
        finally:
            worker.stop()
    report.seconds = time.monotonic() - started
    return report


class _Chaos(threading.Thread):
    """SIGKILLs the worker and restarts dependencies on a seeded schedule."""

    def __init__(
        self,
        stack: LocalStack,
        worker: _Worker,
        actions: list[str],
        rng: random.Random,
        config: SoakConfig,
        report: SoakReport,
    ) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self._stack, self._worker, self._actions = stack, worker, actions
        self._rng, self._config, self._report = rng, config, report
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for action in self._actions:
                # The schedule itself (not a synchronisation); a failed soak stops it.
                if self.stopping.wait(self._rng.uniform(*self._config.pause_seconds)):
                    return
                if action == "kill":
                    log.info("soak: SIGKILL the worker")
                    self._worker.kill_and_replace()
                    self._report.kills += 1
                else:
                    log.info("soak: restarting %s", action)
                    self._stack.stop_process(action)
                    self.stopping.wait(self._rng.uniform(1.0, 5.0))  # the outage lasts this long
                    self._stack.start_process(action)
                    self._report.restarts[action] += 1
        except BaseException as exc:
            self.error = exc


def _request_and_disturb(
    stack: LocalStack,
    worker: _Worker,
    campaign: str,
    rng: random.Random,
    config: SoakConfig,
    report: SoakReport,
) -> dict[str, str]:
    """Request every type (REST and Kafka) while the chaos thread disturbs; id -> channel."""
    requests = [
        (export_type, channel)
        for export_type in sorted(BY_NAME)
        for channel in (
            ["rest", "kafka"] if export_type not in ONCE else [rng.choice(["rest", "kafka"])]
        )
    ]
    rng.shuffle(requests)
    actions: list[str] = ["kill"] * config.kills
    if config.restart_dependencies:
        actions += [MONGO, S3, KAFKA]
    rng.shuffle(actions)
    # Its own generator: the two threads share no state, so a seed gives one schedule.
    chaos = _Chaos(stack, worker, actions, random.Random(rng.random()), config, report)  # noqa: S311
    chaos.start()
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "acks": "all"})
    requested: dict[str, str] = {}
    try:
        for export_type, channel in requests:
            params = PARAMS.get(export_type, {})
            if channel == "rest":
                export_id = _post_until_accepted(worker, campaign, export_type, params)
            else:
                export_id = f"soak-{uuid.uuid4().hex}"
                event = {
                    "type": "export.requested",
                    "exportId": export_id,
                    "campaignId": campaign,
                    "exportType": export_type,
                    "params": params,
                    "requestedBy": "soak",
                }
                value, key = orjson.dumps(event), campaign.encode()
                if config.check_message is not None:
                    config.check_message("exports", value, key, None)
                producer.produce(TOPICS["exports"], value, key=key)
                producer.poll(0)
            requested[export_id] = channel
            report.by_channel[channel] += 1
            time.sleep(rng.uniform(0.0, 1.5))  # requests spread over the disturbances
        undelivered = producer.flush(120)
        if undelivered:
            report.losses.append(f"{undelivered} Kafka requests not delivered")
    except BaseException as exc:
        chaos.stopping.set()
        chaos.join()
        if chaos.error is not None:  # the cause, more often than not: say it first
            raise RuntimeError("the soak's chaos thread failed") from chaos.error
        raise exc
    finally:
        # Every disturbance is over (a restarted dependency is up) before the checks or
        # the teardown.
        chaos.join()
    if chaos.error is not None:
        raise RuntimeError("the soak's chaos thread failed") from chaos.error
    return requested


def _post_until_accepted(
    worker: _Worker, campaign: str, export_type: str, params: dict[str, Any]
) -> str:
    """POST until a 202: 503 (broker down, recovering) and a worker being replaced are retried."""
    deadline = time.monotonic() + 300
    body = {"exportType": export_type, "params": params}
    while True:
        status, answer = worker.request("POST", f"/campaigns/{campaign}/exports", body)
        if status in (200, 202):
            return str(answer["id"])
        if status not in (0, 503) or time.monotonic() > deadline:
            raise RuntimeError(f"POST {export_type} answered {status}: {answer}")
        time.sleep(0.5)  # a client's retry interval


def _wait_all(
    worker: _Worker, campaign: str, requested: dict[str, str], deadline: float
) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    while len(records) < len(requested):
        for export_id in requested.keys() - records.keys():
            status, body = worker.request("GET", f"/campaigns/{campaign}/exports/{export_id}")
            if status == 200 and body["status"] in TERMINAL:
                records[export_id] = body
        if time.monotonic() > deadline:
            missing = sorted(requested.keys() - records.keys())
            raise RuntimeError(f"{len(missing)} exports did not end in time: {missing[:10]}")
        time.sleep(1.0)  # a poll interval
    return records


def _all_objects(stack: LocalStack) -> dict[tuple[str, str], int]:
    s3 = stack.s3_client()
    found: dict[tuple[str, str], int] = {}
    for bucket in stack.bucket_names:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                found[(bucket, obj["Key"])] = obj["Size"]
    return found


def _check(
    stack: LocalStack,
    records: dict[str, dict[str, Any]],
    inputs: dict[tuple[str, str], int],
    report: SoakReport,
    check_message: MessageCheck | None = None,
) -> None:
    # A request that met an active export of the same type was answered with it (SPEC's
    # duplicate rule): its id is an alias, its record the other export's.
    by_id = {record["id"]: record for record in records.values()}
    report.answered_by_duplicate = sum(report.by_channel.values()) - len(by_id)
    report.exports = len(by_id)
    records = by_id
    expected = _expected_objects(records, report)
    listed = {k: v for k, v in _all_objects(stack).items() if k not in inputs}
    for extra in sorted(listed.keys() - expected.keys()):
        report.losses.append(f"object no record names: {extra[0]}/{extra[1]}")
    for missing in sorted(expected.keys() - listed.keys()):
        report.losses.append(f"object named by a record is missing: {missing[0]}/{missing[1]}")
    present = {k: v for k, v in expected.items() if k in listed}
    rows_seen = _verify_objects(stack, present, report)
    for export_id, record in records.items():
        if record["status"] == "FINISHED" and rows_seen[export_id] != record["rowCount"]:
            report.losses.append(
                f"{export_id}: {rows_seen[export_id]} rows in its files, rowCount "
                f"{record['rowCount']}"
            )
    s3 = stack.s3_client()
    for bucket in stack.bucket_names:
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        report.losses += [f"open multipart upload {bucket}/{u['Key']}" for u in uploads]
    report.losses += [f"staging object left: {b}/{k}" for b, k in listed if "/.staging/" in k]
    _check_events(stack, records, report, check_message)


def _expected_objects(
    records: dict[str, dict[str, Any]], report: SoakReport
) -> dict[tuple[str, str], dict[str, Any]]:
    """(bucket, key) -> the record's object (and the record) of every FINISHED export."""
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for export_id, record in records.items():
        report.statuses[record["status"]] += 1
        if record["status"] != "FINISHED":
            report.losses.append(
                f"{export_id} ({record['exportType']}) {record['status']}: {record.get('error')}"
            )
            continue
        for obj in record["objects"]:
            expected[(record["bucket"], obj["key"])] = obj | {"record": record}
    return expected


def _verify_objects(
    stack: LocalStack, objects: dict[tuple[str, str], dict[str, Any]], report: SoakReport
) -> Counter[str]:
    """Size, sha256 and parse of every object; the data rows found per export."""
    s3 = stack.s3_client()
    rows_seen: Counter[str] = Counter()
    for (bucket, key), obj in sorted(objects.items()):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        report.objects_checked += 1
        report.bytes_checked += len(body)
        if len(body) != obj["size"] or hashlib.sha256(body).hexdigest() != obj["sha256"]:
            report.losses.append(f"{bucket}/{key}: size or sha256 differs from its record")
            continue
        try:
            rows_seen[obj["record"]["id"]] += _data_rows(key, body)
        except (ValueError, csv.Error, zipfile.BadZipFile) as exc:
            report.losses.append(f"{bucket}/{key} does not parse: {exc}")
    return rows_seen


def _data_rows(key: str, body: bytes) -> int:
    """Rows below the header in a CSV, or in every CSV member of a ZIP."""
    if key.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad} is corrupt")
            return sum(_csv_rows(archive.read(name)) for name in archive.namelist())
    return _csv_rows(body)


def _csv_rows(body: bytes) -> int:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    return max(len(rows) - 1, 0)


def _check_events(
    stack: LocalStack,
    records: dict[str, dict[str, Any]],
    report: SoakReport,
    check_message: MessageCheck | None = None,
) -> None:
    """One result per export, or repeats that carry the same eventId (at-least-once)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap_servers,
            "group.id": f"soak-check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([TOPICS["events"]])
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        for message in _until_quiet(consumer):
            if check_message is not None:
                check_message("exportEvents", message.value(), message.key(), message.headers())
            event = orjson.loads(message.value())
            if event.get("type") in RESULT_EVENTS and event.get("exportId") in records:
                seen[event["exportId"]].append(event)
    finally:
        consumer.close()
    for export_id, record in records.items():
        events = seen.get(export_id, [])
        if not events:
            report.losses.append(f"{export_id}: no result event")
            continue
        ids = {e.get("eventId") for e in events}
        types = {e["type"] for e in events}
        if len(ids) != 1 or types != {f"export.{record['status'].lower()}"}:
            report.losses.append(f"{export_id}: result events disagree: {sorted(types)} {ids}")
        report.repeated_events += len(events) - 1


def _until_quiet(consumer: Any, idle: float = 5.0) -> Iterator[Any]:
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < idle:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        quiet_since = time.monotonic()
        yield message


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.soak", description=__doc__)
    parser.add_argument("--seed", type=int, action="append", help="one run per seed (repeat)")
    parser.add_argument("--entries", type=int, default=20_000, help="demo dataset size")
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs per run")
    parser.add_argument("--no-dependency-restarts", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seeds = args.seed or [random.SystemRandom().randrange(1_000_000)]
    failed = 0
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix=f"soak-{seed}-") as tmp:
            workdir = args.workdir / f"seed-{seed}" if args.workdir else Path(tmp)
            config = SoakConfig(
                seed=seed,
                workdir=workdir,
                entries=args.entries,
                kills=args.kills,
                restart_dependencies=not args.no_dependency_restarts,
            )
            try:
                report = run_soak(config)
            except (RuntimeError, WorkerExited, TimeoutError) as exc:
                out(f"soak seed {seed}: ERROR {exc} (logs in {workdir})")
                failed += 1
                continue
            out(report.summary())
            failed += not report.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
