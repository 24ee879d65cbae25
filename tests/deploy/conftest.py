"""Shared by the deployment tests: paths, the service's setting names, the Helm binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "export-service"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# Every setting is the environment variable of its upper-cased field name.
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
# Settings whose values are credentials (SecretStr): never in a ConfigMap, only from a Secret.
CREDENTIALS = frozenset(
    name.upper()
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
)


@pytest.fixture(scope="session")
def helm() -> Path:
    """A real `helm` (devstack.build.HELM_VERSION), built with `go install` once and cached.

    `make test` builds it first (`python -m devstack prepare`); this builds it when that did
    not run, under the same file lock, and skips with the reason when it cannot be built.
    """
    from devstack.build import BuildError, prepare_helm

    try:
        return prepare_helm(ROOT / ".cache")
    except BuildError as exc:
        pytest.skip(f"no helm binary: building it with `go install` failed: {exc}")
