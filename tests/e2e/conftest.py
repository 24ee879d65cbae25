"""The real stack for end-to-end tests: Kafka, FerretDB and SeaweedFS processes, and the worker.

Session scope for the servers; each test uses fresh export ids and its own consumer group.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from core.asyncapi import DEAD_LETTERS, EXPORT_EVENTS, EXPORTS, default_topic, topic_setting
from devstack.stack import LocalStack
from devstack.worker import WorkerExited, WorkerProcess, free_port
from tests.contract import EventContract
from tests.e2e.expected import DATA
from web.devtoken import mint_token

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ("exports", "export-events", "exports-dlq")
PART_SIZE = 5 * 1024 * 1024  # S3's (and SeaweedFS's) smallest part but the last
# The worker under test verifies HS256 tokens with this secret; tokens outlive a test session.
JWT_SECRET = "e2e-jwt-secret-not-for-production-0123456789"
JWT_ENV = {"JWT_ALGORITHM": "HS256", "JWT_SECRET": JWT_SECRET}


def supreme_token(sub: str = "e2e-admin", **claims: Any) -> str:
    """A token the e2e worker accepts; supreme unless `supreme=False` is given."""
    claims.setdefault("supreme", True)
    claims.setdefault("expires_in", 6 * 3600)
    return mint_token(JWT_SECRET, sub=sub, **claims)


T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Poll `check` until it returns something other than None/False, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack")
    # verify_ferretdb: every document FerretDB reads is also decoded, projected and filtered by
    # its own code, so a fast path of the devstack patch set that differs stops the suite.
    with LocalStack(
        cache_dir=ROOT / ".cache",
        state_dir=state,
        verify_ferretdb=True,
    ) as s:
        s.create_topics(TOPICS, partitions=1)
        s.create_buckets(s.bucket_names)
        s.load_dataset(DATA)
        yield s


BIG = "cmp-big"
# Long enough (~15 s of export here, 2 rows per entry) that timeouts, outages and kills land
# mid-export and that the export outlasts the consumer's session timeout.
BIG_ENTRIES = 80_000


@pytest.fixture(scope="session")
def big_campaign(stack: LocalStack) -> int:
    """A generated campaign: every entry in two markets, so 2 rows per entry."""
    import datetime as dt

    from pymongo import MongoClient
    from pymongo.database import Database

    client: MongoClient[dict[str, Any]]
    with MongoClient(stack.mongo_url) as client:
        db: Database[dict[str, Any]] = client[stack.env["MONGO_DATABASE"]]
        created = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        db.campaigns.insert_one({"_id": BIG, "name": "Big Tour"})
        db.markets.insert_many(
            [{"_id": f"{BIG}-m{i}", "campaignId": BIG, "name": f"Market {i}"} for i in (1, 2)]
        )
        for start in range(0, BIG_ENTRIES, 5000):
            ids = range(start, min(start + 5000, BIG_ENTRIES))
            db.users.insert_many(
                [{"_id": f"{BIG}-u{i}", "email": f"fan{i}@example.com"} for i in ids]
            )
            db.entries.insert_many(
                [
                    {
                        "_id": f"{BIG}-e{i}",
                        "campaignId": BIG,
                        "userId": f"{BIG}-u{i}",
                        "marketId": f"{BIG}-m1",
                        "additionalMarketIds": [f"{BIG}-m2"],
                        "createdAt": created,
                    }
                    for i in ids
                ]
            )
    return 2 * BIG_ENTRIES


# The AsyncAPI channel of each topic the tests produce to or consume from: the default
# names, and the topics of every dedicated_env. Any other topic (a table's changelog) is
# not part of the interface and is not checked.
CHANNELS = (EXPORTS, EXPORT_EVENTS, DEAD_LETTERS)
_CHANNEL_OF_TOPIC = {default_topic(channel): channel for channel in CHANNELS}


def dedicated_env(name: str) -> dict[str, str]:
    """Settings for a worker of its own: its own consumer group, status table changelog and
    topics, so that the session worker neither shares its partition nor runs its requests."""
    suffix = f"{name}-{uuid.uuid4().hex[:8]}"
    topics = {topic_setting(channel): f"{default_topic(channel)}-{suffix}" for channel in CHANNELS}
    _CHANNEL_OF_TOPIC.update({topics[topic_setting(channel)]: channel for channel in CHANNELS})
    return {"APP_ID": f"export-service-{suffix}", **topics}


def _json_or_text(body: bytes) -> Any:
    """JSON answers are parsed; anything else (a server still starting) is kept as text."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


@dataclass
class Worker:
    """A running `python -m export_service worker` process and how to talk to it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    token: str = field(default_factory=supreme_token)

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """(status, JSON body); sends the worker's supreme token unless `token` is given
        (`token=""` sends no Authorization header)."""
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json_or_text(exc.read())

    def get_export(self, campaign_id: str, export_id: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"/campaigns/{campaign_id}/exports/{export_id}")
        return body if status == 200 else None

    def wait_terminal(
        self, campaign_id: str, export_id: str, timeout: float = 120
    ) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            body = self.get_export(campaign_id, export_id)
            if body and body["status"] in {"FINISHED", "FAILED", "EXPIRED", "CANCELLED"}:
                return body
            return None

        return wait_for(done, timeout=timeout, what=f"export {export_id} to end")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


_LIVE_WORKERS: list[Worker] = []
"""Every worker spawned and not stopped, newest last: where the AsyncAPI document is read."""


def spawn_worker(stack: LocalStack, workdir: Path, **extra_env: str) -> Worker:
    """Start a worker process and return at once (see start_worker)."""
    port = free_port()
    env = stack.env | {
        "S3_PART_SIZE_BYTES": str(PART_SIZE),
        "KAFKA_SESSION_TIMEOUT_SECONDS": "6",
        "KAFKA_HEARTBEAT_INTERVAL_SECONDS": "1",
        **JWT_ENV,
        **extra_env,
    }
    handle = WorkerProcess.spawn(env, workdir / f"worker-{port}.log", port=port, log_level="info")
    worker = Worker(handle.process, handle.base_url, handle.log_path)
    _LIVE_WORKERS.append(worker)
    return worker


def start_worker(
    stack: LocalStack, workdir: Path, *, ready_path: str = "/ready", **extra_env: str
) -> Worker:
    """A worker process; waits until `ready_path` answers 200 (a standby is never /ready:
    pass "/heartbeat")."""
    worker = spawn_worker(stack, workdir, **extra_env)
    handle = WorkerProcess(worker.process, int(worker.base_url.rsplit(":", 1)[1]), worker.log_path)
    try:
        handle.wait_ready(path=ready_path, timeout=120)
    except (WorkerExited, TimeoutError) as exc:
        raise AssertionError(str(exc)) from exc
    return worker


def stop_worker(worker: Worker) -> None:
    WorkerProcess(worker.process, 0, worker.log_path).stop()
    if worker in _LIVE_WORKERS:
        _LIVE_WORKERS.remove(worker)


def _served_document(workers: list[Worker]) -> dict[str, Any] | None:
    """/asyncapi.json of the newest of `workers` that answers."""
    for worker in reversed(workers):
        if worker.process.poll() is not None:
            continue
        try:
            status, body = worker.request("GET", "/asyncapi.json", token="")
        except OSError:  # not listening yet
            continue
        if status == 200 and isinstance(body, dict):
            return body
    return None


_SERVED_CONTRACT: list[EventContract] = []


def served_contract() -> EventContract:
    """The AsyncAPI document a live worker serves at /asyncapi.json (what users get; read
    once a session: every worker runs the same code)."""
    if not _SERVED_CONTRACT:
        document = wait_for(
            lambda: _served_document(_LIVE_WORKERS),
            timeout=60,
            what="a live worker to serve /asyncapi.json",
        )
        _SERVED_CONTRACT.append(EventContract(document))
    return _SERVED_CONTRACT[0]


def contract_of(worker: Worker) -> Callable[[], EventContract]:
    """The AsyncAPI document `worker` serves, read when first needed (a worker started
    otherwise than by spawn_worker)."""
    read: list[EventContract] = []

    def contract() -> EventContract:
        if not read:
            document = wait_for(
                lambda: _served_document([worker]), timeout=60, what="/asyncapi.json"
            )
            read.append(EventContract(document))
        return read[0]

    return contract


@pytest.fixture(scope="session")
def worker(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = start_worker(stack, tmp_path_factory.mktemp("worker"))
    yield w
    stop_worker(w)


@pytest.fixture
def s3(stack: LocalStack) -> Any:
    import boto3

    env = stack.env
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint_url,
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        region_name=env["S3_REGION"],
    )


@pytest.fixture
def kafka(stack: LocalStack) -> Iterator[KafkaClient]:
    client = KafkaClient(stack.bootstrap_servers, served_contract)
    yield client
    client.close()


class KafkaClient:
    """An upstream/downstream system: confluent-kafka (librdkafka), not the service's client.

    Every message it produces, and every message it reads from a documented topic (the
    exports topic, export-events, the DLQ), is checked against the AsyncAPI document the
    worker serves: a message that is not exactly one of its channel's messages fails the
    test. A test that sends a bad event on purpose says so (`invalid=True`), and the
    document must refuse it.
    """

    def __init__(self, bootstrap: str, contract: Callable[[], EventContract]) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        self._consumers: list[Any] = []
        self._contract = contract
        self.checked: Counter[str] = Counter()
        """How many messages of each name (`export.finished`, ...) were checked."""

    def _channel(self, topic: str) -> str | None:
        return _CHANNEL_OF_TOPIC.get(topic)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        invalid: bool = False,
    ) -> None:
        """Publish one message; unless `invalid`, it must be valid per the document, and
        with `invalid` it must not be (the event a DLQ test sends)."""
        channel = self._channel(topic)
        assert channel is not None, f"{topic} is not a topic of the AsyncAPI document"
        contract = self._contract()
        if invalid:
            assert contract.refuses(channel, value, key=key, headers=headers), (
                f"marked invalid, but the document accepts it: {value[:300]!r}"
            )
            self.checked["invalid"] += 1
        else:
            self.checked[contract.check(channel, value, key=key, headers=headers)] += 1
        errors: list[Any] = []
        self.producer.produce(
            topic, value=value, key=key, headers=headers, on_delivery=lambda e, _m: errors.append(e)
        )
        self.producer.flush(30)
        assert errors == [None], errors

    def _poll(self, consumer: Any, timeout: float) -> Any:
        """The next message (None on a time-out or an error), checked when documented."""
        message = consumer.poll(timeout)
        if message is None or message.error():
            return None
        channel = self._channel(message.topic())
        if channel is not None:
            name = self._contract().check(
                channel, message.value(), key=message.key(), headers=message.headers()
            )
            self.checked[name] += 1
        return message

    def consumer(self, topic: str) -> Any:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"e2e-{topic}-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        self._consumers.append(consumer)
        return consumer

    def find(
        self, consumer: Any, match: Callable[[dict[str, Any]], bool], *, timeout: float = 120
    ) -> dict[str, Any]:
        """The first JSON message on the consumer's topic for which `match` holds."""
        return dict(orjson.loads(self.find_message(consumer, match, timeout=timeout).value()))

    def find_message(
        self, consumer: Any, match: Callable[[dict[str, Any]], bool], *, timeout: float = 120
    ) -> Any:
        """`find`, but the message itself (key, headers, value)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._poll(consumer, 0.5)
            if message is not None and match(orjson.loads(message.value())):
                return message
        raise AssertionError("no matching message before the deadline")

    def collect(
        self, consumer: Any, match: Callable[[dict[str, Any]], bool], *, idle: float = 3.0
    ) -> list[dict[str, Any]]:
        """Every JSON message for which `match` holds, until the topic is quiet for `idle` s."""
        found = []
        for message in self.until_quiet(consumer, idle=idle):
            body = orjson.loads(message.value())
            if match(body):
                found.append(dict(body))
        return found

    def until_quiet(self, consumer: Any, *, idle: float = 3.0) -> Iterator[Any]:
        """Every message (raw), until the topic is quiet for `idle` s."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle:
            message = self._poll(consumer, 0.5)
            if message is None:
                continue
            quiet_since = time.monotonic()
            yield message

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.close()
