"""Bucket sensors. SeaweedFS and many S3 servers have no notifications, so these poll with cursors."""

import json

import dagster as dg

from music_core.batching import batch_run_key, chunked, contiguous_ranges, is_sidecar
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.settings import Settings
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.resources import DatabaseResource, ObjectStoreResource, PipelineConfigResource

# Read once when the code location loads (MUSIC_SENSOR_INTERVAL_SECONDS).
SENSOR_INTERVAL = Settings().sensor_interval_seconds


@dg.sensor(
    job_name="register_uploads_job",
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the inbox prefix and launches one registration run per batch of new objects.",
)
def inbox_sensor(
    context: dg.SensorEvaluationContext, storage: ObjectStoreResource, pipeline: PipelineConfigResource
) -> dg.SensorResult | dg.SkipReason:
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    present = {o.key: o.etag for o in storage.store().list(storage.inbox_prefix) if not is_sidecar(o.key)}
    fresh = sorted(k for k, etag in present.items() if requested.get(k) != etag)
    # Forget objects that left the inbox; remember the ones requested but still waiting.
    cursor = {k: e for k, e in present.items() if k in requested or k in fresh}
    if not fresh:
        return dg.SkipReason("no new objects in the inbox")
    runs = [
        dg.RunRequest(
            run_key=batch_run_key("register", [f"{k}@{present[k]}" for k in batch]),
            run_config={"ops": {"register_uploads": {"config": {"keys": batch}}}},
            tags={"music/objects": str(len(batch))},
        )
        for batch in chunked(fresh, pipeline.objects_per_registration_run)
    ]
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor))


@dg.sensor(
    job_name="process_tracks_job",
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches batched runs of every per-track stage for newly registered tracks.",
)
def new_tracks_sensor(
    context: dg.SensorEvaluationContext, db: DatabaseResource, pipeline: PipelineConfigResource
) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor or 0)
    with connect(db.url) as conn:
        fresh = tracks.unstarted_tracks(conn, after, limit=pipeline.tracks_per_run * 20)
    if not fresh:
        return dg.SkipReason("no new tracks")
    name = tracks_partitions.name
    assert name is not None
    order = list(context.instance.get_dynamic_partitions(name))
    known = set(order)
    missing = [tid for tid, _ in fresh if tid not in known]  # repair a registration that died midway
    order += missing
    ranges = contiguous_ranges(order, [tid for tid, _ in fresh], pipeline.tracks_per_run)
    runs = [
        dg.RunRequest(
            run_key=batch_run_key("process", [first, last, str(after)]),
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
        )
        for first, last in ranges
    ]
    requests = [tracks_partitions.build_add_request(missing)] if missing else []
    return dg.SensorResult(
        run_requests=runs, dynamic_partitions_requests=requests, cursor=str(max(seq for _, seq in fresh))
    )
