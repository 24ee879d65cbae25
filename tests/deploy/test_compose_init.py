"""deploy/compose/init.py, run for real against the local stack (Kafka, FerretDB, moto).

In compose it runs in the service image; here it runs with this virtualenv's interpreter, which
has the same libraries, and the compose file's own environment with the addresses swapped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from devstack.stack import LocalStack
from tests.deploy.conftest import COMPOSE_FILE, ROOT

INIT = ROOT / "deploy" / "compose" / "init.py"
DEMO_DIR = ROOT / "deploy" / "compose" / "demo-data"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(cache_dir=ROOT / ".cache", state_dir=tmp_path_factory.mktemp("init")) as s:
        yield s


def init_env(stack: LocalStack) -> dict[str, str]:
    """The init service's environment from docker-compose.yml, pointed at the local stack."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    env: dict[str, str] = dict(compose["services"]["init"]["environment"])
    addresses = {k: stack.env[k] for k in ("KAFKA_BROKER_URL", "MONGO_URL", "S3_ENDPOINT_URL")}
    credentials = {k: stack.env[k] for k in ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")}
    return env | addresses | credentials | {"DEMO_DATA_DIR": str(DEMO_DIR)}


def run_init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(INIT)],
        env={"PATH": os.environ["PATH"], **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_init_creates_topics_and_buckets_and_loads_the_demo_twice(stack: LocalStack) -> None:
    env = init_env(stack)
    first = run_init(env)
    assert first.returncode == 0, first.stdout + first.stderr
    # Run again (`docker compose run init`): existing topics and buckets are kept, data reloaded.
    second = run_init(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "created topics" not in second.stdout
    assert "created bucket" not in second.stdout

    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    topics = admin.list_topics(timeout=10).topics
    for name in (env["TOPIC_EXPORTS"], env["TOPIC_EXPORT_EVENTS"], env["TOPIC_DLQ"]):
        assert len(topics[name].partitions) == 1, name

    s3 = _s3(stack)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {v for k, v in env.items() if k.startswith("S3_BUCKET_")} <= buckets
    # Objects expire with their status records (STATUS_RETENTION_DAYS, 90 by default),
    # except in vf-scoring, which also holds the SMS waves the service reads.
    rules = s3.get_bucket_lifecycle_configuration(Bucket=env["S3_BUCKET_EXPORTS"])["Rules"]
    assert {r["ID"]: r.get("Expiration", {}).get("Days") for r in rules} == {
        "abort-incomplete-uploads": None,
        "export-retention": 90,
    }
    vf_rules = s3.get_bucket_lifecycle_configuration(Bucket=env["S3_BUCKET_VF_SCORING"])["Rules"]
    assert [r["ID"] for r in vf_rules] == ["abort-incomplete-uploads"]
    waves = s3.list_objects_v2(Bucket=env["S3_BUCKET_VF_SCORING"], Prefix="sms-waves/")
    assert [o["Key"] for o in waves["Contents"]] == ["sms-waves/demo-campaign/wave-1.csv"]

    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_url)
    with client:
        db = client[env["MONGO_DATABASE"]]
        for path in sorted(DEMO_DIR.glob("*.jsonl")):
            lines = sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())
            assert db[path.stem].count_documents({}) == lines, path.stem
        entry = db["entries"].find_one({"_id": "entry-00001"})
        assert entry is not None
        assert entry["createdAt"].year == 2026, "dates load as dates, not as {$date: ...}"


def test_init_fails_clearly_without_a_broker_url(stack: LocalStack) -> None:
    env = init_env(stack)
    del env["KAFKA_BROKER_URL"]
    result = run_init(env)
    assert result.returncode == 1
    assert "KAFKA_BROKER_URL is not set" in result.stdout


def _s3(stack: LocalStack) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint_url,
        aws_access_key_id=stack.env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["S3_SECRET_ACCESS_KEY"],
        region_name=stack.env["S3_REGION"],
    )


def test_init_script_uses_the_service_code_the_image_ships() -> None:
    # It runs in the service image, where only the packaged code and its dependencies exist;
    # what the service also does (settings, topics, dataset loading) is not copied here.
    source = INIT.read_text("utf-8")
    for package in ("devstack", "tests", "bench"):
        assert f"from {package}" not in source
        assert f"import {package}" not in source
    for shared in ("core.settings", "core.topic_admin", "core.dataset"):
        assert f"from {shared} import" in source
    for copied in ("AIOKafkaAdminClient", "json_util", "insert_many"):
        assert copied not in source
    assert Path(INIT).stat().st_size < 20_000
