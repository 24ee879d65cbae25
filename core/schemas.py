"""JSON Schemas generated from the models, as the OpenAPI and AsyncAPI documents share them.

Both documents keep their schemas in `components.schemas` and refer to them with
`#/components/schemas/<name>`; nested models land there under their class name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, PlainSerializer, TypeAdapter, WithJsonSchema

from core.models import CcpaRequest, ExportRecord

Schema = dict[str, Any]

REF_PREFIX = "#/components/schemas/"
REF_TEMPLATE = REF_PREFIX + "{model}"

_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions")


def ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(model=name)}


def untitled(schema: Any) -> Any:
    """Pydantic's generated titles ("Campaignid") add nothing but noise (a property that
    is *named* title is kept)."""
    if isinstance(schema, list):
        return [untitled(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: Schema = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in _NAMED_SUBSCHEMAS and isinstance(value, dict):
            cleaned[key] = {name: untitled(sub) for name, sub in value.items()}
        else:
            cleaned[key] = untitled(value)
    return cleaned


_COMPONENT = "x-component"


def component(name: str) -> WithJsonSchema:
    """Document an annotated field as the component `name` (pydantic would take a `$ref`
    for one of its own definitions)."""
    return WithJsonSchema({_COMPONENT: name})


def _with_components(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_with_components(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    if set(schema) == {_COMPONENT}:
        return ref(schema[_COMPONENT])
    return {k: _with_components(v) for k, v in schema.items()}


def model_schema(model: type[BaseModel], schemas: dict[str, Schema], **options: Any) -> Schema:
    """The model's JSON schema; its nested definitions go to `schemas` (components)."""
    schema = _with_components(model.model_json_schema(ref_template=REF_TEMPLATE, **options))
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, untitled(definition))
    return dict(untitled(schema))


def type_schema(annotation: Any) -> Schema:
    """The JSON schema of a (constrained) type, such as `core.ids.Id`."""
    return dict(untitled(TypeAdapter(annotation).json_schema(ref_template=REF_TEMPLATE)))


class _Public(Protocol):
    def to_public(self) -> dict[str, Any]: ...


def public_schema(model: type[BaseModel], sample: _Public, schemas: dict[str, Schema]) -> Schema:
    """A record as its `to_public()` writes it: every public field, always present."""
    schema = model_schema(model, schemas, mode="serialization", by_alias=True)
    public = list(sample.to_public())
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in public}
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["required"] = public
    return schema


def export_record_schema(schemas: dict[str, Schema]) -> Schema:
    """`ExportRecord` as the API and export-events show it."""
    return public_schema(
        ExportRecord, ExportRecord(id="x", campaign_id="c", export_type="t"), schemas
    )


def ccpa_request_schema(schemas: dict[str, Schema]) -> Schema:
    """`CcpaRequest` as the API and `ccpa.deletion_completed` show it."""
    return public_schema(CcpaRequest, CcpaRequest(request_id="r", user_id="u"), schemas)


PublicExportRecord = Annotated[
    ExportRecord,
    PlainSerializer(lambda record: record.to_public(), return_type=dict[str, Any]),
    component("ExportRecord"),
]
"""An ExportRecord in a response model: written as `to_public()`, documented as the
`ExportRecord` component (export_record_schema)."""

PublicCcpaRequest = Annotated[
    CcpaRequest,
    PlainSerializer(lambda request: request.to_public(), return_type=dict[str, Any]),
    component("CcpaRequest"),
]
"""A CcpaRequest in a response model, documented as the `CcpaRequest` component."""


class DocumentedExportType(Protocol):
    """What the documents need of an export type (exporters.spec.ExportSpec has it)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def params(self) -> type[BaseModel]: ...


def export_type_alternatives(
    types: Sequence[DocumentedExportType], schemas: dict[str, Schema], *, closed: bool
) -> list[Schema]:
    """One alternative per export type, each with that type's own `params` schema (in
    `schemas` under the params model's name); `closed` refuses other fields."""
    alternatives = []
    for export_type in types:
        params_name = export_type.params.__name__
        if params_name not in schemas:
            schemas[params_name] = model_schema(export_type.params, schemas)
        params = schemas[params_name]
        alternative: Schema = {
            "type": "object",
            "description": export_type.description or export_type.name,
            "properties": {"exportType": {"const": export_type.name}, "params": ref(params_name)},
            "required": ["exportType", "params"] if params.get("required") else ["exportType"],
        }
        if closed:
            alternative["additionalProperties"] = False
        alternatives.append(alternative)
    return alternatives


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(REF_PREFIX):
            yield target.removeprefix(REF_PREFIX)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def referenced_only(schemas: dict[str, Schema], *roots: Any) -> dict[str, Schema]:
    """The schemas that `roots` refer to, directly or through one another (what a model
    nests but the document does not show, such as a record's bookkeeping, is left out)."""
    wanted: set[str] = set()
    pending: list[str] = [name for root in roots for name in _refs(root)]
    while pending:
        name = pending.pop()
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        pending.extend(_refs(schemas[name]))
    return {name: schema for name, schema in schemas.items() if name in wanted}


def service_version() -> str:
    try:
        return version("export-service")
    except PackageNotFoundError:
        return "0.0.0"
