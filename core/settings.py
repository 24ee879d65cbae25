"""Every setting of the service, read from environment variables in one place."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BucketName = Literal["exports", "scoring", "vfScoring", "sfmc"]


class Settings(BaseSettings):
    """Service settings; each field is the lower-case form of its environment variable."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Kafka
    kafka_broker_url: str = Field("kafka://127.0.0.1:9092", description="Faust broker URL(s)")
    app_id: str = Field("export-service", description="Faust app id (consumer group)")
    topic_exports: str = "exports"
    topic_export_events: str = "export-events"
    topic_dlq: str = "exports-dlq"
    status_table_name: str = "export-status"
    kafka_replication_factor: int = Field(1, ge=1, description="for topics the service creates")
    kafka_session_timeout_seconds: float = 10.0
    kafka_heartbeat_interval_seconds: float = 3.0
    data_dir: str = Field(".cache/worker-data", description="Faust's local data directory")

    # MongoDB
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_database: str = "verifiedfan"
    mongo_batch_size: int = Field(1000, ge=1, le=100_000)

    # S3
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_bucket_exports: str = "exports"
    s3_bucket_scoring: str = "scoring"
    s3_bucket_vf_scoring: str = "vf-scoring"
    s3_bucket_sfmc: str = "sfmc"
    s3_acl_disabled_buckets: frozenset[str] = Field(
        frozenset(),
        description="Real bucket names with ACLs disabled: no ACL header is sent to them",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = "path"
    s3_part_size_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    s3_max_concurrent_parts: int = Field(2, ge=1, le=16)
    presign_expiry_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)

    # Exports
    export_timeout_seconds: float = Field(3600.0, gt=0)
    export_max_attempts: int = Field(
        3, ge=1, description="runs of one export (restarts after a crash count) before FAILED"
    )
    max_rows_per_file: int = Field(500_000, ge=1)
    zip_staging_buffer_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="rows buffered for ZIP members before staging"
    )
    exclusion_max_ids_per_pass: int = Field(
        1_000_000, ge=1, description="SMS-wave user ids held in memory at once (waitlist)"
    )
    progress_interval_seconds: float = Field(1.0, gt=0)
    progress_interval_rows: int = Field(10_000, ge=1)

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def bucket_map(self) -> dict[str, str]:
        """Logical bucket name -> real bucket name."""
        return {
            "exports": self.s3_bucket_exports,
            "scoring": self.s3_bucket_scoring,
            "vfScoring": self.s3_bucket_vf_scoring,
            "sfmc": self.s3_bucket_sfmc,
        }

    def bucket(self, name: BucketName) -> str:
        """The real bucket behind a logical bucket name."""
        return self.bucket_map()[name]

    def all_buckets(self) -> tuple[str, ...]:
        return (
            self.s3_bucket_exports,
            self.s3_bucket_scoring,
            self.s3_bucket_vf_scoring,
            self.s3_bucket_sfmc,
        )

    def topics(self) -> tuple[str, ...]:
        return (self.topic_exports, self.topic_export_events, self.topic_dlq)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
