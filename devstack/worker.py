"""The one way to run `python -m export_service worker` as a child process: free port,
environment, log file, waiting until it answers, stopping it. Used by `devstack run`, the
e2e and integration tests and the benchmarks (it runs in its own session and gets SIGTERM
when its parent dies, see devstack.process)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.process import spawn_in_own_group

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerExited(RuntimeError):
    """The worker process ended before it was ready."""


@dataclass
class WorkerProcess:
    """A running worker and where it logs."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def spawn(
        cls,
        env: Mapping[str, str],
        log_path: Path,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        log_level: str | None = None,
    ) -> WorkerProcess:
        """Start a worker with `env` over this process's environment; returns at once.

        Its own session (a kill of the group reaches its children), its own data directory
        (default: beside the log), stdout and stderr into `log_path`.
        """
        port = port or free_port()
        data_dir = data_dir or log_path.parent / f"worker-data-{port}"
        full_env = dict(os.environ) | dict(env) | {"WEB_PORT": str(port), "DATA_DIR": str(data_dir)}
        argv = [sys.executable, "-m", "export_service", "worker", "--web-port", str(port)]
        if log_level is not None:
            argv += ["-l", log_level]
        process = spawn_in_own_group(argv, log_path=log_path, env=full_env, cwd=ROOT, header=False)
        return cls(process, port, log_path)

    def answers(self, path: str) -> bool:
        """True when GET `path` answers 200 (False while it is not listening yet)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def wait_ready(self, *, path: str = "/ready", timeout: float = 120.0) -> float:
        """Seconds until GET `path` answered 200; WorkerExited if the process ended first,
        TimeoutError past `timeout`."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WorkerExited(
                    f"the worker exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.answers(path):
                return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"the worker did not answer {path} within {timeout:g} s")

    def stop(self, grace_seconds: float = 30.0) -> int | None:
        """SIGTERM to its process group, then SIGKILL after `grace_seconds`; the exit code."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        self.process.kill()
        self.process.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
