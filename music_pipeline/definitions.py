"""Composes the code location. No logic lives here."""

from __future__ import annotations

import dagster as dg

from music_core.settings import Settings
from music_pipeline.defs.analysis.assets import embedding, transcription
from music_pipeline.defs.audio.assets import audio
from music_pipeline.defs.housekeeping.sensors import stopped_runs_sensor
from music_pipeline.defs.index.assets import vector_index, vector_index_job
from music_pipeline.defs.index.sensors import vector_index_sensor
from music_pipeline.defs.ingest.jobs import register_uploads_job
from music_pipeline.defs.ingest.sensors import inbox_sensor, new_tracks_sensor
from music_pipeline.defs.lyrics.assets import LyricsResource, comparison, lyrics
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.defs.retention.jobs import duplicates_job, orphan_sweep_job, retention_job
from music_pipeline.defs.retention.schedules import build_schedules
from music_pipeline.defs.retention.storage_stats import storage_stats_job, storage_stats_snapshot
from music_pipeline.ml_resources import AsrResource, EmbedderResource, LlmResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource, PipelineConfigResource

# In stage order; ``audio`` materializes both audio_file and converted_audio in one step.
PER_TRACK_ASSETS = [audio, transcription, embedding, lyrics, comparison]

process_tracks_job = dg.define_asset_job(
    "process_tracks_job",
    selection=dg.AssetSelection.assets(*PER_TRACK_ASSETS),
    partitions_def=tracks_partitions,
    executor_def=dg.in_process_executor,
    description="Every per-track stage for a batch of tracks (one run, many partitions).",
)


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Connection values come from the environment at run time (secrets never enter run config)."""
    s = settings or Settings()
    return {
        "db": DatabaseResource(url=dg.EnvVar("MUSIC_DATABASE_URL")),
        "storage": ObjectStoreResource(
            endpoint=dg.EnvVar("MUSIC_S3_ENDPOINT"),
            access_key=dg.EnvVar("MUSIC_S3_ACCESS_KEY"),
            secret_key=dg.EnvVar("MUSIC_S3_SECRET_KEY"),
            bucket=s.bucket,
            secure=s.s3_secure,
            region=s.s3_region,
            inbox_prefix=s.inbox_prefix,
        ),
        "pipeline": PipelineConfigResource(
            cache_url=dg.EnvVar("MUSIC_REDIS_URL"),
            workers=s.workers,
            tracks_per_run=s.tracks_per_run,
            objects_per_registration_run=s.objects_per_registration_run,
            ffmpeg_timeout_seconds=s.ffmpeg_timeout_seconds,
        ),
        "asr": AsrResource(
            backend=s.asr_backend,
            model=s.asr_model,
            compute_type=s.asr_compute_type,
            threads=s.asr_threads,
            beam_size=s.asr_beam_size,
            chunk_seconds=s.asr_chunk_seconds,
            nemo_python=s.asr_nemo_python,
        ),
        "embedder": EmbedderResource(
            model=s.embedding_model, threads=s.embedding_threads, chunk_words=s.embedding_chunk_words
        ),
        "lyrics_sources": LyricsResource(
            providers=s.lyrics_providers, lrclib_url=s.lrclib_url, cache_url=dg.EnvVar("MUSIC_REDIS_URL")
        ),
        "llm": LlmResource(
            backend=s.llm_backend,
            model=s.llm_model,
            url=s.llm_url,
            max_new_tokens=s.llm_max_new_tokens,
            threads=s.llm_threads,
        ),
    }


defs = dg.Definitions(
    assets=[*PER_TRACK_ASSETS, vector_index, storage_stats_snapshot],
    jobs=[
        process_tracks_job,
        register_uploads_job,
        vector_index_job,
        retention_job,
        orphan_sweep_job,
        duplicates_job,
        storage_stats_job,
    ],  # fmt: skip
    sensors=[inbox_sensor, new_tracks_sensor, vector_index_sensor, stopped_runs_sensor],
    schedules=build_schedules(Settings()),
    resources=build_resources(),
)
