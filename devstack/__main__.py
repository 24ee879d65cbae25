"""Command line of the local stack: `python -m devstack run|prepare` (what `make run` calls)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devstack.build import DEFAULT_CACHE_DIR, prepare
from devstack.demo import write_demo_dataset
from devstack.process import ProcessError
from devstack.stack import LocalStack, StackError
from devstack.worker import WorkerExited, WorkerProcess
from web.devtoken import mint_token

log = logging.getLogger("devstack")

TOPICS = ("exports", "export-events", "exports-dlq")
WORKER_START_TIMEOUT_SECONDS = 120.0
# Faust commits offsets and flushes its table on SIGTERM; give it time before SIGKILL.
WORKER_STOP_GRACE_SECONDS = 30.0
# The local worker verifies HS256 tokens with this secret unless JWT_SECRET is set: a
# development key for the embedded stack only, never for a deployment.
DEV_JWT_SECRET = "devstack-local-only-jwt-secret-0123456789"  # noqa: S105 (published dev key)
BANNER_TOKEN_SECONDS = 12 * 3600


def _jwt_secret() -> str:
    return os.environ.get("JWT_SECRET") or DEV_JWT_SECRET


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s")
    try:
        if args.command == "prepare":
            started = time.monotonic()
            artifacts = prepare(args.cache_dir)
            print(f"kafka jars: {artifacts.kafka_libs}")
            print(f"ferretdb:   {artifacts.ferretdb_bin}")
            print(f"helm:       {artifacts.helm_bin or 'not built (see the log above)'}")
            print(f"ready in {time.monotonic() - started:.1f}s")
            return 0
        return _run(args)
    except (StackError, ProcessError, RuntimeError, ValueError) as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="cache of jars and binaries"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="only fetch/build Kafka and FerretDB into the cache")
    run = commands.add_parser(
        "run", help="start the stack, load a dataset and run the worker until Ctrl-C"
    )
    run.add_argument(
        "--data", type=Path, help="dataset directory (default: the demo, in CACHE/demo-data)"
    )
    run.add_argument("--state-dir", type=Path, help="wiped at start (default: CACHE/state)")
    run.add_argument("--kafka-port", type=int, default=9092, help="default: %(default)s")
    run.add_argument("--mongo-port", type=int, default=27017, help="default: %(default)s")
    run.add_argument("--s3-port", type=int, default=5000, help="default: %(default)s")
    run.add_argument("--web-port", type=int, default=6066, help="worker's HTTP port (%(default)s)")
    return parser


class _StopRequested(Exception):
    """SIGTERM arrived; unwinds like Ctrl-C so every `finally` runs."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _run(args: argparse.Namespace) -> int:
    if args.data is not None and not args.data.is_dir():
        raise StackError(f"--data {args.data} is not a directory")
    # SIGTERM (from make, systemd, CI) must clean up exactly like Ctrl-C does. SIGINT is set
    # explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = LocalStack(
        cache_dir=args.cache_dir,
        state_dir=args.state_dir,
        kafka_port=args.kafka_port,
        mongo_port=args.mongo_port,
        s3_port=args.s3_port,
    )
    worker: WorkerProcess | None = None
    try:
        stack.start()
        campaign_id = _seed(stack, args.data, args.cache_dir / "demo-data")
        worker_log = stack.state_dir / "logs" / "worker.log"
        worker = _start_worker(stack, args.web_port, worker_log)
        _print_banner(stack, args.web_port, campaign_id, worker_log)
        return _wait_until_stopped(stack, worker.process, worker_log)
    except (KeyboardInterrupt, _StopRequested):
        print("\ndevstack: stopping", file=sys.stderr)
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Worker first, so it never sees its dependencies vanish under it.
        if worker is not None:
            worker.stop(WORKER_STOP_GRACE_SECONDS)
        stack.stop()


def _seed(stack: LocalStack, data: Path | None, demo_dir: Path) -> str | None:
    """Create topics and buckets and load the dataset; the demo campaign id if it is the demo."""
    stack.create_topics(TOPICS, partitions=1)
    stack.create_buckets(stack.bucket_names)
    campaign_id = None
    if data is None:
        campaign_id = write_demo_dataset(demo_dir)
        data = demo_dir
    started = time.monotonic()
    counts = stack.load_dataset(data)
    log.info(
        "loaded %s in %.1fs: %s",
        data,
        time.monotonic() - started,
        ", ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return campaign_id


def _start_worker(stack: LocalStack, web_port: int, log_path: Path) -> WorkerProcess:
    # The stack's Kafka is new at every start, so Faust's local table state must be too.
    env = stack.env | {"JWT_ALGORITHM": "HS256", "JWT_SECRET": _jwt_secret()}
    log.info("starting the worker (log: %s)", log_path)
    worker = WorkerProcess.spawn(
        env,
        log_path,
        port=web_port,
        data_dir=stack.state_dir / "worker-data",
        log_level="info",
    )
    try:
        worker.wait_ready(timeout=WORKER_START_TIMEOUT_SECONDS)
    except (WorkerExited, TimeoutError) as exc:
        worker.stop(WORKER_STOP_GRACE_SECONDS)
        raise StackError(f"{exc}; last lines of {log_path}:\n{_tail(log_path)}") from exc
    return worker


def _print_banner(
    stack: LocalStack, web_port: int, campaign_id: str | None, worker_log: Path
) -> None:
    api = f"http://127.0.0.1:{web_port}"
    campaign = campaign_id or "<campaignId>"
    secret = _jwt_secret()
    token = mint_token(secret, sub="devstack-admin", supreme=True, expires_in=BANNER_TOKEN_SECONDS)
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines = [
        "",
        "Local stack ready:",
        f"  Kafka     {stack.bootstrap_servers}  (topics: {', '.join(TOPICS)})",
        f"  MongoDB   {stack.mongo_url}{stack.mongo_database}  (FerretDB)",
        f"  S3        {stack.s3_endpoint_url}  (SeaweedFS; key/secret: testing/testing)",
        f"  worker    {api}  (/heartbeat, /ready)",
        f"  logs      {stack.state_dir / 'logs'}  (worker: {worker_log.name})",
        "",
        "A supreme token (12 h) for the API; the worker checks HS256 signatures with",
        f"JWT_SECRET={secret}",
        f"  export TOKEN={token}",
        f"Other tokens: JWT_SECRET={secret} .venv/bin/python -m web.devtoken --sub you "
        f"--campaign {campaign}",
        "",
        "The command line client (or the admin console, below):",
        f"  export EXPORT_SERVICE_URL={api} EXPORT_SERVICE_TOKEN=$TOKEN",
        f"  .venv/bin/exportctl request entries --campaign {campaign} --watch",
        f"  .venv/bin/exportctl list --campaign {campaign}",
        f"  .venv/bin/exportctl download <exportId> --campaign {campaign} --dir exports/",
        f"Admin console: {api}/console/  (sign in with $TOKEN)",
        "Or with curl:",
        f"  curl -s -X POST {api}/campaigns/{campaign}/exports {auth} "
        "-H 'Content-Type: application/json' -d '{\"exportType\":\"entries\"}'",
        f"  curl -s {auth} {api}/campaigns/{campaign}/exports/<exportId>",
        f"API description: {api}/openapi.json  (Kafka events: {api}/asyncapi.json)",
        "",
        "Ctrl-C stops the worker, then the stack.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _wait_until_stopped(
    stack: LocalStack, worker: subprocess.Popen[bytes], worker_log: Path
) -> int:
    """Block until Ctrl-C/SIGTERM (exit 0) or until the worker or a service dies (exit 1)."""
    stopped = threading.Event()
    while not stopped.wait(1.0):
        if worker.poll() is not None:
            print(
                f"devstack: the worker exited with code {worker.returncode}; last lines of "
                f"{worker_log}:\n{_tail(worker_log)}",
                file=sys.stderr,
            )
            return 1
        for process in stack.processes.values():
            if not process.running:
                print(
                    f"devstack: {process.name} exited with code {process.returncode}; last "
                    f"lines of {process.log_path}:\n{process.log_tail()}",
                    file=sys.stderr,
                )
                return 1
    return 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
