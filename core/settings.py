"""Every setting of the service, read from environment variables in one place."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BucketName = Literal["exports", "scoring", "vfScoring", "sfmc"]

MIN_HMAC_KEY_BYTES = 32


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
    kafka_max_fetch_bytes: int = Field(
        16 * 1024 * 1024, ge=65_536, description="bytes per partition and fetch (recovery speed)"
    )
    kafka_stream_buffer_size: int = Field(
        131_072, ge=1024, description="events Faust buffers ahead of the agents and recovery"
    )

    # MongoDB
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_database: str = "verifiedfan"
    mongo_driver: Literal["pymongo", "motor"] = Field(
        "pymongo", description="PyMongo's asyncio client, or motor (end of life 2026-05-14)"
    )
    mongo_batch_size: int = Field(1000, ge=1, le=100_000)
    mongo_lookup_chunk_size: int = Field(
        250, ge=1, le=50_000, description="values per $in look-up of a join"
    )
    mongo_lookup_concurrency: int = Field(
        4, ge=1, le=32, description="$in look-ups of one join in flight at once"
    )
    mongo_read_ahead_batches: int = Field(
        4, ge=1, le=16, description="cursor batches read ahead of the engine"
    )
    export_engine: Literal["columnar", "rows"] = Field(
        "columnar", description="columnar where a spec allows it, or the row engine for all"
    )
    export_columnar_batch_size: int = Field(
        1000, ge=1, le=100_000, description="documents per reply on the columnar engine"
    )
    export_columnar_chunk_bytes: int = Field(
        2 * 1024 * 1024,
        ge=0,
        le=256 * 1024 * 1024,
        description="replies joined into chunks of at least this many bytes for the columnar "
        "engine (0: one reply at a time)",
    )
    export_columnar_chunks_in_flight: int = Field(
        2,
        ge=1,
        le=8,
        description="chunks the columnar engine works on at once (one's look-ups overlap "
        "another's CPU work)",
    )
    export_pipeline_depth: int = Field(
        4, ge=1, le=16, description="joined batches waiting to be written"
    )

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
        5,
        ge=1,
        description="tries in a row that end where the one before ended (a poison export) "
        "before FAILED",
    )
    status_retention_days: float = Field(
        90, ge=0, description="terminal records leave the status table after this; 0 keeps all"
    )
    status_retention_sweep_seconds: float = Field(
        300.0, gt=0, description="how often the idle runner removes expired records"
    )
    retry_budget_seconds: float = Field(
        120.0,
        ge=0,
        description="how long one MongoDB or S3 call keeps being retried on faults that may"
        " pass (network, election, 5xx, SlowDown) before the export fails; 0 never retries",
    )
    retry_initial_delay_seconds: float = Field(0.25, gt=0, description="first backoff ceiling")
    retry_max_delay_seconds: float = Field(8.0, gt=0, description="backoff ceiling")
    cleanup_retry_seconds: float = Field(
        30.0,
        gt=0,
        description="after a clean-up S3 did not answer (an outage), how long before the next try",
    )
    publish_timeout_seconds: float = Field(
        5.0, gt=0, description="how long a REST request waits for the broker to take it"
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
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="on SIGTERM, time the running export gets to finish"
    )
    export_thread_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how much nicer than the process the threads that run the exports' CPU "
        "work are (0: as nice), so that requests, heartbeats and the broker get the CPU first",
    )
    thread_switch_interval_seconds: float = Field(
        0.0005,
        gt=0,
        le=0.1,
        description="how long the export's worker thread may hold the GIL before the event "
        "loop gets it back (sys.setswitchinterval; Python's default is 0.005)",
    )

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    web_canonical_url: str | None = Field(
        None,
        description="URL other workers reach this one at (table reads are routed to the owner)",
    )
    max_request_body_bytes: int = Field(
        65_536, ge=1024, le=16 * 1024 * 1024, description="larger request bodies get 413"
    )

    # Auth (JWT bearer tokens, SPEC §5)
    jwt_algorithm: Literal["HS256", "RS256"] = Field(
        "HS256", description="the only algorithm accepted; the token's own header never chooses"
    )
    jwt_secret: SecretStr | None = Field(None, description="HS256 key, at least 32 bytes")
    jwt_public_key: SecretStr | None = Field(None, description="RS256 public key (PEM text)")
    jwt_public_key_file: Path | None = Field(None, description="RS256 public key PEM file")
    jwt_issuer: str | None = Field(None, description="required `iss` when set")
    jwt_audience: str | None = Field(None, description="required `aud` when set")
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=300, description="clock skew for exp/nbf/iat")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator(
        "jwt_secret",
        "jwt_public_key",
        "jwt_public_key_file",
        "jwt_issuer",
        "jwt_audience",
        "web_canonical_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough_hmac_key(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 §3.2: an HS256 key is at least as long as the hash output (32 bytes).
        if value is not None and len(value.get_secret_value().encode()) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_HMAC_KEY_BYTES} bytes")
        return value

    def jwt_verification_key(self) -> str | None:
        """The configured key material for `jwt_algorithm`, or None when there is none."""
        if self.jwt_algorithm == "HS256":
            return self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.jwt_public_key is not None:
            return self.jwt_public_key.get_secret_value()
        if self.jwt_public_key_file is not None:
            return self.jwt_public_key_file.read_text("utf-8")
        return None

    def canonical_url(self, web_port: int | None = None) -> str:
        """The URL this worker advertises to the others of its group: WEB_CANONICAL_URL, or
        http://WEB_HOST:port (the machine's host name when WEB_HOST is a wildcard address)."""
        if self.web_canonical_url is not None:
            return self.web_canonical_url.rstrip("/")
        host = self.web_host
        if host in {"", "0.0.0.0", "::"}:  # noqa: S104  (wildcard addresses: not advertised)
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{web_port or self.web_port}"

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

    def s3_client_options(self) -> dict[str, Any]:
        """Where S3 is and who we are there: the arguments botocore's and aiobotocore's
        `create_client("s3", ...)` share."""
        return {
            "endpoint_url": self.s3_endpoint_url,
            "region_name": self.s3_region,
            "aws_access_key_id": (
                self.s3_access_key_id.get_secret_value() if self.s3_access_key_id else None
            ),
            "aws_secret_access_key": (
                self.s3_secret_access_key.get_secret_value() if self.s3_secret_access_key else None
            ),
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
