"""The short soak (`make soak` runs the long one): every export type over REST and Kafka
while the worker is SIGKILLed once and Kafka, MongoDB and S3 each restart once."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from core.asyncapi import build_document
from devstack.soak import ONCE, SoakConfig, run_soak
from exporters.registry import BY_NAME, SPECS
from tests.contract import EventContract
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_a_short_soak_loses_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("SOAK_SEED", "7"))
    # Every event the soak produces and consumes must be what the AsyncAPI document says.
    contract = EventContract(build_document(SPECS))
    checked: Counter[str] = Counter()

    def check(channel: str, value: bytes, key: bytes | None, headers: Any) -> None:
        checked[contract.check(channel, value, key=key, headers=headers)] += 1

    report = run_soak(
        SoakConfig(
            check_message=check,
            seed=seed,
            workdir=tmp_path,
            entries=2000,
            kills=1,
            pause_seconds=(1.0, 4.0),
            deadline_seconds=600,
            cache_dir=ROOT / ".cache",
        )
    )
    print(report.summary())
    assert report.ok, report.summary()
    assert report.kills == 1
    assert dict(report.restarts) == {"kafka": 1, "mongo": 1, "s3": 1}
    # Each type over REST and over Kafka (autoReminderEmail once); a REST request that
    # meets the same type's active Kafka request is its duplicate (one export, SPEC §5).
    assert sum(report.by_channel.values()) == 2 * len(BY_NAME) - len(ONCE)
    assert report.exports == report.statuses["FINISHED"] >= len(BY_NAME)
    assert report.objects_checked > 0
    assert checked["export.requested"] >= len(BY_NAME) - len(ONCE)
    assert checked["export.finished"] >= report.exports
