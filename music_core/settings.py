"""One settings object for pipeline, API and command line.

Every value comes from an environment variable with the ``MUSIC_`` prefix (or a ``.env`` file).
The embedded default and production differ only in these values: leave the connection URLs empty
and the command line starts PostgreSQL, the S3 server and Redis under ``MUSIC_DATA_DIR``; set them
and it uses your services instead.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUSIC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".data"), description="Where the embedded services keep their data.")

    # --- system of record -------------------------------------------------------------------
    database_url: str | None = Field(
        None, description="postgresql:// URL of the application database; empty = embedded PostgreSQL."
    )
    dagster_database_url: str | None = Field(
        None,
        description="postgresql+psycopg2:// URL for Dagster's storage; empty = embedded PostgreSQL.",
    )

    # --- object store -------------------------------------------------------------------------
    s3_endpoint: str | None = Field(None, description="host:port of the S3 server; empty = embedded.")
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = False
    s3_region: str | None = None
    bucket: str = "music"
    inbox_prefix: str = "inbox/"

    # --- cache --------------------------------------------------------------------------------
    redis_url: str | None = Field(None, description="redis:// URL; empty = embedded Redis.")

    # --- embedded service ports (loopback only) -------------------------------------------------
    embedded_s3_port: int = 8333
    embedded_redis_port: int = 6390

    # --- processes started by `music-analyzer up` ----------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="uvicorn worker processes; they share one search service (encoder, index).",
    )
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3000
    api_token: SecretStr | None = Field(
        None, description="Bearer token for the API; empty = generated once and kept in the data dir."
    )

    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API.")
    stream_redirect: bool = Field(
        False,
        description="Answer audio GETs with a 307 to a short-lived presigned URL, so the bytes flow from "
        "the object store to the client directly (the S3 endpoint must be reachable by clients).",
    )
    stream_redirect_seconds: int = Field(300, ge=10, le=86_400, description="Lifetime of those URLs.")
    stream_cache_dir: Path | None = Field(
        None, description="Local copies of recently streamed audio (shared by the API workers); "
        "empty = <data_dir>/cache/audio.",
    )  # fmt: skip
    stream_cache_bytes: int = Field(
        2 * 1024**3, ge=0, description="Size limit of those copies (least recently used go first); 0 = no "
        "copies, every range is read from the object store. Objects over a quarter of it are not copied.",
    )  # fmt: skip
    api_users: list[str] = Field(
        default_factory=list, description='HTTP Basic users, JSON list of "name:reader|admin:scrypt-hash".'
    )
    api_keys: list[str] = Field(
        default_factory=list, description='API keys, JSON list of "name:role:sha256".'
    )
    rate_limit_per_minute: int = Field(
        600, ge=1, description="Requests per minute per client IP and per key."
    )

    # --- pipeline -----------------------------------------------------------------------------
    sensor_interval_seconds: int = 10
    tracks_per_run: int = Field(50, ge=1, description="Tracks processed by one Dagster run.")
    objects_per_registration_run: int = Field(200, ge=1)
    workers: int = Field(2, ge=1, description="Parallel conversions inside one run.")
    max_file_bytes: int = Field(8 * 1024**3, ge=1, description="Larger uploads are refused.")
    ffmpeg_timeout_seconds: int = Field(3600, ge=10)

    # --- models -------------------------------------------------------------------------------
    asr_backend: str = Field("faster-whisper", description="faster-whisper | parakeet | nemo")
    asr_model: str | None = Field(None, description="Model directory or hub id; empty = packaged tiny.en.")
    asr_compute_type: str = "int8"
    asr_threads: int = Field(2, ge=1)
    asr_beam_size: int = Field(5, ge=1)
    asr_chunk_seconds: float = Field(600.0, ge=30.0, description="Audio decoded per ASR call.")
    asr_nemo_python: str | None = Field(
        None, description="Python of a separate NeMo environment (backend nemo), e.g. /opt/nemo/bin/python."
    )
    embedding_model: str | None = Field(
        None, description="sentence-transformers model; empty = packaged MiniLM."
    )
    embedding_threads: int = Field(1, ge=1)
    query_encoder: Literal["onnx", "torch"] = Field(
        "onnx",
        description="How the API embeds queries: onnx = the model exported once to ONNX Runtime (same "
        "vectors, about 3x less CPU, no torch in the API) | torch = sentence-transformers.",
    )
    search_socket: Path | None = Field(
        None,
        description="Unix socket of the search service (`python -m music_api.search_service`): every API worker "
        "then shares its one query encoder and FAISS index; empty = each API worker loads its own.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where derived model files (the ONNX query encoder) are cached; empty = <data_dir>/models.",
    )
    embedding_chunk_words: int = Field(128, ge=16)
    llm_backend: str = Field(
        "", description="LLM notes on comparisons: empty = off | transformers | openai (compatible endpoint)."
    )
    llm_model: str | None = Field(
        None, description="transformers: model folder or hub id; openai: model name."
    )
    llm_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible endpoint (backend openai)."
    )
    llm_api_key: SecretStr | None = Field(None, description="Bearer key for llm_url (never logged).")
    llm_max_new_tokens: int = Field(256, ge=1, le=1024, description="Longest answer, in tokens.")
    llm_threads: int = Field(2, ge=1, description="torch CPU threads for the transformers backend.")

    lyrics_providers: list[str] = Field(
        default_factory=lambda: ["tags", "sidecar", "lrclib"], description="Lyrics sources, in order."
    )
    lrclib_url: str = "https://lrclib.net"
    genius_url: str = "https://api.genius.com"
    brave_url: str = "https://api.search.brave.com"
    tavily_url: str = "https://api.tavily.com"
    genius_token: SecretStr | None = Field(None, description="Genius API token (else from api_config).")
    brave_api_key: SecretStr | None = Field(None, description="Brave Search key (else from api_config).")
    tavily_api_key: SecretStr | None = Field(None, description="Tavily key (else from api_config).")
    secret_key: SecretStr | None = Field(
        None, description="Encrypts provider keys stored in api_config (any long random string)."
    )

    # --- retention and cleanup (Dagster schedules; scheduled runs preview unless told to execute) ---
    retention_days: float | None = Field(
        None, ge=0, description="Remove tracks last uploaded more than this many days ago; empty = keep all."
    )
    retention_keep_originals: bool = Field(
        False, description="Retention drops derived data only (converted audio, vectors, analysis)."
    )
    retention_execute: bool = Field(
        False, description="Scheduled retention and orphan sweeps execute; otherwise they only preview."
    )
    retention_cron: str = "0 3 * * *"
    orphan_sweep_cron: str = "30 3 * * 0"
    duplicates_cron: str = "0 4 * * 0"
    storage_stats_cron: str = "0 * * * *"
    orphan_grace_minutes: int = Field(60, ge=0, description="Younger objects are never called orphans.")
    duplicate_max_bit_error_rate: float = Field(0.1, gt=0, lt=0.5)

    @field_validator("inbox_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("inbox_prefix must not be empty")
        return value + "/"

    @cached_property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def audio_cache_dir(self) -> Path:
        return (self.stream_cache_dir or self.data_path / "cache" / "audio").expanduser().resolve()

    @property
    def query_encoder_cache(self) -> Path | None:
        """The ONNX query encoder's cache directory, or None when the API should use torch."""
        if self.query_encoder != "onnx":
            return None
        return (self.model_cache_dir or self.data_path / "models").expanduser().resolve()

    @property
    def embedded(self) -> bool:
        """True when at least one service is left to the embedded default."""
        return self.database_url is None or self.s3_endpoint is None or self.redis_url is None
