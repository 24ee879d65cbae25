"""apache/kafka (KRaft, one node) as a testcontainer that advertises its mapped host port.

testcontainers-python's KafkaContainer drives the Confluent image's own start scripts
(/etc/confluent/docker/...), so it cannot run apache/kafka. This follows what
testcontainers-java's KafkaContainer does for apache/kafka: the container waits for a starter
script, which is written once the mapped port is known, exports KAFKA_ADVERTISED_LISTENERS
with it and hands over to the image's /etc/kafka/docker/run.

Imported only inside fixtures: building a container needs a Docker engine.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from typing import Any, Self

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

CLIENT_PORT = 9092  # PLAINTEXT, advertised to clients as the mapped host port
_BROKER_PORT = 9093  # inter-broker listener, inside the container only
_CONTROLLER_PORT = 9094
_STARTER = "testcontainers_start.sh"
# Written after the script in the same archive: the wait loop never sees a half-written script.
_READY_FLAG = "testcontainers_start.ready"
_STARTUP_TIMEOUT_SECONDS = 120
# What testcontainers-java waits for with apache/kafka: the broker has joined and serves.
_READY_LOG = re.compile(r"Transitioning from RECOVERY to RUNNING")


class ApacheKafkaContainer(DockerContainer):
    """One combined broker+controller; `get_bootstrap_server()` is `host:port` for clients."""

    def __init__(self, image: str, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        self.with_exposed_ports(CLIENT_PORT)
        self.with_envs(
            CLUSTER_ID="4L6g3nShT-eMCtK--X86sw",
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_LISTENERS=(
                f"PLAINTEXT://0.0.0.0:{CLIENT_PORT},BROKER://0.0.0.0:{_BROKER_PORT},"
                f"CONTROLLER://0.0.0.0:{_CONTROLLER_PORT}"
            ),
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=(
                "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            KAFKA_INTER_BROKER_LISTENER_NAME="BROKER",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_CONTROLLER_QUORUM_VOTERS=f"1@localhost:{_CONTROLLER_PORT}",
            KAFKA_LOG_DIRS="/tmp/kraft-combined-logs",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
            KAFKA_NUM_PARTITIONS="1",
            # As in the local stack: topics come from the service's own ensure_topics (or a
            # test), never from a client that merely names them.
            KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
        )
        self.with_command(
            [
                "sh",
                "-c",
                f"while [ ! -f /tmp/{_READY_FLAG} ]; do sleep 0.1; done; exec bash /tmp/{_STARTER}",
            ]
        )

    def get_bootstrap_server(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(CLIENT_PORT)}"

    def start(self) -> Self:
        super().start()
        # Double quotes: the shell fills in the container's hostname for the broker listener.
        script = (
            "#!/bin/bash\n"
            "export KAFKA_ADVERTISED_LISTENERS="
            f'"PLAINTEXT://{self.get_bootstrap_server()},BROKER://$(hostname):{_BROKER_PORT}"\n'
            "exec /etc/kafka/docker/run\n"
        )
        self._put_files({_STARTER: script.encode(), _READY_FLAG: b""})
        strategy = LogMessageWaitStrategy(_READY_LOG)
        strategy.with_startup_timeout(_STARTUP_TIMEOUT_SECONDS)
        strategy.wait_until_ready(self)
        return self

    def _put_files(self, files: dict[str, bytes]) -> None:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for name, content in files.items():  # in order: the ready flag comes last
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mode = 0o755
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(content))
        self.get_wrapped_container().put_archive("/tmp", archive.getvalue())
