"""The id and name formats that REST paths, Kafka events and both API documents share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

ID_MAX_LENGTH = 128
ID_PATTERN = rf"^[A-Za-z0-9_.:-]{{1,{ID_MAX_LENGTH}}}$"
"""Export, campaign, user and CCPA request ids: safe in a URL path, an object key and a
Kafka key as they are."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]

EXPORT_TYPE_MAX_LENGTH = 64
ExportTypeName = Annotated[str, StringConstraints(min_length=1, max_length=EXPORT_TYPE_MAX_LENGTH)]
"""An `exportType` as requests carry it (whether it is a registered type is checked later,
with its own error)."""

REQUESTER_MAX_LENGTH = 256
"""`requestedBy`: a service name, or the JWT `sub` of a REST caller (web/auth.py)."""

_ID_RE = re.compile(ID_PATTERN)


def is_id(value: str) -> bool:
    """Whether `value` is an id (the whole string: Python's `$` would let a newline end it)."""
    return _ID_RE.fullmatch(value) is not None
