"""Benchmark: entries export of generated rows through the engine into S3 (moto server).

Reports rows/s of the pipeline (source -> joins -> CSV -> S3 multipart), the same rows
through a bare csv.writer in the same run (the baseline), their ratio, and peak RSS of
each run (every run in its own process so that peaks do not mix).

    make bench                    # 1M rows (and 100k, to show memory does not grow)
    python -m bench.entries_export --rows 200000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in its own process (its memory is not counted as ours)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def run_baseline(rows: int) -> dict[str, Any]:
    """The same generated rows and joined user fields through a bare csv.writer."""
    from bench.generated_source import MARKETS, entries, user

    class Null:
        def write(self, s: str) -> int:
            return len(s)

    writer = csv.writer(Null(), lineterminator="\r\n")
    start = time.perf_counter()
    for e in entries(rows):
        u = user(e["userId"])
        m = MARKETS[e["marketId"]]
        o = e["optIns"]
        writer.writerow(
            [
                e["_id"],
                e["userId"],
                u["email"],
                u["firstName"],
                u["lastName"],
                u["phone"],
                u["postalCode"],
                u["countryCode"],
                e["locale"],
                e["marketId"],
                m["name"],
                m["city"],
                m["state"],
                m["eventDate"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "true",
                e["verified"],
                o["artist"],
                o["sms"],
                o["livenation"],
                e["createdAt"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                e["campaignId"],
                "Benchmark Tour",
            ]
        )
    seconds = time.perf_counter() - start
    return {"kind": "baseline", "rows": rows, "seconds": seconds, "peak_rss_mib": _peak_rss_mib()}


async def _pipeline(rows: int, endpoint: str) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    from pydantic import SecretStr

    from bench.generated_source import GeneratedSource
    from core.settings import Settings
    from core.wiring import open_deps
    from exporters.registry import get_spec
    from exporters.runner import RunOptions, load_context, run_export

    settings = Settings(
        s3_endpoint_url=endpoint,
        s3_access_key_id=SecretStr("bench"),
        s3_secret_access_key=SecretStr("bench"),
    )
    async with AsyncExitStack() as stack:
        deps = await open_deps(settings, stack)
        client_store = deps.store
        source = GeneratedSource(rows)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket="exports")
        spec = get_spec("entries")
        ctx = await load_context(spec, source, export_id="bench", campaign_id="bench", params={})
        options = RunOptions(
            bucket_names=settings.bucket_map(),
            batch_size=settings.mongo_batch_size,
            part_size=settings.s3_part_size_bytes,
            max_in_flight=settings.s3_max_concurrent_parts,
        )
        start = time.perf_counter()
        result = await run_export(spec, ctx, source=source, store=client_store, options=options)
        seconds = time.perf_counter() - start
    return {
        "kind": "pipeline",
        "rows": result.row_count,
        "seconds": seconds,
        "bytes": result.objects[0].size,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _child(kind: str, rows: int, endpoint: str | None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.entries_export", "--child", kind, "--rows", str(rows)]
        + (["--endpoint", endpoint] if endpoint else []),
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["baseline", "pipeline"])
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.child == "baseline":
        print(json.dumps(run_baseline(args.rows)))
        return
    if args.child == "pipeline":
        print(json.dumps(asyncio.run(_pipeline(args.rows, args.endpoint))))
        return

    with moto_server() as endpoint:
        baseline = _child("baseline", args.rows, None)
        small = _child("pipeline", max(1, args.rows // 10), endpoint)
        full = _child("pipeline", args.rows, endpoint)
    base_rate = baseline["rows"] / baseline["seconds"]
    rate = full["rows"] / full["seconds"]
    report = {
        "rows": args.rows,
        "pipeline_rows_per_s": round(rate),
        "baseline_rows_per_s": round(base_rate),
        "ratio_pipeline_to_baseline": round(rate / base_rate, 3),
        "pipeline_mib_per_s": round(full["bytes"] / full["seconds"] / 2**20, 2),
        "peak_rss_mib": {
            f"pipeline_{small['rows']}_rows": round(small["peak_rss_mib"], 1),
            f"pipeline_{full['rows']}_rows": round(full["peak_rss_mib"], 1),
            f"baseline_{baseline['rows']}_rows": round(baseline["peak_rss_mib"], 1),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "entries_export.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
