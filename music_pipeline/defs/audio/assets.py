"""Per-track audio assets. Each run handles a batch of partitions (single-run backfill policy),
because a Dagster run costs seconds of overhead here; per-track failures are recorded, not raised."""

from collections.abc import Iterator

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


DURATION_CHECK = "duration_matches_original"


@dg.multi_asset(
    name="audio",
    specs=[
        dg.AssetSpec(
            stages.AUDIO_FILE,
            group_name="audio",
            code_version="2",
            kinds={"ffmpeg", "postgres"},
            description="Container, codec, duration, sample rate, channels, bit rate and tags of the original.",
        ),
        dg.AssetSpec(
            stages.CONVERTED_AUDIO,
            deps=[stages.AUDIO_FILE],
            group_name="audio",
            code_version="2",
            kinds={"ffmpeg", "s3"},
            description="16 kHz mono FLAC under converted/<sha>.flac, plus a Chromaprint fingerprint.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            DURATION_CHECK,
            asset=stages.CONVERTED_AUDIO,
            description=f"Converted duration equals the original's within {stages.DURATION_TOLERANCE_S} s.",
        )
    ],
    partitions_def=tracks_partitions,
    backfill_policy=BATCH_POLICY,
)
def audio(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> Iterator[dg.MaterializeResult]:
    """One step for both audio assets: each original is downloaded once, probed, then converted
    (two separate steps read every original from the bucket twice, and the probe by range requests)."""
    with open_stage_context(context, db, storage, pipeline) as ctx:
        pairs = stages.run_batch(
            ctx, stages.prepare_audio, context.partition_keys, stages.io_threads(pipeline.workers)
        )
    probed = [facts for facts, _ in pairs]
    converted = [conversion for _, conversion in pairs]
    yield dg.MaterializeResult(asset_key=stages.AUDIO_FILE, metadata=stage_metadata(probed))
    drifted = {
        o.track_id[:12]: round(o.details["duration_drift"], 3)
        for o in converted
        if o.status == "done"
        and o.details.get("duration_drift") is not None
        and o.details["duration_drift"] > stages.DURATION_TOLERANCE_S
    }
    check = dg.AssetCheckResult(
        asset_key=stages.CONVERTED_AUDIO,
        check_name=DURATION_CHECK,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"drifted_tracks": dg.MetadataValue.json(drifted)},
    )
    yield dg.MaterializeResult(
        asset_key=stages.CONVERTED_AUDIO, metadata=stage_metadata(converted), check_results=[check]
    )
