"""Dagster resources: thin wrappers that build the plain adapters from configuration."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from music_core.cache_generation import bump_generation
from music_core.stages import StageContext, stage_context
from music_core.storage import ObjectStore
from music_pipeline.instance import keep_storage_connections


class DatabaseResource(dg.ConfigurableResource):
    """The application database (system of record)."""

    url: str


class ObjectStoreResource(dg.ConfigurableResource):
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str = "music"
    secure: bool = False
    region: str | None = None
    inbox_prefix: str = "inbox/"

    def store(self) -> ObjectStore:
        return ObjectStore(
            self.endpoint,
            self.access_key,
            self.secret_key,
            bucket=self.bucket,
            secure=self.secure,
            region=self.region,
        )


class PipelineConfigResource(dg.ConfigurableResource):
    cache_url: str | None = None  # Redis of the API's response cache: bumped after every write
    workers: int = 2
    tracks_per_run: int = 50
    objects_per_registration_run: int = 200
    ffmpeg_timeout_seconds: int = 3600


@contextmanager
def open_stage_context(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    cfg: PipelineConfigResource,
) -> Iterator[StageContext]:
    keep_storage_connections(context.instance)  # this run's per-partition events reuse connections
    try:
        with stage_context(
            storage.store(),
            db.url,
            run_id=context.run.run_id,
            timeout_seconds=cfg.ffmpeg_timeout_seconds,
            workers=cfg.workers,
        ) as ctx:
            yield ctx
    finally:  # a step that failed halfway may have written too
        bump_generation(cfg.cache_url)  # cached API answers from before this write are no longer read
