"""Bucket sensors. SeaweedFS and many S3 servers have no notifications, so these poll with cursors."""

import functools
import json
import time
from collections.abc import Callable

import dagster as dg

from music_core.batching import batch_run_key, chunked, contiguous_ranges, is_sidecar
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.settings import Settings
from music_core.stage_names import STAGES
from music_pipeline.defs.ingest import repair
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
) -> dg.SensorResult:
    """Request registration for objects that are new or changed, and again for objects still in the
    inbox after the run that was to register them ended (it failed, was stopped with Ctrl-C, or the
    same bytes were uploaded again under the same name after it succeeded)."""
    requested = _requests(context.cursor)
    present = {o.key: o.etag for o in storage.store().list(storage.inbox_prefix) if not is_sidecar(o.key)}
    now = time.time()
    run_ended = functools.cache(lambda run_key: _run_ended(context.instance, run_key))  # one query per run
    wanted = sorted(
        k for k, etag in present.items() if _needs_request(requested.get(k), etag, now, run_ended)
    )
    # Forget objects that left the inbox; remember the ones requested and still waiting.
    cursor = {k: v for k, v in requested.items() if k in present and k not in wanted}
    runs = []
    for batch in chunked(wanted, pipeline.objects_per_registration_run):
        # The request time makes every request's key new: a retry is never deduplicated away.
        run_key = batch_run_key("register", [f"{k}@{present[k]}" for k in batch] + [repr(now)])
        runs.append(
            dg.RunRequest(
                run_key=run_key,
                run_config={"ops": {"register_uploads": {"config": {"keys": batch}}}},
                tags={"music/objects": str(len(batch))},
            )
        )
        cursor.update({k: _request_entry(requested.get(k), present[k], run_key, now) for k in batch})
    skip = None if runs else "no new objects in the inbox"
    return dg.SensorResult(run_requests=runs, skip_reason=skip, cursor=json.dumps(cursor))


# A request whose run cannot be found this long after it was made was lost: request again.
LOST_REQUEST_SECONDS = 3600
# After a run ended with the object still in the inbox, the next request waits this long, doubling
# with each attempt up to an hour: an object that keeps failing never floods the run list.
RETRY_SECONDS = 60
_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _requests(cursor: str | None) -> dict[str, dict]:
    saved = json.loads(cursor) if cursor else {}
    # Cursors of earlier releases held only the etag: such entries are requested once more.
    return {
        k: v if isinstance(v, dict) else {"etag": v, "run": None, "at": 0.0, "attempt": 0}
        for k, v in saved.items()
    }


def _request_entry(previous: dict | None, etag: str, run_key: str, now: float) -> dict:
    attempt = previous.get("attempt", 0) + 1 if previous and previous["etag"] == etag else 1
    return {"etag": etag, "run": run_key, "at": now, "attempt": attempt}


def _run_ended(instance: dg.DagsterInstance, run_key: str) -> bool | None:
    """Whether the run launched for this key has ended; None when there is no such run (yet)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return runs[0].status in _ENDED if runs else None


def _needs_request(
    request: dict | None, etag: str, now: float, run_ended: Callable[[str], bool | None]
) -> bool:
    if request is None or request["etag"] != etag or not request["run"]:
        return True
    ended = run_ended(request["run"])
    if ended is None:  # not launched yet, or the request was lost
        return now - request["at"] > LOST_REQUEST_SECONDS
    backoff = min(LOST_REQUEST_SECONDS, RETRY_SECONDS * 2 ** max(0, request.get("attempt", 1) - 1))
    return ended and now - request["at"] >= backoff  # still in the inbox after its run


def _track_cursor(raw: str | None) -> tuple[int, float]:
    """(the last registration seen, when unfinished tracks were last looked for). Earlier releases
    kept the first only."""
    if not raw:
        return 0, 0.0
    if raw.isdigit():
        return int(raw), 0.0
    saved = json.loads(raw)
    return int(saved["after"]), float(saved.get("scanned_at", 0.0))


def _skip(reason: str, after: int, scanned_at: float) -> dg.SensorResult:
    return dg.SensorResult(skip_reason=reason, cursor=json.dumps({"after": after, "scanned_at": scanned_at}))


@dg.sensor(
    job_name="process_tracks_job",
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches batched runs of every per-track stage for newly registered tracks, and "
    "resumes tracks a stopped run left unfinished.",
)
def new_tracks_sensor(
    context: dg.SensorEvaluationContext, db: DatabaseResource, pipeline: PipelineConfigResource
) -> dg.SensorResult:
    after, scanned_at = _track_cursor(context.cursor)
    limit = pipeline.tracks_per_run * 20
    with connect(db.url) as conn:
        fresh = tracks.unstarted_tracks(conn, after, limit=limit)
        unfinished: list[tracks.UnfinishedTrack] = []
        if not fresh:
            now = time.time()
            wait = repair.scan_wait_seconds(context.instance, now, scanned_at)
            if wait is None:
                return _skip(
                    "no new tracks (unfinished ones are looked for once no run is in flight)",
                    after,
                    scanned_at,
                )
            if wait > 0:
                return _skip(
                    f"no new tracks; unfinished ones are looked for in {wait:.0f} s", after, scanned_at
                )
            # Nothing queued or running: work a stopped run left (Ctrl-C, a crash) is resumed.
            unfinished = tracks.unfinished_tracks(conn, STAGES, repair.LOST_RUN_SECONDS, limit)
            scanned_at = now
    if not fresh and not unfinished:
        return _skip("no new tracks, and none unfinished", after, scanned_at)
    name = tracks_partitions.name
    assert name is not None
    order = list(context.instance.get_dynamic_partitions(name))
    known = set(order)
    wanted = [tid for tid, _ in fresh] or [t.track_id for t in unfinished]
    missing = [tid for tid in wanted if tid not in known]  # repair a registration that died midway
    order += missing
    if fresh:
        runs = [
            dg.RunRequest(
                run_key=batch_run_key("process", [first, last, str(after)]),
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            )
            for first, last in contiguous_ranges(order, wanted, pipeline.tracks_per_run)
        ]
    else:
        runs = repair.repair_requests(order, unfinished, pipeline.tracks_per_run)
    requests = [tracks_partitions.build_add_request(missing)] if missing else []
    after = max(after, *(seq for _, seq in fresh)) if fresh else after
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=requests,
        cursor=json.dumps({"after": after, "scanned_at": scanned_at}),
    )
