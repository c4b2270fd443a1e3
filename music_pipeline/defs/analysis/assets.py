"""Per-track transcription and transcript embeddings, batched like the audio assets."""

import dagster as dg

from music_core import ml_stages, stages
from music_core.asr.backends import describe_model as describe_asr
from music_core.db import analysis
from music_core.embed.embedder import describe_model as describe_embedder
from music_core.settings import Settings
from music_pipeline.defs.audio.assets import BATCH_POLICY, stage_metadata
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.ml_resources import AsrResource, EmbedderResource
from music_pipeline.resources import (
    DatabaseResource,
    ObjectStoreResource,
    PipelineConfigResource,
    open_stage_context,
)

_settings = Settings()
# The configured model is part of the code version: changing it marks every partition stale in the
# UI, and a backfill (UI or `dagster asset materialize`) re-runs exactly what changed.
ASR_VERSION = describe_asr(_settings.asr_backend, _settings.asr_model)
EMBEDDING_VERSION = describe_embedder(_settings.embedding_model)


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="analysis",
    code_version=f"1|{ASR_VERSION}",
    deps=["converted_audio"],
    kinds={"whisper", "postgres"},
    description="Text, segments, word timestamps, confidence, language and real-time factor; "
    "instrumental or silent tracks are recorded as 'no vocals'.",
)
def transcription(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
    asr: AsrResource,
) -> dg.MaterializeResult:
    stage = ml_stages.transcribe_stage(asr.transcriber(), asr.chunk_seconds)
    with open_stage_context(context, db, storage, pipeline) as ctx:
        # One track at a time: the model already uses every core it is given.
        outcomes = stages.run_batch(ctx, stage, context.partition_keys, workers=1)
    return dg.MaterializeResult(metadata=stage_metadata(outcomes))


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="analysis",
    code_version=f"1|{EMBEDDING_VERSION}",
    deps=[transcription],
    kinds={"pgvector"},
    description="Transcript vectors (chunked) in pgvector; the dimension comes from the model.",
)
def embedding(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    model = embedder.embedder()
    with open_stage_context(context, db, storage, pipeline) as ctx:
        with ctx.connection() as conn:
            analysis.ensure_vector_index(conn, model.model_id, model.dim)
        stage = ml_stages.embed_stage(model, embedder.chunk_words)
        outcomes = stages.run_batch(ctx, stage, context.partition_keys, workers=1)
    meta = stage_metadata(outcomes)
    meta["model_id"] = dg.MetadataValue.text(model.model_id)
    meta["dimension"] = dg.MetadataValue.int(model.dim)
    return dg.MaterializeResult(metadata=meta)
