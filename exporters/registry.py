"""The export catalogue: an explicit tuple of every registered spec."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.errors import UnknownExportType
from exporters.spec import ExportSpec
from exporters.specs import codes, entries

SPECS: tuple[ExportSpec, ...] = (
    entries.SPEC,
    codes.SPEC,
)

BY_NAME: Mapping[str, ExportSpec] = MappingProxyType({spec.name: spec for spec in SPECS})


def get_spec(export_type: object) -> ExportSpec:
    """The spec of a type name; UnknownExportType (400) for anything else."""
    spec = BY_NAME.get(export_type) if isinstance(export_type, str) else None
    if spec is None:
        raise UnknownExportType(export_type=export_type, known=sorted(BY_NAME))
    return spec
