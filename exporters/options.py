"""The engine's knobs, in one object: taken from settings by the caller, used by the
runner, the engines and the outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.settings import Settings
from exporters.spec import ExportSpec


@dataclass(frozen=True)
class Destination:
    """Where one export's objects go: the real bucket and the ACL sent with them."""

    bucket: str
    acl: str | None


@dataclass(frozen=True)
class RunOptions:
    """Engine knobs, taken from settings by the caller."""

    bucket_names: Mapping[str, str]
    acl_disabled_buckets: frozenset[str] = frozenset()
    batch_size: int = 1000
    part_size: int = 8 * 1024 * 1024
    max_in_flight: int = 2
    progress_interval_seconds: float = 1.0
    progress_interval_rows: int = 10_000
    max_rows_per_file: int = 500_000
    staging_buffer_bytes: int = 16 * 1024 * 1024
    exclusion_max_ids: int = 1_000_000
    pipeline_depth: int = 4
    # "columnar" runs every spec the columnar engine can (the others on rows); "rows" runs all
    # on the row engine, the reference.
    engine: Literal["columnar", "rows"] = "columnar"
    # The columnar engine's replies: larger ones spread its per-reply costs (polars calls,
    # look-ups) over more rows, but on the embedded stack 1,000 scale better end to end.
    columnar_batch_size: int = 1000
    # Consecutive replies are joined into chunks of at least this many bytes before the
    # engine runs (0: one reply at a time): its per-chunk costs are spread over more rows.
    columnar_chunk_bytes: int = 0
    # Chunks the columnar engine works on at once: one chunk's look-ups wait on the database
    # while another's CPU work runs.
    columnar_in_flight: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> RunOptions:
        """The options the service runs with (one place, so callers cannot drift)."""
        return cls(
            bucket_names=settings.bucket_map(),
            acl_disabled_buckets=settings.s3_acl_disabled_buckets,
            batch_size=settings.mongo_batch_size,
            part_size=settings.s3_part_size_bytes,
            max_in_flight=settings.s3_max_concurrent_parts,
            progress_interval_seconds=settings.progress_interval_seconds,
            progress_interval_rows=settings.progress_interval_rows,
            max_rows_per_file=settings.max_rows_per_file,
            staging_buffer_bytes=settings.zip_staging_buffer_bytes,
            exclusion_max_ids=settings.exclusion_max_ids_per_pass,
            pipeline_depth=settings.export_pipeline_depth,
            engine=settings.export_engine,
            columnar_batch_size=settings.export_columnar_batch_size,
            columnar_chunk_bytes=settings.export_columnar_chunk_bytes,
            columnar_in_flight=settings.export_columnar_chunks_in_flight,
        )

    def destination(self, spec: ExportSpec) -> Destination:
        """The spec's logical bucket made real; no ACL header for ACL-disabled buckets."""
        bucket = self.bucket_names[spec.bucket]
        return Destination(bucket, None if bucket in self.acl_disabled_buckets else spec.acl)
