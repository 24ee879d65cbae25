"""The AsyncAPI document the worker serves describes what it publishes: the request a REST
view puts on the exports topic and the result on export-events, keys included.

(Every other e2e test checks the events it produces and reads through KafkaClient.)
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from core.asyncapi import build_document
from exporters.registry import SPECS
from tests.e2e.conftest import KafkaClient, Worker

CAMPAIGN = "cmp-e2e"


def test_the_served_document_is_the_one_the_code_builds(worker: Worker) -> None:
    status, served = worker.request("GET", "/asyncapi.json", token="")
    assert status == 200
    assert served == build_document(SPECS)


def test_a_rest_request_and_its_result_are_the_documented_messages(
    worker: Worker, kafka: KafkaClient
) -> None:
    requests = kafka.consumer("exports")
    results = kafka.consumer("export-events")
    status, created = worker.request(
        "POST",
        f"/campaigns/{CAMPAIGN}/exports",
        {"exportType": "codeWave", "params": {"waveId": f"w-{uuid.uuid4().hex}"}},
    )
    assert status == 202, created
    export_id = created["id"]

    def of_this_export(message: dict[str, Any]) -> bool:
        return bool(message.get("exportId") == export_id)

    # Each message is checked against the served document on the way (KafkaClient).
    request = kafka.find_message(requests, of_this_export)
    assert request.key() == export_id.encode()
    body = orjson.loads(request.value())
    assert (body["type"], body["requestedBy"]) == ("export.requested", "e2e-admin")
    result = kafka.find_message(results, of_this_export)
    assert result.key() == export_id.encode()
    body = orjson.loads(result.value())
    assert body["type"] == "export.finished"
    assert body["keys"] == [o["key"] for o in body["objects"]]
    assert kafka.checked["export.requested"] >= 1
    assert kafka.checked["export.finished"] >= 1
