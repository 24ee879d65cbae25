"""`--param key=value` pairs typed by the export type's params schema in the OpenAPI document.

The API holds REST requests to their JSON types (`"10"` is not a number), so the client
turns `sampleSize=10` into the integer the schema asks for instead of sending a string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

Schema = Mapping[str, Any]


class BadParam(ValueError):
    """A pair that is not `key=value`, or a value its schema's type cannot be."""


def params_schema(openapi: Schema, export_type: str) -> Schema | None:
    """The `params` schema of `export_type`; None for a type the document does not know."""
    schemas = openapi.get("components", {}).get("schemas", {})
    for alternative in schemas.get("CreateExportRequest", {}).get("oneOf", []):
        properties = alternative.get("properties", {})
        if properties.get("exportType", {}).get("const") == export_type:
            return _resolve(openapi, properties.get("params", {}))
    return None


def export_types(openapi: Schema) -> list[tuple[str, str, Schema]]:
    """(name, description, params schema) of every type the service offers."""
    schemas = openapi.get("components", {}).get("schemas", {})
    found = []
    for alternative in schemas.get("CreateExportRequest", {}).get("oneOf", []):
        properties = alternative.get("properties", {})
        name = properties.get("exportType", {}).get("const")
        if isinstance(name, str):
            params = _resolve(openapi, properties.get("params", {}))
            found.append((name, str(alternative.get("description", "")), params))
    return found


def _resolve(openapi: Schema, schema: Schema) -> Schema:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = openapi
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def parse_params(
    pairs: Iterable[str], schema: Schema | None, params_json: str | None = None
) -> dict[str, Any]:
    """`--params-json` first, then each `key=value` over it, typed by `schema`."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = orjson.loads(params_json)
        except orjson.JSONDecodeError as exc:
            raise BadParam(f"--params-json is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise BadParam("--params-json must be a JSON object")
        params.update(loaded)
    properties = (schema or {}).get("properties", {})
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise BadParam(f"--param {pair!r}: expected key=value")
        params[key] = _typed(key, text, properties.get(key, {}))
    return params


def _types_of(schema: Schema) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found += _types_of(option)
    return found


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(text)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "integer": int,
    "number": float,
    "boolean": _boolean,
    "array": orjson.loads,
    "object": orjson.loads,
}
"""The first type of a schema a value is tried as, in this order (a string stays text)."""


def _typed(key: str, text: str, schema: Schema) -> Any:
    kinds = _types_of(schema)
    if "null" in kinds and text == "null":
        return None
    for kind, convert in _CONVERTERS.items():
        if kind in kinds:
            try:
                return convert(text)
            except ValueError:
                raise BadParam(f"--param {key}: {text!r} is not a valid {kind}") from None
    return text
