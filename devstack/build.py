"""Fetching and building the local stack's programs into the cache.

Kafka's jars (Maven), FerretDB and SeaweedFS (Go modules), and Helm for the chart tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.ferretdb_patch import MODULES, PatchError, make_patched_copy, patch_digest

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEVSTACK_DIR",
    "HELM_VERSION",
    "KAFKA_LOG4J_CONFIG",
    "KAFKA_VERSION",
    "Artifacts",
    "BuildError",
    "ensure_ferretdb",
    "ensure_helm",
    "ensure_kafka",
    "ensure_seaweedfs",
    "prepare",
    "prepare_helm",
]

log = logging.getLogger(__name__)

# Must match the kafka_2.13 version in kafka/pom.xml; checked after every resolve.
KAFKA_VERSION = "3.9.1"

DEVSTACK_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEVSTACK_DIR.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"

KAFKA_POM = DEVSTACK_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J_CONFIG = DEVSTACK_DIR / "kafka" / "log4j.properties"
FERRETDB_SOURCES = tuple(DEVSTACK_DIR / "ferretdb" / n for n in ("go.mod", "go.sum", "main.go"))
# SeaweedFS (the S3 server): a module that requires `weed` as a tool at a pinned version.
SEAWEEDFS_SOURCES = tuple(DEVSTACK_DIR / "seaweedfs" / n for n in ("go.mod", "go.sum"))
SEAWEEDFS_PACKAGE = "github.com/seaweedfs/seaweedfs/weed"

# The Helm CLI the chart tests render and lint with (charts/export-service), built from its Go
# module. Helm's Makefile stamps the version and the Kubernetes version of its client-go
# (v0.37 -> 1.37) with -X; a plain `go install` would leave "v3.22" and Kubernetes 1.20.
HELM_VERSION = "v3.22.0"
HELM_KUBE_VERSION = ("1", "37")
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"

# A cold Maven or Go module download on a slow network; a hang beyond this is not a download.
_BUILD_TIMEOUT_SECONDS = 1200


class BuildError(RuntimeError):
    """A tool the stack needs is missing, or fetching/building a program failed."""


@dataclass(frozen=True)
class Artifacts:
    """Where the cached programs are."""

    kafka_libs: Path
    ferretdb_bin: Path
    seaweedfs_bin: Path
    # None when Helm could not be built: only the chart tests need it, never the stack.
    helm_bin: Path | None = None


def prepare(cache_dir: Path = DEFAULT_CACHE_DIR, *, with_helm: bool = True) -> Artifacts:
    """Fetch/build whatever is missing or out of date in `cache_dir`; fast when all is cached.

    Helm is built too unless `with_helm` is false; a failed Helm build is logged, not raised,
    since the stack runs without it (the chart tests then say why they skip).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _cache_lock(cache_dir):
        kafka_libs = ensure_kafka(cache_dir)
        ferretdb_bin = ensure_ferretdb(cache_dir)
        seaweedfs_bin = ensure_seaweedfs(cache_dir)
        helm_bin = None
        if with_helm:
            try:
                helm_bin = ensure_helm(cache_dir)
            except BuildError as exc:
                log.warning("Helm is not available, the chart tests will skip: %s", exc)
        return Artifacts(
            kafka_libs=kafka_libs,
            ferretdb_bin=ferretdb_bin,
            seaweedfs_bin=seaweedfs_bin,
            helm_bin=helm_bin,
        )


def prepare_helm(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Only the Helm binary, under the same lock as prepare() (what the chart tests call)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _cache_lock(cache_dir):
        return ensure_helm(cache_dir)


def ensure_kafka(cache_dir: Path) -> Path:
    """The folder of Kafka's runtime jars, resolved with Maven unless already cached."""
    home = cache_dir / f"kafka-{KAFKA_VERSION}"
    libs = home / "libs"
    marker = home / ".complete"
    if libs.is_dir() and _marker_matches(marker, _digest([KAFKA_POM])):
        return libs

    mvn = _require_tool("mvn", "Maven (to fetch Kafka's jars from Maven Central)")
    partial = home / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    log.info("resolving Kafka %s jars into %s", KAFKA_VERSION, libs)
    started = time.monotonic()
    _run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime",
        ],
        what="resolving Kafka's jars with Maven",
    )
    if not (partial / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise BuildError(
            f"Maven did not produce kafka_2.13-{KAFKA_VERSION}.jar: does KAFKA_VERSION in "
            f"{__file__} match {KAFKA_POM}?"
        )
    # Swap in the complete folder only, so an interrupted resolve is never mistaken for a cache.
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    marker.write_text(_digest([KAFKA_POM]) + "\n")
    log.info("Kafka jars ready in %.1fs", time.monotonic() - started)
    return libs


def ensure_ferretdb(cache_dir: Path) -> Path:
    """FerretDB built from devstack/ferretdb over a patched module copy, unless cached.

    The modules are downloaded by `go mod download`, copied into `cache_dir/ferretdb-build`,
    patched there (devstack.ferretdb_patch says what and why) and `replace`d in a go.mod
    generated next to them; nothing of FerretDB's source is kept in the repository.
    """
    binary = cache_dir / "bin" / "ferretdb"
    marker = binary.with_name("ferretdb.sources-sha256")
    wanted = _digest(FERRETDB_SOURCES) + patch_digest()
    if binary.is_file() and _marker_matches(marker, wanted):
        return binary

    go = _require_tool("go", "Go (to build FerretDB)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name("ferretdb.partial")
    log.info("building FerretDB into %s (the first build downloads Go modules)", binary)
    started = time.monotonic()
    env = os.environ | {
        # Use the installed Go: a toolchain download is one more thing that can fail offline.
        "GOTOOLCHAIN": "local",
        # -mod=mod lets go add go.sum lines a newer Go wants; buildvcs would fail on a repo
        # without commits and only stamps metadata nobody reads.
        "GOFLAGS": "-mod=mod -buildvcs=false",
    }
    sources = FERRETDB_SOURCES[0].parent
    build_dir = cache_dir / "ferretdb-build"
    build_dir.mkdir(parents=True, exist_ok=True)
    replaces = []
    for module in MODULES:
        downloaded = _run(
            [go, "mod", "download", "-json", f"{module.path}@{module.version}"],
            what=f"downloading the Go module {module.path}",
            cwd=sources,
            env=env,
        )
        module_dir = Path(json.loads(downloaded)["Dir"])
        try:
            make_patched_copy(module, module_dir, build_dir / module.folder)
        except PatchError as exc:
            raise BuildError(str(exc)) from exc
        replaces.append(f"replace {module.path} => ./{module.folder}\n")
    for name in ("go.sum", "main.go"):
        shutil.copyfile(sources / name, build_dir / name)
    go_mod = (sources / "go.mod").read_text()
    (build_dir / "go.mod").write_text(go_mod + "\n" + "".join(replaces))
    _run(
        [go, "build", "-trimpath", "-o", str(partial.resolve()), "."],
        what="building FerretDB with Go",
        cwd=build_dir,
        env=env,
    )
    partial.replace(binary)
    marker.write_text(wanted + "\n")
    log.info("FerretDB built in %.1fs", time.monotonic() - started)
    return binary


def ensure_seaweedfs(cache_dir: Path) -> Path:
    """SeaweedFS's `weed` built from devstack/seaweedfs (its pinned version), unless cached.

    The first build downloads a few hundred modules and compiles for several minutes (about
    10 min on 2 cores); later builds with Go's build cache take seconds.
    """
    binary = cache_dir / "bin" / "weed"
    marker = binary.with_name("weed.sources-sha256")
    wanted = _digest(SEAWEEDFS_SOURCES)
    if binary.is_file() and _marker_matches(marker, wanted):
        return binary

    go = _require_tool("go", "Go (to build SeaweedFS)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name("weed.partial")
    log.info("building SeaweedFS into %s (the first build takes minutes)", binary)
    started = time.monotonic()
    # A copy to build in: -mod=mod may add go.sum lines, and the repository stays untouched.
    build_dir = cache_dir / "seaweedfs-build"
    build_dir.mkdir(parents=True, exist_ok=True)
    for source in SEAWEEDFS_SOURCES:
        shutil.copyfile(source, build_dir / source.name)
    env = os.environ | {"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod -buildvcs=false"}
    _run(
        [
            go,
            "build",
            "-trimpath",
            "-ldflags=-s -w",
            "-o",
            str(partial.resolve()),
            SEAWEEDFS_PACKAGE,
        ],
        what="building SeaweedFS with Go",
        cwd=build_dir,
        env=env,
    )
    partial.replace(binary)
    marker.write_text(wanted + "\n")
    log.info("SeaweedFS built in %.1fs", time.monotonic() - started)
    return binary


def ensure_helm(cache_dir: Path) -> Path:
    """The `helm` binary (HELM_VERSION) built with `go install`, unless already cached."""
    binary = cache_dir / "bin" / "helm"
    marker = binary.with_name("helm.version")
    wanted = f"{HELM_VERSION} kube {'.'.join(HELM_KUBE_VERSION)}"
    if binary.is_file() and _marker_matches(marker, wanted):
        return binary

    go = _require_tool("go", "Go (to build Helm)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    # go install names the binary after the package: build into a private GOBIN, then swap.
    partial = binary.with_name("helm.partial")
    shutil.rmtree(partial, ignore_errors=True)
    log.info("building Helm %s into %s (the first build downloads modules)", HELM_VERSION, binary)
    started = time.monotonic()
    major, minor = HELM_KUBE_VERSION
    ldflags = " ".join(
        [
            "-s -w",
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            *(
                f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMajor={major} "
                f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersionMinor={minor}"
                for pkg in ("lint/rules", "chartutil")
            ),
        ]
    )
    env = os.environ | {
        "GOTOOLCHAIN": "local",
        "GOBIN": str(partial.resolve()),  # go refuses a relative GOBIN
        # `pkg@version` builds outside any module; a GOFLAGS=-mod=... from the caller breaks it.
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    _run(
        [go, "install", "-trimpath", f"-ldflags={ldflags}", f"{HELM_PACKAGE}@{HELM_VERSION}"],
        what=f"building Helm {HELM_VERSION} with Go",
        cwd=cache_dir,
        env=env,
    )
    (partial / "helm").replace(binary)
    shutil.rmtree(partial, ignore_errors=True)
    marker.write_text(wanted + "\n")
    log.info("Helm built in %.1fs", time.monotonic() - started)
    return binary


@contextmanager
def _cache_lock(cache_dir: Path) -> Iterator[None]:
    # Parallel test sessions sharing one cache must not build into the same folders at once.
    with (cache_dir / ".devstack-build.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(paths: Sequence[Path]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _marker_matches(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text().strip() == digest
    except FileNotFoundError:
        return False


def _require_tool(name: str, purpose: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"`{name}` is not on PATH; the local stack needs {purpose}")
    return path


def _run(
    argv: list[str], *, what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a build step; its standard output, or BuildError with the output's tail."""
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what} took more than {exc.timeout:.0f}s: {' '.join(argv)}") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        tail = "\n".join(output[-30:])
        raise BuildError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}")
    return result.stdout
