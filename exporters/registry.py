"""The export catalogue: an explicit tuple of every registered spec."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.errors import UnknownExportType
from exporters.spec import ExportSpec
from exporters.specs import (
    artist_opt_in,
    auto_reminder_email,
    code_assignments,
    code_wave,
    codes,
    entries,
    fanlist,
    livenation_opt_in,
    opt_in_scoring,
    promoter_opt_in,
    reminder_email,
    reminder_email_sample,
    scoring,
    sms_opt_in,
    verified_entries,
    vf_scoring,
    waitlist,
)

SPECS: tuple[ExportSpec, ...] = (
    entries.SPEC,
    verified_entries.SPEC,
    codes.SPEC,
    code_assignments.SPEC,
    code_wave.SPEC,
    scoring.SPEC,
    opt_in_scoring.SPEC,
    vf_scoring.SPEC,
    waitlist.SPEC,
    fanlist.SPEC,
    artist_opt_in.SPEC,
    sms_opt_in.SPEC,
    promoter_opt_in.SPEC,
    livenation_opt_in.SPEC,
    reminder_email.SPEC,
    reminder_email_sample.SPEC,
    auto_reminder_email.SPEC,
)

BY_NAME: Mapping[str, ExportSpec] = MappingProxyType({spec.name: spec for spec in SPECS})


def get_spec(export_type: object) -> ExportSpec:
    """The spec of a type name; UnknownExportType (400) for anything else."""
    spec = BY_NAME.get(export_type) if isinstance(export_type, str) else None
    if spec is None:
        raise UnknownExportType(export_type=export_type, known=sorted(BY_NAME))
    return spec
