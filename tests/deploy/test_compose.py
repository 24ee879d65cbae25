"""docker-compose.yml, parsed: services, pinned images, ports, healthchecks, start order, and
the service's environment checked against the settings module.

`docker compose` cannot run here (no Docker engine); test_compose_init.py runs the init script
itself against the local stack.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.settings import Settings
from devstack.dataset import read_jsonl
from devstack.demo import write_demo_dataset
from tests.deploy.conftest import COMPOSE_FILE, CREDENTIALS, ROOT, SETTING_NAMES

SERVICES = {"kafka", "mongo", "minio", "init", "service"}
OPTIONAL_SERVICES = {"jaeger"}  # behind a profile: `docker compose --profile tracing up`
# What the stack cannot work without: where the dependencies are and what they are called.
REQUIRED_SETTINGS = {
    "KAFKA_BROKER_URL",
    "MONGO_URL",
    "MONGO_DATABASE",
    "S3_ENDPOINT_URL",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_ADDRESSING_STYLE",
    "S3_BUCKET_EXPORTS",
    "S3_BUCKET_SCORING",
    "S3_BUCKET_VF_SCORING",
    "S3_BUCKET_SFMC",
    "TOPIC_EXPORTS",
    "TOPIC_EXPORT_EVENTS",
    "TOPIC_DLQ",
    "WEB_HOST",
    "WEB_PORT",
    "DATA_DIR",
    "JWT_SECRET",
}
# The init script's own variables, besides the service's settings.
INIT_ONLY = {"DEMO_DATA_DIR", "INIT_WAIT_SECONDS"}
DEMO_DIR = ROOT / "deploy" / "compose" / "demo-data"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping (NAME: value)"
    return env


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None, url
    return parts.hostname, parts.port


def test_the_stack_has_its_five_services(services: dict[str, dict[str, Any]]) -> None:
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == SERVICES
    assert set(services) - default == OPTIONAL_SERVICES
    assert services["jaeger"]["profiles"] == ["tracing"]


def test_every_image_is_pinned_by_tag(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag not in {"", "latest", "stable", "main"}, f"{name}: {image}"
        assert "/" not in tag
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["mongo"]["image"] == "mongo:7.0.14"
    assert re.fullmatch(
        r"minio/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", services["minio"]["image"]
    )


def test_service_and_init_are_built_from_this_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("service", "init"):
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == ROOT / "Dockerfile"
    # One image for both: init runs the service image with its own entrypoint.
    assert services["service"]["image"] == services["init"]["image"]


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    ports = {name: set(s.get("ports", [])) for name, s in services.items()}
    assert ports["kafka"] == {"9092:9092"}
    assert ports["mongo"] == {"27017:27017"}
    assert ports["minio"] == {"9000:9000", "9001:9001"}
    assert ports["service"] == {"6066:6066"}
    assert ports["init"] == set()
    published = [p.split(":")[0] for s in ports.values() for p in s]
    assert len(published) == len(set(published)), "a host port is published twice"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "mongo", "minio", "service"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        for option in ("interval", "timeout", "retries"):
            assert option in check, f"{name}: healthcheck.{option}"
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "mongosh" in services["mongo"]["healthcheck"]["test"]
    assert services["minio"]["healthcheck"]["test"][1:] == ["mc", "ready", "local"]
    assert "/ready" in " ".join(services["service"]["healthcheck"]["test"])
    # A one-shot job: the image's HEALTHCHECK must not keep it "starting".
    assert services["init"]["healthcheck"] == {"disable": True}


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    healthy = {"condition": "service_healthy"}
    assert services["init"]["depends_on"] == {"kafka": healthy, "mongo": healthy, "minio": healthy}
    assert services["service"]["depends_on"] == {
        "init": {"condition": "service_completed_successfully"},
        "kafka": healthy,
        "mongo": healthy,
        "minio": healthy,
    }
    assert services["init"]["restart"] == "no"


def test_kafka_is_a_single_kraft_node_without_topic_auto_creation(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_NUM_PARTITIONS"] == "1"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    node, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == env["KAFKA_NODE_ID"]
    controller_port = voter.rpartition(":")[2]
    assert f"CONTROLLER://:{controller_port}" in env["KAFKA_LISTENERS"].split(",")
    # A KRaft cluster id is 16 bytes, URL-safe base64 without padding.
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert env["KAFKA_LOG_DIRS"] in {v.split(":")[1] for v in services["kafka"]["volumes"]}


def test_every_environment_value_is_a_string(services: dict[str, dict[str, Any]]) -> None:
    # Compose rejects booleans in `environment`; strings also keep YAML from rewriting values.
    for name, service in services.items():
        for key, value in environment(service).items():
            assert isinstance(value, str), f"{name}: {key}={value!r}"


def test_service_environment_is_made_of_real_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["service"])
    # OpenTelemetry's own variables configure tracing (core/tracing.py reads them).
    settings_env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    assert set(settings_env) - SETTING_NAMES == set(), "not a setting in core/settings.py"
    assert REQUIRED_SETTINGS - set(env) == set(), "the compose stack needs these"
    assert env["WEB_HOST"] == "0.0.0.0"
    assert env["WEB_PORT"] == "6066"
    # The values parse: what the worker will see at start-up.
    settings = Settings.model_validate({k.lower(): v for k, v in settings_env.items()})
    assert settings.web_port == 6066
    assert settings.jwt_verification_key(), "the demo needs a JWT key to mint tokens with"


def test_init_environment_matches_the_service(services: dict[str, dict[str, Any]]) -> None:
    init, service = environment(services["init"]), environment(services["service"])
    assert set(init) - SETTING_NAMES - INIT_ONLY == set()
    shared = {k for k in init if k in SETTING_NAMES}
    assert {k: init[k] for k in shared} == {k: service[k] for k in shared}
    for name in ("KAFKA_BROKER_URL", "MONGO_URL", "S3_ENDPOINT_URL", "TOPIC_EXPORTS"):
        assert name in init
    assert {k for k in init if k.startswith("S3_BUCKET_")} == {
        k for k in SETTING_NAMES if k.startswith("S3_BUCKET_")
    }
    # No credential the init does not need.
    assert not {k for k in init if k.startswith("JWT_")}


def test_service_addresses_point_at_the_compose_services(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["service"])
    kafka = environment(services["kafka"])
    broker = env["KAFKA_BROKER_URL"].removeprefix("kafka://")
    assert f"PLAINTEXT://{broker}" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"PLAINTEXT://:{broker.rpartition(':')[2]}" in kafka["KAFKA_LISTENERS"].split(",")
    assert host_port(env["MONGO_URL"]) == ("mongo", 27017)
    assert host_port(env["S3_ENDPOINT_URL"]) == ("minio", 9000)
    minio = environment(services["minio"])
    assert env["S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses shorter passwords"


def test_credentials_are_demo_values_only(services: dict[str, dict[str, Any]]) -> None:
    # The compose file is a local throw-away stack; it must not carry anything that looks real.
    env = environment(services["service"])
    for name in CREDENTIALS & set(env):
        assert re.search(r"minio|mongo:|demo", env[name]), name


def test_service_keeps_faust_state_in_a_volume(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["service"])
    targets = {v.split(":")[1] for v in services["service"]["volumes"]}
    assert env["DATA_DIR"] in targets
    assert int(services["service"]["stop_grace_period"].rstrip("s")) >= 30


def test_init_runs_the_mounted_script_on_the_mounted_demo_data(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["init"]
    mounts: dict[str, Path] = {}
    for volume in init["volumes"]:
        source, target, *mode = volume.split(":")
        assert mode == ["ro"]
        mounts[target] = ROOT / source
    entrypoint = init["entrypoint"]
    assert entrypoint[0] == "python"

    def on_host(path: str) -> Path:
        for target, source in mounts.items():
            if path.startswith(target + "/"):
                return source / path.removeprefix(target + "/")
        raise AssertionError(f"{path} is not inside a mounted folder")

    assert on_host(entrypoint[1]) == ROOT / "deploy" / "compose" / "init.py"
    assert on_host(environment(init)["DEMO_DATA_DIR"]) == DEMO_DIR


def test_committed_demo_data_is_what_the_generator_writes(tmp_path: Path) -> None:
    write_demo_dataset(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DEMO_DIR) for p in DEMO_DIR.rglob("*") if p.is_file())
    assert committed == generated
    for relative in generated:
        assert (DEMO_DIR / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative


def test_demo_data_is_one_extended_json_document_per_line() -> None:
    # What mongoexport writes and mongoimport reads: one relaxed Extended JSON object a line.
    for path in sorted(DEMO_DIR.glob("*.jsonl")):
        documents = list(read_jsonl(path))
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
        assert len(documents) == len(lines)
        assert all(isinstance(d["_id"], str) for d in documents), path.name
