"""The explicit registry holds every spec module, and every spec renders."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import exporters.specs
from core.errors import UnknownExportType
from exporters.registry import BY_NAME, SPECS, get_spec
from exporters.runner import RunOptions, load_context, run_export
from tests.fakes import InMemorySource, InMemoryStore
from tests.unit.hostile_data import dataset


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


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_every_registered_spec_renders_a_header(spec: object) -> None:
    assert spec in SPECS
    source, store = InMemorySource(dataset()), InMemoryStore()
    real = get_spec(spec.name)
    ctx = await load_context(real, source, export_id="r", campaign_id="c1", params={})
    options = RunOptions(
        bucket_names={"exports": "e", "scoring": "s", "vfScoring": "v", "sfmc": "f"}
    )
    result = await run_export(real, ctx, source=source, store=store, options=options)
    body = store.objects[(result.bucket, result.objects[0].key)]
    assert body.split(b"\r\n", 1)[0].decode() == ",".join(real.header)
