"""One service run as a child process: own process group, log file, readiness probe, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["ManagedProcess", "ProcessError", "spawn_in_own_group"]

# A probe returns True when the service answers; an exception counts as "not yet".
ReadyProbe = Callable[[], bool]

_POLL_INTERVAL_SECONDS = 0.2


class ProcessError(RuntimeError):
    """A managed process exited early, never became ready, or is not running."""


def spawn_in_own_group(
    argv: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    header: bool = True,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (so signals to our group never reach it), appending to
    log (after a "starting" line unless `header` is false: a worker's lines are all JSON)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        if header:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log_file.write(f"--- {stamp} starting: {' '.join(argv)}\n".encode())
            log_file.flush()
        # The child keeps its own copy of the file descriptor; ours can close right away.
        return subprocess.Popen(
            _with_parent_death_signal(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    # Last line of defence against orphans when we are SIGKILLed and atexit cannot run: the
    # kernel sends SIGTERM to the child when its parent dies. Linux ties this to the *thread*
    # that forked, so only use it from the main thread (a worker thread of an event loop's
    # executor may exit long before the stack should stop).
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


class ManagedProcess:
    """A restartable child process with a readiness probe; see LocalStack for the instances."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        probe: ReadyProbe,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_grace_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.stop_grace_seconds = stop_grace_seconds
        self._probe = probe
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped (exit {self.returncode})"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"

    @property
    def pid(self) -> int | None:
        """Process id of the last start (also its process group id), None if never started."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def start(self) -> None:
        """Spawn the process; no-op if it is already running. Does not wait for readiness."""
        if self.running:
            return
        self._popen = spawn_in_own_group(
            self.argv, log_path=self.log_path, env=self.env, cwd=self.cwd
        )

    def wait_ready(self, deadline: float) -> None:
        """Poll the probe until it answers; fail fast if the process exits. Monotonic deadline."""
        last_error = "no answer yet"
        while True:
            if not self.running:
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode} before it was ready; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self._probe():
                    return
            except Exception as exc:  # any failure of a probe means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ProcessError(
                    f"{self.name} was not ready in time (last probe: {last_error}); "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL_SECONDS)

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the whole process group (the JVM or Python server and any children)."""
        if self._popen is None:
            raise ProcessError(f"{self.name} was never started")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, sig)

    def request_stop(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting; see `stop`."""
        if self.running:
            self.send_signal(signal.SIGTERM)
            # A stopped (SIGSTOP) process only acts on SIGTERM once it runs again.
            self.send_signal(signal.SIGCONT)

    def stop(self, grace_seconds: float | None = None) -> None:
        """SIGTERM, wait up to the grace period, then SIGKILL; always reaps the process."""
        if self._popen is None:
            return
        self.request_stop()
        grace = self.stop_grace_seconds if grace_seconds is None else grace_seconds
        try:
            self._popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self._popen.wait()
        # Anything the leader left behind in its group goes too.
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its exit code."""
        if self._popen is None:
            raise ProcessError(f"{self.name} was never started")
        return self._popen.wait(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log file (for error messages)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 64 * 1024))
                data = handle.read()
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
