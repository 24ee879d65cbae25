"""Kafka messages checked against the AsyncAPI document (what the unit and e2e tests share).

A message belongs to a channel; it is valid when exactly one of the channel's messages
accepts its payload, key and headers (AsyncAPI 3: "valid against one, and only one").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson

Schema = dict[str, Any]
Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


def resolve(document: Schema, pointer: str) -> Any:
    """The node a local `$ref` (`#/a/b`) names, through references to references;
    KeyError when there is none."""
    seen = set()
    while True:
        assert pointer.startswith("#/"), pointer
        assert pointer not in seen, f"reference cycle at {pointer}"
        seen.add(pointer)
        node: Any = document
        for part in pointer[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        if not (isinstance(node, dict) and set(node) == {"$ref"}):
            return node
        pointer = node["$ref"]


def _text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8")


def header_map(headers: Headers) -> dict[str, str | None]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return {name: _text(value) for name, value in pairs}


@dataclass
class EventContract:
    """Validators for every message of an AsyncAPI document."""

    document: Schema
    _validators: dict[str, Any] = field(default_factory=dict, repr=False)

    def validator(self, schema: Schema) -> Any:
        cache_key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
        if cache_key not in self._validators:
            # The schema inside the document, so that its `#/components/...` refs resolve.
            root = {**self.document, **schema}
            self._validators[cache_key] = jsonschema.Draft202012Validator(
                root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        return self._validators[cache_key]

    def channel_messages(self, channel: str) -> dict[str, Schema]:
        """The channel's messages by their key, resolved."""
        refs = self.document["channels"][channel]["messages"]
        return {key: resolve(self.document, ref["$ref"]) for key, ref in refs.items()}

    def _problems(self, message: Schema, payload: Any, key: Any, headers: Any) -> list[str]:
        checks = (
            ("payload", message["payload"], payload),
            ("key", message["bindings"]["kafka"]["key"], key),
            ("headers", message.get("headers", {}), headers),
        )
        problems = []
        for part, schema, value in checks:
            for error in self.validator(schema).iter_errors(value):
                where = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{part} {where}: {error.message}"[:500])
        return problems

    def problems(
        self, channel: str, value: bytes, *, key: bytes | None = None, headers: Headers = None
    ) -> tuple[list[str], list[str]]:
        """(names of the messages that accept it, what each other one refuses)."""
        try:
            payload = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return [], [f"not JSON: {exc}"]
        accepted: list[str] = []
        refused: list[str] = []
        for message in self.channel_messages(channel).values():
            found = self._problems(message, payload, _text(key), header_map(headers))
            if found:
                kind = payload.get("type") if isinstance(payload, dict) else None
                if kind in (None, message["name"]):
                    refused.extend(f"{message['name']}: {p}" for p in found)
            else:
                accepted.append(message["name"])
        return accepted, refused

    def check(
        self, channel: str, value: bytes, *, key: bytes | None = None, headers: Headers = None
    ) -> str:
        """The name of the one message of `channel` that `value` is; AssertionError else."""
        accepted, refused = self.problems(channel, value, key=key, headers=headers)
        assert len(accepted) == 1, (
            f"not exactly one message of channel {channel} accepts {value[:300]!r} "
            f"(key {key!r}): accepted by {accepted}; {refused}"
        )
        return accepted[0]

    def refuses(
        self, channel: str, value: bytes, *, key: bytes | None = None, headers: Headers = None
    ) -> bool:
        accepted, _ = self.problems(channel, value, key=key, headers=headers)
        return not accepted
