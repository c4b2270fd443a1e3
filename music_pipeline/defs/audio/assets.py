"""Per-track audio assets. Each run handles a batch of partitions (single-run backfill policy),
because a Dagster run costs seconds of overhead here; per-track failures are recorded, not raised."""

import dagster as dg

from music_core import stages
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.resources import (
    DatabaseResource,
    ObjectStoreResource,
    PipelineConfigResource,
    open_stage_context,
)

BATCH_POLICY = dg.BackfillPolicy.single_run()


def stage_metadata(outcomes: list[stages.StageOutcome]) -> dict[str, dg.MetadataValue]:
    summary = stages.summarise(outcomes)
    meta: dict[str, dg.MetadataValue] = {
        "tracks": dg.MetadataValue.int(len(outcomes)),
        "done": dg.MetadataValue.int(summary["done"]),
        "failed": dg.MetadataValue.int(summary["failed"]),
        "skipped": dg.MetadataValue.int(summary["skipped"]),
    }
    if summary["problems"]:
        rows = "\n".join(
            f"| `{p['track_id'][:12]}` | {p['status']} | {p['error']} |" for p in summary["problems"]
        )
        meta["problems"] = dg.MetadataValue.md("| track | status | reason |\n|---|---|---|\n" + rows)
    return meta


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="audio",
    code_version="1",
    kinds={"ffmpeg", "postgres"},
    description="Container, codec, duration, sample rate, channels, bit rate and tags of the original.",
)
def audio_file(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.MaterializeResult:
    with open_stage_context(context, db, storage, pipeline) as ctx:
        outcomes = stages.run_batch(
            ctx, stages.analyse_audio, context.partition_keys, stages.io_threads(pipeline.workers)
        )
    return dg.MaterializeResult(metadata=stage_metadata(outcomes))


DURATION_CHECK = "duration_matches_original"


@dg.asset(
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
    group_name="audio",
    code_version="1",
    deps=[audio_file],
    kinds={"ffmpeg", "s3"},
    check_specs=[
        dg.AssetCheckSpec(
            DURATION_CHECK,
            asset="converted_audio",
            description=f"Converted duration equals the original's within {stages.DURATION_TOLERANCE_S} s.",
        )
    ],
    description="16 kHz mono FLAC under converted/<sha>.flac, plus a Chromaprint fingerprint.",
)
def converted_audio(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.MaterializeResult:
    with open_stage_context(context, db, storage, pipeline) as ctx:
        outcomes = stages.run_batch(
            ctx, stages.convert_audio, context.partition_keys, stages.io_threads(pipeline.workers)
        )
    drifted = {
        o.track_id[:12]: round(o.details["duration_drift"], 3)
        for o in outcomes
        if o.status == "done"
        and o.details.get("duration_drift") is not None
        and o.details["duration_drift"] > stages.DURATION_TOLERANCE_S
    }
    check = dg.AssetCheckResult(
        check_name=DURATION_CHECK,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"drifted_tracks": dg.MetadataValue.json(drifted)},
    )
    return dg.MaterializeResult(metadata=stage_metadata(outcomes), check_results=[check])
