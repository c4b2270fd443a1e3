"""Session-wide real services (PostgreSQL+pgvector, SeaweedFS S3, Redis) on free loopback ports."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from music_core.db.migrate import migrate
from music_core.embedded import EmbeddedServices, ServiceEndpoints
from music_core.settings import Settings
from music_core.storage import ObjectStore
from music_pipeline import definitions
from music_pipeline.defs.ingest.sensors import inbox_sensor, new_tracks_sensor
from music_pipeline.defs.lyrics.assets import LyricsResource
from music_pipeline.ml_resources import AsrResource, EmbedderResource, LlmResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource, PipelineConfigResource

APP_TABLES = "music_files, search_history, api_config, cleanup_log, storage_stats, removal_intents"
OFFLINE_PROVIDERS = '["tags", "sidecar"]'


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block() -> int:
    """A base port whose S3 neighbours (base..base+5, base+10001..base+10005) are all free."""
    for _ in range(200):
        base = random.randrange(20000, 30000)
        ports = [base + i for i in range(6)] + [base + 10000 + i for i in range(1, 6)]
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port block")


def service_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": None,
        "dagster_database_url": None,
        "s3_endpoint": None,
        "redis_url": None,
        "embedded_s3_port": free_port_block(),
        "embedded_redis_port": free_port(),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of derived model files (the ONNX query encoder) for the whole session: the API
    processes and apps the tests start export the packaged model once, not once each."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[ServiceEndpoints]:
    settings = service_settings(tmp_path_factory.mktemp("services"))
    with EmbeddedServices(settings) as ep, pytest.MonkeyPatch.context() as mp:
        for key, value in ep.as_env().items():
            mp.setenv(key, value)
        mp.setenv("MUSIC_MODEL_CACHE_DIR", str(model_cache))
        mp.setenv("MUSIC_STREAM_CACHE_DIR", str(tmp_path_factory.mktemp("audio-cache")))  # not in the repo
        mp.setenv(
            "MUSIC_LYRICS_PROVIDERS", OFFLINE_PROVIDERS
        )  # tests never call lyrics sites on the internet
        migrate(ep.database_url)
        yield ep


@pytest.fixture
def db_url(services: ServiceEndpoints) -> str:
    """The application database, emptied before each test."""
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES} CASCADE")  # noqa: S608 - fixed table list
    return services.database_url


@pytest.fixture
def store(services: ServiceEndpoints) -> ObjectStore:
    """A fresh bucket per test."""
    s = ObjectStore(
        services.s3_endpoint,
        services.s3_access_key,
        services.s3_secret_key,
        bucket=f"t-{uuid.uuid4().hex[:12]}",
    )
    s.ensure_bucket()
    return s


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's MUSIC_DATA_DIR."""
    if "MUSIC_DATA_DIR" in os.environ:
        monkeypatch.delenv("MUSIC_DATA_DIR")


@pytest.fixture
def resources(services: ServiceEndpoints, store: ObjectStore, db_url: str) -> dict[str, object]:
    return {
        "db": DatabaseResource(url=db_url),
        "storage": ObjectStoreResource(
            endpoint=services.s3_endpoint,
            access_key=services.s3_access_key,
            secret_key=services.s3_secret_key,
            bucket=store.bucket,
            inbox_prefix="inbox/",
        ),
        "pipeline": PipelineConfigResource(
            workers=2, tracks_per_run=50, objects_per_registration_run=4, cache_url=services.redis_url
        ),
        "asr": AsrResource(threads=2),
        "embedder": EmbedderResource(),
        "lyrics_sources": LyricsResource(providers=["tags", "sidecar"]),
        "llm": LlmResource(),  # off, as by default
    }


@pytest.fixture
def defs(resources: dict[str, object]) -> dg.Definitions:
    return dg.Definitions(
        assets=[*definitions.PER_TRACK_ASSETS, definitions.vector_index],
        jobs=[definitions.process_tracks_job, definitions.register_uploads_job, definitions.vector_index_job],
        sensors=[inbox_sensor, new_tracks_sensor, definitions.vector_index_sensor],
        resources=resources,
    )
