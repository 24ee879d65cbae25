"""LocalStack: Kafka (KRaft), FerretDB and SeaweedFS's S3 as local processes for dev and tests."""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import boto3
from botocore.config import Config as BotoConfig
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# NewTopic is defined in cimpl; confluent_kafka.admin imports it without re-exporting it.
from confluent_kafka.cimpl import NewTopic
from pymongo import MongoClient

from devstack.build import DEFAULT_CACHE_DIR, KAFKA_LOG4J_CONFIG, Artifacts, prepare
from devstack.ferretdb_patch import VERIFY_ENV
from devstack.process import ManagedProcess, ProcessError
from devstack.worker import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "BUCKETS",
    "KAFKA",
    "MONGO",
    "S3",
    "LocalStack",
    "ProcessError",
    "S3Server",
    "StackError",
]

log = logging.getLogger(__name__)

# Names of the processes in LocalStack.processes (and of their log files).
KAFKA = "kafka"
MONGO = "mongo"
S3 = "s3"

HOST = "127.0.0.1"
S3_REGION = "us-east-1"
S3_CREDENTIALS = ("testing", "testing")
# Settings' default bucket names; the service reads them from S3_BUCKET_* in LocalStack.env.
BUCKETS: Mapping[str, str] = MappingProxyType(
    {
        "S3_BUCKET_EXPORTS": "exports",
        "S3_BUCKET_SCORING": "scoring",
        "S3_BUCKET_VF_SCORING": "vf-scoring",
        "S3_BUCKET_SFMC": "sfmc",
    }
)

_STATE_MARKER = ".devstack-state"

S3Server = Literal["seaweedfs", "moto"]
# `weed mini` runs a master, a volume server, a filer, the S3 gateway and an admin server,
# each with an HTTP and a gRPC port; all get free ports so stacks can run side by side.
_SEAWEEDFS_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)

_KAFKA_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=1
# Topics come from create_topics only, so a typo or an early client never makes a wrong one.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# One consumer per group in dev and tests: waiting for more members only slows every start.
group.initial.rebalance.delay.ms=0
"""


class StackError(RuntimeError):
    """The local stack could not be started or did not behave as asked."""


class LocalStack:
    """Kafka, FerretDB (MongoDB wire protocol) and SeaweedFS (S3) as child processes.

    Use as a context manager; every process is stopped on exit, and at interpreter exit if
    `stop()` was never reached. Processes are named `KAFKA`, `MONGO` and `S3` in `processes`,
    `stop_process`, `kill_process` and `start_process`; their output goes to
    `state_dir/logs/<name>.log`. All three keep their data in `state_dir` across a process
    restart. SeaweedFS checks SigV4 signatures (presigned URLs and their expiry included) and
    AWS's multipart limits (parts of 5 MiB but the last). `s3_server="moto"` runs moto
    instead: no signature checks, objects in memory (a restarted moto comes back with the
    buckets made by `create_buckets`, empty), part sizes as `s3_min_part_size` allows.
    """

    def __init__(
        self,
        *,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        state_dir: Path | None = None,
        kafka_port: int | None = None,
        mongo_port: int | None = None,
        s3_port: int | None = None,
        mongo_database: str = "verifiedfan",
        s3_min_part_size: int | None = None,
        s3_server: S3Server = "seaweedfs",
        startup_timeout: float = 120.0,
        verify_ferretdb: bool = False,
    ) -> None:
        """Configure a stack; nothing runs until `start()` (or `with`).

        `state_dir` (default `cache_dir/state`) is wiped at every start; ports default to free
        loopback ports; `s3_min_part_size` lets moto accept multipart parts below 5 MiB;
        `s3_server` picks SeaweedFS (the default) or moto;
        `verify_ferretdb` runs FerretDB's own decoder, projection and filter beside the patch
        set's fast paths on every document and stops FerretDB on any difference (for tests).
        """
        self.cache_dir = cache_dir
        self.state_dir = state_dir if state_dir is not None else cache_dir / "state"
        self.mongo_database = mongo_database
        self.startup_timeout = startup_timeout
        self._fixed_ports = {KAFKA: kafka_port, MONGO: mongo_port, S3: s3_port}
        self._s3_min_part_size = s3_min_part_size
        self.s3_server: S3Server = s3_server
        self._verify_ferretdb = verify_ferretdb
        self._ports: dict[str, int] = {}
        self._processes: dict[str, ManagedProcess] = {}
        self._buckets: list[str] = []
        self._atexit_registered = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Fetch/build what is missing, start the three services and wait until they answer."""
        if self._processes:
            raise StackError("this LocalStack was already started; make a new one")
        started = time.monotonic()
        artifacts = prepare(self.cache_dir, with_helm=False)  # Helm is for the chart tests only
        self._reset_state_dir()
        self._ports = self._choose_ports()
        self._processes = self._make_processes(artifacts)
        atexit.register(self.stop)
        self._atexit_registered = True
        try:
            # FerretDB and S3 start while the JVM formats Kafka's storage.
            self._processes[MONGO].start()
            self._processes[S3].start()
            self._format_kafka_storage(artifacts)
            self._processes[KAFKA].start()
            deadline = time.monotonic() + self.startup_timeout
            for process in self._processes.values():
                process.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        log.info(
            "local stack ready in %.1fs: Kafka %s, MongoDB %s, S3 %s (logs in %s)",
            time.monotonic() - started,
            self.bootstrap_servers,
            self.mongo_url,
            self.s3_endpoint_url,
            self.state_dir / "logs",
        )
        return self

    def stop(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after its grace period). Safe to call twice."""
        # Ask all first so their shutdowns overlap, then wait for each.
        for process in self._processes.values():
            process.request_stop()
        for process in self._processes.values():
            process.stop()
        # Only now: if a Ctrl-C interrupts the waits above, atexit still finishes the job.
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        """The process table: KAFKA, MONGO and S3 (pid, running, log_path, log_tail, ...)."""
        return MappingProxyType(self._processes)

    def stop_process(self, name: str, grace_seconds: float | None = None) -> None:
        """Stop one service (SIGTERM, then SIGKILL after the grace period)."""
        self._process(name).stop(grace_seconds)

    def kill_process(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to one service's process group; for SIGKILL, also wait until it is gone.

        SIGSTOP/SIGCONT freeze and resume a service (a hung dependency rather than a dead one).
        """
        process = self._process(name)
        process.send_signal(sig)
        if sig == signal.SIGKILL:
            process.wait(timeout=30)

    def start_process(self, name: str, timeout: float | None = None) -> None:
        """(Re)start one stopped service on its old port and wait until it answers."""
        process = self._process(name)
        process.start()
        process.wait_ready(time.monotonic() + (timeout or self.startup_timeout))
        if name == S3 and self._buckets:
            self.create_buckets(self._buckets)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self._port(KAFKA)}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://{HOST}:{self._port(MONGO)}/"

    @property
    def s3_endpoint_url(self) -> str:
        return f"http://{HOST}:{self._port(S3)}"

    @property
    def env(self) -> dict[str, str]:
        """The service's environment variables for this stack (a fresh dict each time)."""
        return {
            "KAFKA_BROKER_URL": f"kafka://{self.bootstrap_servers}",
            "MONGO_URL": self.mongo_url,
            "MONGO_DATABASE": self.mongo_database,
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
            "S3_REGION": S3_REGION,
            "S3_ACCESS_KEY_ID": S3_CREDENTIALS[0],
            "S3_SECRET_ACCESS_KEY": S3_CREDENTIALS[1],
            **BUCKETS,
        }

    @property
    def bucket_names(self) -> list[str]:
        """The four buckets the service writes to, as named in `env`."""
        return list(BUCKETS.values())

    # -- resources -----------------------------------------------------------------------------

    def create_topics(
        self, names: Iterable[str], partitions: int = 1, timeout: float = 30.0
    ) -> None:
        """Create topics (replication 1) unless they exist; then assert their partition count."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return
        admin = self._admin()
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in wanted],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise StackError(f"creating topic {name!r} failed: {error.str()}") from exc
        self._assert_partitions(admin, wanted, partitions, time.monotonic() + timeout)

    def load_dataset(self, directory: Path) -> dict[str, int]:
        """Load a dataset directory (devstack.dataset) into this stack's MongoDB and S3."""
        from devstack.dataset import load_dataset

        env = self.env
        return load_dataset(
            directory,
            mongo_url=self.mongo_url,
            database=env["MONGO_DATABASE"],
            s3_endpoint_url=self.s3_endpoint_url,
            vf_scoring_bucket=env["S3_BUCKET_VF_SCORING"],
            access_key=env["S3_ACCESS_KEY_ID"],
            secret_key=env["S3_SECRET_ACCESS_KEY"],
            region=env["S3_REGION"],
        )

    @property
    def s3_keeps_objects(self) -> bool:
        """Whether objects outlive a restart of the S3 process (SeaweedFS: yes; moto: no)."""
        return self.s3_server == "seaweedfs"

    def create_buckets(self, names: Iterable[str]) -> None:
        """Create S3 buckets unless they exist (moto's are re-created when it restarts)."""
        client = self.s3_client()
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        for name in dict.fromkeys(names):
            if name not in existing:
                client.create_bucket(Bucket=name)
            if name not in self._buckets:
                self._buckets.append(name)

    def s3_client(self) -> S3Client:
        """A boto3 S3 client for this stack's S3 (path-style, the stack's credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=S3_CREDENTIALS[0],
            aws_secret_access_key=S3_CREDENTIALS[1],
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    # -- internals -----------------------------------------------------------------------------

    def _process(self, name: str) -> ManagedProcess:
        try:
            return self._processes[name]
        except KeyError:
            known = ", ".join(self._processes) or "none: the stack is not started"
            raise StackError(f"no process named {name!r} (known: {known})") from None

    def _port(self, name: str) -> int:
        try:
            return self._ports[name]
        except KeyError:
            raise StackError("the stack is not started: ports are chosen by start()") from None

    def _reset_state_dir(self) -> None:
        state = self.state_dir
        # Wiping is recursive, so never wipe a folder this class did not create.
        if state.exists() and any(state.iterdir()) and not (state / _STATE_MARKER).exists():
            raise StackError(
                f"refusing to wipe {state}: it is not empty and was not made by LocalStack"
            )
        shutil.rmtree(state, ignore_errors=True)
        (state / "logs").mkdir(parents=True)
        (state / _STATE_MARKER).write_text("wiped at every LocalStack start\n")

    def _choose_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for name, fixed in self._fixed_ports.items():
            if fixed is None:
                ports[name] = free_port()
            elif _port_in_use(fixed):
                raise StackError(f"{name} port {HOST}:{fixed} is already in use (another stack?)")
            else:
                ports[name] = fixed
        ports["kafka-controller"] = free_port()
        if self.s3_server == "seaweedfs":
            ports.update({flag: free_port() for flag in _SEAWEEDFS_PORT_FLAGS})
        return ports

    def _make_processes(self, artifacts: Artifacts) -> dict[str, ManagedProcess]:
        logs = self.state_dir / "logs"
        moto_env = dict(os.environ)
        if self._s3_min_part_size is not None:
            # moto reads it at import time, so it must be in the server's environment.
            moto_env["S3_UPLOAD_PART_MIN_SIZE"] = str(self._s3_min_part_size)
        return {
            MONGO: ManagedProcess(
                MONGO,
                [
                    str(artifacts.ferretdb_bin),
                    "-listen",
                    f"{HOST}:{self._ports[MONGO]}",
                    "-sqlite-dir",
                    str(self.state_dir / "ferretdb"),
                ],
                log_path=logs / f"{MONGO}.log",
                probe=self._mongo_ready,
                env=os.environ | ({VERIFY_ENV: "1"} if self._verify_ferretdb else {}),
                stop_grace_seconds=5.0,
            ),
            S3: ManagedProcess(
                S3,
                (
                    self._seaweedfs_command(artifacts)
                    if self.s3_server == "seaweedfs"
                    else [
                        sys.executable,
                        "-m",
                        "moto.server",
                        "-H",
                        HOST,
                        "-p",
                        str(self._ports[S3]),
                    ]
                ),
                log_path=logs / f"{S3}.log",
                probe=self._s3_ready,
                env=moto_env,
                stop_grace_seconds=5.0,
            ),
            KAFKA: ManagedProcess(
                KAFKA,
                [*self._java_command(artifacts), "kafka.Kafka", str(self._kafka_properties())],
                log_path=logs / f"{KAFKA}.log",
                probe=self._kafka_ready,
                # A broker's controlled shutdown takes a few seconds; killing it is still fine.
                stop_grace_seconds=20.0,
            ),
        }

    def _seaweedfs_command(self, artifacts: Artifacts) -> list[str]:
        """`weed mini` on loopback with data in state_dir and the stack's one S3 identity."""
        data = self.state_dir / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.state_dir / "seaweedfs-identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "export-service",
                            "credentials": [
                                {"accessKey": S3_CREDENTIALS[0], "secretKey": S3_CREDENTIALS[1]}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        return [
            str(artifacts.seaweedfs_bin),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-s3.port={self._ports[S3]}",
            *(f"-{flag}={self._ports[flag]}" for flag in _SEAWEEDFS_PORT_FLAGS),
            "-admin.port.legacy=0",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-s3.config={identities}",
            # As on AWS: a missing bucket is an error, not created by the first upload.
            "-s3.autoCreateBucket=false",
        ]

    def _java_command(self, artifacts: Artifacts) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if java is None:
            raise StackError("`java` is not on PATH (and JAVA_HOME is unset); Kafka needs Java 17")
        return [
            java,
            "-Xmx512m",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{KAFKA_LOG4J_CONFIG}",
            "-cp",
            f"{artifacts.kafka_libs}/*",
        ]

    def _kafka_properties(self) -> Path:
        path = self.state_dir / "kafka" / "server.properties"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                _KAFKA_PROPERTIES.format(
                    host=HOST,
                    port=self._ports[KAFKA],
                    controller_port=self._ports["kafka-controller"],
                    log_dir=self.state_dir / "kafka" / "data",
                )
            )
        return path

    def _format_kafka_storage(self, artifacts: Artifacts) -> None:
        # KRaft storage must be formatted once with a cluster id (16 random bytes, base64url).
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        argv = [
            *self._java_command(artifacts),
            "kafka.tools.StorageTool",
            "format",
            # One argument: an id that starts with "-" (1 in 64) is not read as an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(self._kafka_properties()),
        ]
        log_path = self._processes[KAFKA].log_path
        with log_path.open("ab") as log_file:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise StackError(
                f"formatting Kafka's storage failed (exit {result.returncode}); last lines of "
                f"{log_path}:\n{self._processes[KAFKA].log_tail()}"
            )

    def _admin(self) -> AdminClient:
        # A client per call: a long-lived one would log reconnect errors after a broker stop.
        return AdminClient({"bootstrap.servers": self.bootstrap_servers})

    def _assert_partitions(
        self, admin: AdminClient, names: list[str], partitions: int, deadline: float
    ) -> None:
        pending = set(names)
        while pending:
            metadata = admin.list_topics(timeout=5)
            for name in sorted(pending):
                topic = metadata.topics.get(name)
                if topic is None or topic.error is not None:
                    continue  # metadata can lag a creation by a moment
                if len(topic.partitions) != partitions:
                    raise StackError(
                        f"topic {name!r} has {len(topic.partitions)} partitions, expected "
                        f"{partitions}; delete it or start from a fresh state_dir"
                    )
                pending.discard(name)
            if pending and time.monotonic() >= deadline:
                raise StackError(f"topics {sorted(pending)} did not appear in Kafka's metadata")
            if pending:
                time.sleep(0.2)

    def _kafka_ready(self) -> bool:
        # Cheap TCP check first, so librdkafka does not log connection errors while the JVM boots.
        if not _port_in_use(self._ports[KAFKA]):
            return False
        metadata = self._admin().list_topics(timeout=5)
        return bool(metadata.brokers)

    def _mongo_ready(self) -> bool:
        client: MongoClient[dict[str, Any]] = MongoClient(
            self.mongo_url, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        )
        with client:
            client.admin.command("ping")
        return True

    def _s3_ready(self) -> bool:
        if not _port_in_use(self._ports[S3]):
            return False
        self.s3_client().list_buckets()  # signed: the gateway and its filer both answer
        return True


def _port_in_use(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False
