"""The exports input topic, the export-events output topic, the DLQ and the status table."""

from __future__ import annotations

import faust

from core.app import app
from topics.status import StatusStore

settings = app.settings

exports_topic = app.topic(
    settings.topic_exports,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""Export requests and CCPA deletions, one partition: the serial queue (raw bytes in,
so that unparseable events can be sent to the DLQ as they arrived)."""

export_events_topic = app.topic(
    settings.topic_export_events,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""export.finished / export.failed / export.expired / ccpa.deletion_completed."""

dlq_topic = app.topic(
    settings.topic_dlq,
    partitions=1,
    value_serializer="raw",
    key_serializer="raw",
)
"""Input events that could not be parsed or validated, with the reason."""

status_table = app.Table(
    settings.status_table_name,
    partitions=1,
    default=None,
    schema=faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    ),
    # Views and the runner write records too, not only the consuming agent.
    use_partitioner=True,
)
"""Export id -> export record (orjson bytes); changelog-backed."""

status_store = StatusStore(status_table)
