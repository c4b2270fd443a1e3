"""Per-track official lyrics and the transcript-vs-lyrics comparison (with synced LRC)."""

import dagster as dg

from music_core import lyrics_stages, stages
from music_core.db import analysis
from music_core.lyrics.registry import build_providers
from music_core.provider_keys import resolve_keys, web_urls
from music_core.settings import Settings
from music_pipeline.defs.analysis.assets import EMBEDDING_VERSION
from music_pipeline.defs.audio.assets import BATCH_POLICY, stage_metadata
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.ml_resources import EmbedderResource, LlmResource
from music_pipeline.resources import (
    DatabaseResource,
    ObjectStoreResource,
    PipelineConfigResource,
    open_stage_context,
)


class LyricsResource(dg.ConfigurableResource):
    providers: list[str] = ["tags", "sidecar", "lrclib"]
    lrclib_url: str = "https://lrclib.net"
    cache_url: str | None = None


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="lyrics",
    code_version=f"2|{EMBEDDING_VERSION}",
    deps=["transcription"],
    kinds={"python", "postgres", "pgvector"},
    description="Official lyrics from embedded tags, sidecar .lrc/.txt files or LRCLIB (first accepted wins), "
    "and their vectors (source 'lyrics') so semantic search finds songs by their official words.",
)
def lyrics(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
    lyrics_sources: LyricsResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    model = embedder.embedder()
    settings = Settings()  # provider keys: environment or api_config (encrypted), never run config
    with open_stage_context(context, db, storage, pipeline) as ctx:
        with ctx.connection() as conn:
            analysis.ensure_vector_index(conn, model.model_id, model.dim)
            keys = resolve_keys(settings, conn)
        for note in keys.notes:
            context.log.warning(note)
        providers = build_providers(
            lyrics_sources.providers, storage.store(), cache_url=lyrics_sources.cache_url,
            lrclib_url=lyrics_sources.lrclib_url, keys=keys.keys, urls=web_urls(settings),
        )  # fmt: skip
        stage = lyrics_stages.lyrics_stage(providers, model, embedder.chunk_words)
        outcomes = stages.run_batch(ctx, stage, context.partition_keys, workers=2)
    return dg.MaterializeResult(metadata=stage_metadata(outcomes))


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="lyrics",
    code_version="1",
    deps=[lyrics],
    kinds={"python", "postgres"},
    description="WER, CER, similarity 0-100, aligned word diff, possible reasons, synced lyrics (LRC), and "
    "optional LLM notes (off unless MUSIC_LLM_BACKEND is set).",
)
def comparison(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
    llm: LlmResource,
) -> dg.MaterializeResult:
    analyst, load_warning = llm.analyst()  # None unless MUSIC_LLM_BACKEND is set
    if load_warning:
        context.log.warning(load_warning)
    stage = lyrics_stages.comparison_stage(analyst, load_warning)
    with open_stage_context(context, db, storage, pipeline) as ctx:
        outcomes = stages.run_batch(ctx, stage, context.partition_keys, pipeline.workers)
    return dg.MaterializeResult(metadata=stage_metadata(outcomes))
