"""The explicit registry holds every spec module, and every spec renders."""

from __future__ import annotations

import importlib
import io
import pkgutil
import zipfile

import pytest

import exporters.specs
from core.errors import UnknownExportType
from exporters.registry import BY_NAME, SPECS, get_spec
from exporters.runner import RunOptions, load_context, run_export
from exporters.spec import ExportSpec
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.catalogue_data import catalogue


def test_every_spec_module_is_registered() -> None:
    modules = [m.name for m in pkgutil.iter_modules(exporters.specs.__path__)]
    declared = [importlib.import_module(f"exporters.specs.{m}").SPEC for m in modules]
    assert set(declared) == set(SPECS)
    assert len(BY_NAME) == len(SPECS)


def test_unknown_types_are_refused() -> None:
    with pytest.raises(UnknownExportType):
        get_spec("nope")
    with pytest.raises(UnknownExportType):
        get_spec(None)


PARAMS = {"codeWave": {"waveId": "w1"}}


def csv_bodies(body: bytes, key: str) -> list[bytes]:
    if not key.endswith(".zip"):
        return [body]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [archive.read(name) for name in archive.namelist()]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_every_registered_spec_renders_its_header(spec: ExportSpec) -> None:
    source, store = InMemorySource(catalogue()), InMemoryStore()
    ctx = await load_context(
        spec, source, export_id="r", campaign_id="c1", params=PARAMS.get(spec.name, {})
    )
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"}
    )
    result = await run_export(spec, ctx, source=source, store=store, options=options)
    bodies = [
        body
        for obj in result.objects
        for body in csv_bodies(store.objects[(result.bucket, obj.key)], obj.key)
    ]
    assert bodies
    for body in bodies:
        assert body.split(b"\r\n", 1)[0].decode() == ",".join(spec.header)
