"""Real Kafka, MongoDB and MinIO in containers (testcontainers), and a worker process against them.

Every test under tests/integration is marked `integration`; every `integration` test is skipped
when no Docker engine answers, before any fixture runs (so no image is ever pulled then).
Containers are session-scoped; tests use fresh export ids and topic names.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from core.settings import Settings
from devstack.dataset import load_dataset
from devstack.stack import BUCKETS
from devstack.worker import WorkerExited, WorkerProcess, free_port
from exporters.runner import RunOptions
from tests.e2e.conftest import JWT_ENV, Worker, stop_worker
from tests.e2e.expected import DATA

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from testcontainers.core.docker_client import DockerClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Pinned: a new image is a deliberate change, not something a test run picks up.
KAFKA_IMAGE = "apache/kafka:3.9.1"
MONGO_IMAGE = "mongo:7.0.14"
MINIO_IMAGE = "minio/minio:RELEASE.2024-10-13T13-34-09Z"

DATABASE = "verifiedfan"
S3_REGION = "us-east-1"
S3_ACCESS_KEY = "integration-access"
S3_SECRET_KEY = "integration-secret-key"  # MinIO wants at least 8 characters
# The first test to use a container also pays for pulling its image.
INTEGRATION_TIMEOUT_SECONDS = 600


@cache
def docker_unavailable_reason() -> str | None:
    """Why no container can be started here, or None when a Docker engine answers a ping."""
    try:
        # testcontainers' client: the same DOCKER_HOST / docker context resolution as the
        # containers will use, around docker.from_env().
        from testcontainers.core.docker_client import DockerClient
    except ImportError as exc:
        return f"no Docker engine check possible: testcontainers is not installed ({exc})"
    # A failed connection leaves the SDK's socket to the garbage collector; its ResourceWarning
    # would otherwise fail whichever test runs next (warnings are errors here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return _ping_docker(DockerClient)
        finally:
            gc.collect()


def _ping_docker(client_class: type[DockerClient]) -> str | None:
    try:
        client = client_class(timeout=5)
    except Exception as exc:  # DockerException, requests' and OS errors alike
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    try:
        client.client.ping()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    finally:
        client.client.close()
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection sees the marker we add
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.timeout(INTEGRATION_TIMEOUT_SECONDS))
    integration = [item for item in items if item.get_closest_marker("integration")]
    if not integration:
        return
    reason = docker_unavailable_reason()
    if reason is not None:
        skip = pytest.mark.skip(reason=reason)
        for item in integration:
            item.add_marker(skip)


# -- containers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """`host:port` of a one-node KRaft broker (auto topic creation off)."""
    from tests.integration.kafka_container import ApacheKafkaContainer

    with ApacheKafkaContainer(KAFKA_IMAGE) as kafka:
        yield kafka.get_bootstrap_server()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """A MongoDB URL with the root user's credentials (authSource admin)."""
    from testcontainers.community.mongodb import MongoDbContainer

    with MongoDbContainer(MONGO_IMAGE) as mongo:
        url = mongo.get_connection_url()
        _wait_for_mongo(url)
        yield url


def _wait_for_mongo(url: str, timeout: float = 60) -> None:
    # The image's init phase runs a temporary mongod (localhost only) that logs the same
    # "waiting for connections" line the container's wait strategy looks for.
    deadline = time.monotonic() + timeout
    while True:
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=2000)
            with client:
                client.admin.command("ping")
            return
        except PyMongoError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )


@pytest.fixture(scope="session")
def minio() -> Iterator[S3Server]:
    """A MinIO server with the service's four buckets."""
    from testcontainers.community.minio import MinioContainer

    container = MinioContainer(MINIO_IMAGE, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY)
    # The module sets only the MINIO_ACCESS_KEY/MINIO_SECRET_KEY spelling, deprecated by MinIO.
    container.with_env("MINIO_ROOT_USER", S3_ACCESS_KEY)
    container.with_env("MINIO_ROOT_PASSWORD", S3_SECRET_KEY)
    with container:
        config = container.get_config()
        server = S3Server(
            endpoint_url=f"http://{config['endpoint']}",
            access_key=config["access_key"],
            secret_key=config["secret_key"],
        )
        client = server.client()
        for bucket in BUCKETS.values():
            client.create_bucket(Bucket=bucket)
        yield server


@pytest.fixture(scope="session")
def dataset(mongo_url: str, minio: S3Server) -> dict[str, int]:
    """tests/e2e/data loaded into the real MongoDB (SMS waves, if any, into MinIO)."""
    return load_dataset(
        DATA,
        mongo_url=mongo_url,
        database=DATABASE,
        s3_endpoint_url=minio.endpoint_url,
        vf_scoring_bucket=BUCKETS["S3_BUCKET_VF_SCORING"],
        access_key=minio.access_key,
        secret_key=minio.secret_key,
        region=S3_REGION,
    )


@pytest.fixture(scope="session")
def s3(minio: S3Server) -> S3Client:
    """A plain boto3 client: how a downstream consumer reads what the service wrote."""
    return minio.client()


# -- the service's view of them --------------------------------------------------------------


def service_env(mongo_url: str, s3: S3Server, kafka_bootstrap: str | None = None) -> dict[str, str]:
    """The service's environment variables for these containers."""
    env = {
        "MONGO_URL": mongo_url,
        "MONGO_DATABASE": DATABASE,
        "S3_ENDPOINT_URL": s3.endpoint_url,
        "S3_REGION": S3_REGION,
        "S3_ACCESS_KEY_ID": s3.access_key,
        "S3_SECRET_ACCESS_KEY": s3.secret_key,
        "S3_ADDRESSING_STYLE": "path",
        **BUCKETS,
        **JWT_ENV,  # Worker.request sends a supreme token signed with this secret
    }
    if kafka_bootstrap is not None:
        env["KAFKA_BROKER_URL"] = f"kafka://{kafka_bootstrap}"
    return env


def settings_for(mongo_url: str, s3: S3Server, **overrides: Any) -> Settings:
    env = service_env(mongo_url, s3)
    return Settings(
        mongo_url=env["MONGO_URL"],
        mongo_database=env["MONGO_DATABASE"],
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        s3_region=env["S3_REGION"],
        s3_access_key_id=env["S3_ACCESS_KEY_ID"],
        s3_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        s3_addressing_style="path",
        s3_bucket_exports=BUCKETS["S3_BUCKET_EXPORTS"],
        s3_bucket_scoring=BUCKETS["S3_BUCKET_SCORING"],
        s3_bucket_vf_scoring=BUCKETS["S3_BUCKET_VF_SCORING"],
        s3_bucket_sfmc=BUCKETS["S3_BUCKET_SFMC"],
        **overrides,
    )


@pytest.fixture(scope="session")
def settings(mongo_url: str, minio: S3Server, dataset: dict[str, int]) -> Settings:
    """Settings pointing at the containers, with the dataset loaded."""
    return settings_for(mongo_url, minio)


def run_options(settings: Settings) -> RunOptions:
    """RunOptions from settings, as the export runner agent builds them."""
    return RunOptions.from_settings(settings)


# -- the worker process ------------------------------------------------------------------------


def start_worker(env: dict[str, str], workdir: Path) -> Worker:
    """`python -m export_service worker` with `env`; returns once /ready answers 200."""
    port = free_port()
    handle = WorkerProcess.spawn(
        env | {"KAFKA_SESSION_TIMEOUT_SECONDS": "6", "KAFKA_HEARTBEAT_INTERVAL_SECONDS": "1"},
        workdir / f"worker-{port}.log",
        port=port,
        log_level="info",
    )
    worker = Worker(handle.process, handle.base_url, handle.log_path)
    try:
        handle.wait_ready(timeout=120)
    except BaseException as exc:
        stop_worker(worker)
        if isinstance(exc, WorkerExited | TimeoutError):
            raise AssertionError(str(exc)) from exc
        raise
    return worker


@pytest.fixture(scope="session")
def worker(
    kafka_bootstrap: str,
    mongo_url: str,
    minio: S3Server,
    dataset: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    w = start_worker(
        service_env(mongo_url, minio, kafka_bootstrap), tmp_path_factory.mktemp("worker")
    )
    yield w
    stop_worker(w)
