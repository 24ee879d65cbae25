"""The Dockerfile, read as instructions: pinned base, multi-stage, non-root, healthcheck, ports.

No Docker engine runs here, so the image is never built in tests; the healthcheck's command is
run for real against a local HTTP server instead.
"""

from __future__ import annotations

import http.server
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.conftest import DOCKERFILE, ROOT


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                values[name] = value
        return values


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # comments (also inside a continued instruction) and blank lines
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=alias))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text("utf-8"))[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_every_stage_uses_the_same_base_pinned_by_exact_tag(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "multi-stage: build the wheel in one stage, ship it in another"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stage.base), stage.base
    assert len({s.base for s in stages}) == 1


def test_the_build_stage_makes_wheels_and_the_final_stage_installs_them_offline(
    stages: list[Stage], final: Stage
) -> None:
    build = stages[0]
    assert any("pip wheel" in run for run in build.all("RUN"))
    install = " ".join(final.all("RUN"))
    assert "--no-index" in install, "the final stage installs only the wheels just built"
    assert f"from={build.name}" in install or any(
        f"--from={build.name}" in c for c in final.all("COPY")
    )
    venv = final.env()["VIRTUAL_ENV"]
    assert "venv" in install
    assert final.env()["PATH"].startswith(f"{venv}/bin:")
    # The final stage gets nothing from the build context: no sources, no tests, no caches.
    assert final.all("COPY") == [] or all("--from=" in c for c in final.all("COPY"))


def test_the_build_stage_copies_everything_the_wheel_is_made_of(stages: list[Stage]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = set(wheel["packages"]) | set(wheel.get("force-include", {})) | {"pyproject.toml"}
    needed.add(pyproject["project"]["readme"])
    copied: set[str] = set()
    for args in stages[0].all("COPY"):
        copied.update(a.rstrip("/") for a in shlex.split(args)[:-1] if not a.startswith("--"))
    assert needed <= copied, f"not copied into the build stage: {sorted(needed - copied)}"

    # ...and .dockerignore, which excludes everything else, lets each of them through.
    ignore = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert copied <= allowed, f"copied but ignored: {sorted(copied - allowed)}"


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage sets USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), users[-1]
    assert int(user) != 0
    assert not group or int(group) != 0
    # Instructions after USER run unprivileged: nothing may need root there.
    after = final.instructions[[kw for kw, _ in final.instructions].index("USER") :]
    assert not [args for kw, args in after if kw == "RUN"]


def test_settings_for_a_container_and_a_writable_data_dir(final: Stage) -> None:
    env = final.env()
    assert env["WEB_HOST"] == "0.0.0.0"
    assert env.get("WEB_PORT", "6066") == "6066"
    data_dir = env["DATA_DIR"]
    assert data_dir.startswith("/")
    assert not data_dir.startswith("/tmp")
    # Created in the image and owned by the service user, who starts there.
    assert any(f"-o app -g app -m 0750 {data_dir}" in run for run in final.all("RUN"))
    assert "--uid 10001" in " ".join(final.all("RUN"))
    assert final.all("USER")[-1].startswith("10001")
    assert final.all("WORKDIR")[-1] == data_dir


def test_exposes_the_web_port(final: Stage) -> None:
    exposed = {port for args in final.all("EXPOSE") for port in args.split()}
    assert exposed == {"6066"} or exposed == {"6066/tcp"}


def test_entrypoint_is_the_console_script_worker(final: Stage) -> None:
    entrypoint = json.loads(final.all("ENTRYPOINT")[-1])
    assert entrypoint == ["export-service", "worker"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert scripts["export-service"] == "export_service:main"


def _healthcheck_command(final: Stage) -> str:
    healthchecks = final.all("HEALTHCHECK")
    assert len(healthchecks) == 1
    options, _, command = healthchecks[0].partition(" CMD ")
    assert command, "HEALTHCHECK ... CMD <command>"
    assert "--timeout=" in options
    assert "--interval=" in options
    return command


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []  # noqa: RUF012 - shared on purpose: the test reads what was asked

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def heartbeat_server() -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _run_healthcheck(command: str, port: int) -> int:
    # As Docker runs the shell form: /bin/sh -c, with the image's PATH (python first).
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "WEB_PORT": str(port)}
    result = subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, timeout=20, check=False
    )
    return result.returncode


def test_healthcheck_asks_heartbeat_and_fails_on_an_error_answer(
    final: Stage, heartbeat_server: tuple[int, type[_Handler]]
) -> None:
    command = _healthcheck_command(final)
    port, handler = heartbeat_server
    assert _run_healthcheck(command, port) == 0
    assert handler.paths == ["/heartbeat"]
    handler.status = 503
    assert _run_healthcheck(command, port) == 1


def test_healthcheck_fails_when_nothing_listens(final: Stage) -> None:
    command = _healthcheck_command(final)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    assert _run_healthcheck(command, free_port) == 1


def test_the_parser_reads_this_dockerfile_whole() -> None:
    args, stages = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
    assert "PYTHON_IMAGE" in args
    known = {"RUN", "COPY", "ENV", "WORKDIR", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"}
    known |= {"LABEL", "STOPSIGNAL", "ARG", "CMD"}
    assert {kw for s in stages for kw, _ in s.instructions} <= known
