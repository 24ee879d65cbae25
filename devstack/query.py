"""MongoDB's query matching for the in-process stand-ins of a server: the tests' fake source
and the bench's replay.

Equality, `$in` and `$ne` compare the value at the dotted path (through documents only), as
the stand-ins always did. `$exists`, `$size` and `$not` follow MongoDB's array rules, so that a
filter pushed down to the server selects here what it selects there: a path crosses an array
through its documents (and a numeric part names a position), and each operator sees every
value the path reaches. Any other operator is refused loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["matches", "path_values", "value_at"]


def value_at(doc: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path through documents only; None where a step is missing or
    not a document."""
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def path_values(doc: Mapping[str, Any], dotted: str) -> list[Any]:
    """Every value MongoDB's matching reaches at a dotted path; none when the path is missing.

    `{"optIns": [{"promoterIds": []}, {"promoterIds": ["p"]}]}` reaches `[]` and `["p"]` at
    "optIns.promoterIds"; an array inside an array is not crossed.
    """
    values: list[Any] = [doc]
    for part in dotted.split("."):
        reached: list[Any] = []
        for value in values:
            if isinstance(value, Mapping):
                if part in value:
                    reached.append(value[part])
            elif isinstance(value, list):
                if part.isdigit() and int(part) < len(value):
                    reached.append(value[int(part)])
                reached += [
                    item[part] for item in value if isinstance(item, Mapping) and part in item
                ]
        values = reached
    return values


def _operator(values: list[Any], op: str, arg: Any) -> bool:
    if op == "$exists":
        return bool(values) == bool(arg)
    if op == "$size":
        # The array itself, never its elements: [[]] has size 1.
        return any(isinstance(value, list) and len(value) == arg for value in values)
    if op == "$not":
        # True where the inner condition fails, the field's absence included.
        return not all(_operator(values, inner, inner_arg) for inner, inner_arg in arg.items())
    raise NotImplementedError(f"in-process matching does not support {op}")


def matches(doc: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """Whether a document passes a filter of top-level conditions (all of them)."""
    for key, condition in query.items():
        if not isinstance(condition, Mapping):
            if value_at(doc, key) != condition:
                return False
            continue
        for op, arg in condition.items():
            if op == "$in":
                if value_at(doc, key) not in arg:
                    return False
            elif op == "$ne":
                if value_at(doc, key) == arg:
                    return False
            elif not _operator(path_values(doc, key), op, arg):
                return False
    return True
