"""Benchmark: the entries export as a user gets it from `make run DATA=dir` (`make bench-stack`).

For each size it generates a hostile dataset (devstack.generate, cached under
.cache/bench-data), starts `python -m devstack run --data DIR` exactly as `make run` does,
requests the entries export of the big campaign over REST and polls it to FINISHED, then
stops the stack. It prints, per size: the dataset load time, the export's rows and rows/s
(from the record's triggeredAt/finishedAt), the worker's RSS before the export and its peak,
and the time of the largest size against the smallest scaled by rows. With `--repeat N` each
size's stack runs the export N times in a row (each export is a new request) and the ratio
compares the medians: the 100,000-user export lasts seconds, so one run alone moves the
ratio by whatever else the machine did in those seconds.

    make bench-stack                                  # 100k and 1M users, 3 exports each
    python -m bench.stack_export --users 20000        # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devstack.generate import BIG_CAMPAIGN_ID, GENERATOR_VERSION, write_generated_dataset
from devstack.worker import free_port

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
RESULTS = Path(__file__).parent / "results"
_TOKEN = re.compile(r"export TOKEN=(\S+)")
_LOADED = re.compile(r"devstack: loaded \S+ in ([0-9.]+)s")
_USERS_LOADED = re.compile(r"loaded [0-9]+ documents into \S+\.users in ([0-9.]+)s")
_START_TIMEOUT = 1800.0  # generating nothing, loading 1M users: minutes, not hours


@dataclass(frozen=True)
class Result:
    users: int
    rows: int
    load_seconds: float
    users_load_seconds: float
    export_seconds: float
    rows_per_second: float
    wall_seconds: float
    worker_rss_before_mib: float
    worker_peak_rss_mib: float
    worker_cpu_seconds: float
    mongo_cpu_seconds: float
    heartbeat_ms_p50: float
    heartbeat_ms_p99: float
    heartbeat_ms_max: float


def dataset(users: int, seed: int) -> Path:
    """The generated dataset for `users`, written once and reused by later runs."""
    directory = CACHE / "bench-data" / f"users-{users}-seed-{seed}-v{GENERATOR_VERSION}"
    done = directory / ".complete"
    if not done.exists():
        started = time.monotonic()
        counts = write_generated_dataset(directory, users=users, seed=seed)
        done.write_text(json.dumps(asdict(counts)) + "\n")
        print(f"generated {directory} in {time.monotonic() - started:.0f}s: {counts}", flush=True)
    return directory


def _status_kib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _pid_of(*words: str) -> int:
    """The process whose command line holds all these arguments."""
    wanted = [w.encode() for w in words]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(any(w in arg for arg in argv) for w in wanted):
            return int(proc.name)
    raise RuntimeError(f"no process with {words} in its command line")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _call(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_one(users: int, seed: int, timeout: float, repeat: int = 1) -> list[Result]:
    """Start the stack on the dataset and run the export `repeat` times, one after another."""
    data = dataset(users, seed)
    web_port = free_port()
    state = CACHE / f"bench-stack-state-{users}"
    argv = [sys.executable, "-m", "devstack", "run", "--data", str(data)]
    argv += ["--state-dir", str(state), "--web-port", str(web_port)]
    for name in ("--kafka-port", "--mongo-port", "--s3-port"):
        argv += [name, str(free_port())]
    log_path = CACHE / f"bench-stack-{users}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            token, load_seconds, users_load_seconds = _wait_ready(proc, log)
            pid = _pid_of("export_service", str(web_port))
            mongo_pid = _pid_of("ferretdb", str(state))
            return [
                _export_once(
                    users,
                    f"http://127.0.0.1:{web_port}",
                    token,
                    (pid, mongo_pid),
                    (load_seconds, users_load_seconds),
                    timeout,
                )
                for _ in range(repeat)
            ]
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _export_once(
    users: int,
    base: str,
    token: str,
    pids: tuple[int, int],
    loaded: tuple[float, float],
    timeout: float,
) -> Result:
    """One entries export of the big campaign over REST, polled to its end, measured."""
    pid, mongo_pid = pids
    rss_before = _status_kib(pid, "VmRSS") / 1024
    cpu_before = _cpu_seconds(pid), _cpu_seconds(mongo_pid)
    api = f"{base}/campaigns/{BIG_CAMPAIGN_ID}/exports"
    beats = _Heartbeats(f"{base}/heartbeat")
    started = time.monotonic()
    export = _call(api, token, {"exportType": "entries"})
    deadline = started + timeout
    while export["status"] in ("PENDING", "TRIGGERED"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the export did not finish in {timeout:.0f}s: {export}")
        time.sleep(0.5)
        export = _call(f"{api}/{export['id']}", token)
    wall = time.monotonic() - started
    beats.stop()
    if export["status"] != "FINISHED":
        raise RuntimeError(f"the export ended {export['status']}: {export.get('error')}")
    seconds = (_timestamp(export["finishedAt"]) - _timestamp(export["triggeredAt"])).total_seconds()
    rows = int(export["rowCount"])
    return Result(
        users=users,
        rows=rows,
        load_seconds=loaded[0],
        users_load_seconds=loaded[1],
        export_seconds=seconds,
        rows_per_second=rows / seconds if seconds > 0 else float("inf"),
        wall_seconds=wall,
        worker_rss_before_mib=rss_before,
        # The high-water mark since the worker started: flat across repeats if nothing grows.
        worker_peak_rss_mib=_status_kib(pid, "VmHWM") / 1024,
        worker_cpu_seconds=_cpu_seconds(pid) - cpu_before[0],
        mongo_cpu_seconds=_cpu_seconds(mongo_pid) - cpu_before[1],
        **beats.summary(),
    )


class _Heartbeats:
    """GET /heartbeat of the worker every 50 ms while the export runs, timed."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self.ms: list[float] = []
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            with urllib.request.urlopen(self._url, timeout=30) as reply:
                reply.read()
            self.ms.append((time.perf_counter() - start) * 1000)
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        values = self.ms if len(self.ms) >= 2 else [*self.ms, 0.0, 0.0]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return {
            "heartbeat_ms_p50": round(cuts[49], 1),
            "heartbeat_ms_p99": round(cuts[98], 1),
            "heartbeat_ms_max": round(max(values), 1),
        }


def _wait_ready(proc: subprocess.Popen[str], log: Any) -> tuple[str, float, float]:
    """Read devstack's output until its banner: the token, the load time, the users' part."""
    assert proc.stdout is not None
    token: str | None = None
    load_seconds = users_seconds = float("nan")
    deadline = time.monotonic() + _START_TIMEOUT
    for line in proc.stdout:
        log.write(line)
        log.flush()
        if match := _LOADED.search(line):
            load_seconds = float(match.group(1))
        if match := _USERS_LOADED.search(line):
            users_seconds = float(match.group(1))
        if match := _TOKEN.search(line):
            token = match.group(1)
        if token and line.startswith("Ctrl-C stops"):
            # Keep draining the output so that devstack never blocks on a full pipe.
            _drain(proc, log)
            return token, load_seconds, users_seconds
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"devstack did not become ready; see {log.name}")


def _drain(proc: subprocess.Popen[str], log: Any) -> None:
    def copy() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)

    threading.Thread(target=copy, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per export, seconds")
    parser.add_argument("--results", default="stack_export.json", help="file in bench/results")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="exports per size on one stack (the time ratio then compares medians)",
    )
    args = parser.parse_args()

    runs = [run_one(users, args.seed, args.timeout, args.repeat) for users in args.users]
    results = [result for size in runs for result in size]
    print()
    print("entries export through `make run DATA=dir` (devstack run), big campaign:")
    print(
        f"{'users':>9} {'rows':>9} {'load s':>8} {'(users)':>8} {'export s':>9} {'rows/s':>8} "
        f"{'RSS before':>11} {'RSS peak':>9} {'worker CPU s':>13} {'FerretDB CPU s':>15} "
        f"{'heartbeat p99/max ms':>21}"
    )
    for r in results:
        print(
            f"{r.users:>9} {r.rows:>9} {r.load_seconds:>8.1f} {r.users_load_seconds:>8.1f} "
            f"{r.export_seconds:>9.1f} "
            f"{r.rows_per_second:>8.0f} {r.worker_rss_before_mib:>9.0f}Mi "
            f"{r.worker_peak_rss_mib:>7.0f}Mi {r.worker_cpu_seconds:>13.1f} "
            f"{r.mongo_cpu_seconds:>15.1f} "
            f"{r.heartbeat_ms_p99:>10.1f} / {r.heartbeat_ms_max:>8.1f}"
        )
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        small_time = statistics.median(r.export_seconds for r in small)
        large_time = statistics.median(r.export_seconds for r in large)
        users_ratio = large[0].users / small[0].users
        print(
            f"time of {large[0].users} users / time of {small[0].users} users"
            f"{' (medians)' if args.repeat > 1 else ''}: {large_time / small_time:.1f}x "
            f"for {users_ratio:.0f}x the users ({large[0].rows / small[0].rows:.1f}x the rows)"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.results
    out.write_text(
        json.dumps(
            {"machine": f"{os.cpu_count()} cpus", "results": [asdict(r) for r in results]},
            indent=2,
        )
        + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
