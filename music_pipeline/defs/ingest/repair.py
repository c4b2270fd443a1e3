"""Work a stopped run left unfinished: tracks never started, or with stages it never finished.

A run stops for good when `up` is stopped with Ctrl-C, crashes, or a step fails as a whole (the
database or the bucket went away). Its tracks then have stages that are "running" or not there at
all. Once nothing is queued or running, new_tracks_sensor requests them again, each from its first
unfinished stage (what is done is not redone). Repairs back off: 10 minutes after the last one,
doubling with each repair run in a row that failed, up to 6 hours.
"""

import time

import dagster as dg

from music_core.batching import batch_run_key, contiguous_ranges
from music_core.db.tracks import UnfinishedTrack
from music_core.stages import STAGES

LOST_RUN_SECONDS = 600  # untouched this long, with no run in flight: the run that had them stopped
MAX_REPAIR_WAIT_SECONDS = 6 * 3600
REPAIR_TAG = "music/repair"
PROCESS_JOB = "process_tracks_job"
_ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def repair_wait_seconds(instance: dg.DagsterInstance, now: float) -> float:
    """Seconds until the next repair may be requested (0 when it may be now)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=PROCESS_JOB, tags={REPAIR_TAG: "true"}), limit=6
    )
    if not records:
        return 0.0
    failed_in_a_row = 0
    for record in records:
        if record.dagster_run.status not in _ENDED_BADLY:
            break
        failed_in_a_row += 1
    wait = min(MAX_REPAIR_WAIT_SECONDS, LOST_RUN_SECONDS * 2**failed_in_a_row)
    return max(0.0, records[0].create_timestamp.timestamp() + wait - now)


def _stage_assets(first_stage: str) -> list[dg.AssetKey] | None:
    """Asset keys that make ``first_stage`` and the stages after it; None for all of them."""
    if first_stage == STAGES[0]:
        return None
    from music_pipeline.oneshot import assets_for_stages  # imports the definitions, which import us

    return [key for asset in assets_for_stages(first_stage) for key in asset.keys]


def repair_requests(
    order: list[str], unfinished: list[UnfinishedTrack], batch: int, now: float | None = None
) -> list[dg.RunRequest]:
    """One run per contiguous range of tracks that start again from the same stage."""
    stamp = repr(time.time() if now is None else now)  # every repair's key is new: never deduplicated
    requests = []
    for stage in STAGES:
        ids = [t.track_id for t in unfinished if t.first_unfinished == stage]
        for first, last in contiguous_ranges(order, ids, batch) if ids else ():
            requests.append(
                dg.RunRequest(
                    run_key=batch_run_key("repair", [first, last, stage, stamp]),
                    asset_selection=_stage_assets(stage),
                    tags={
                        "dagster/asset_partition_range_start": first,
                        "dagster/asset_partition_range_end": last,
                        REPAIR_TAG: "true",
                        "music/from_stage": stage,
                    },
                )
            )
    return requests
