"""Work a stopped run left unfinished: tracks never started, or with stages it never finished.

A run stops for good when `up` is stopped with Ctrl-C, crashes, a worker is killed, or a step fails
as a whole (the database or the bucket went away). Its tracks then have stages that are "running"
or not there at all. Once no run of any job is queued or running, new_tracks_sensor requests them
again, each from its first unfinished stage (what is done is not redone). It looks for them at most
every 5 minutes (the query reads every track's stages), and repairs back off: 10 minutes after the
last round, doubling with each round in a row that failed, up to 6 hours.
"""

import time
from itertools import groupby

import dagster as dg

from music_core.batching import batch_run_key, contiguous_ranges
from music_core.db.tracks import UnfinishedTrack
from music_core.stage_names import STAGES

LOST_RUN_SECONDS = 600  # untouched this long, with no run in flight: the run that had them stopped
SCAN_SECONDS = 300  # a finished library is looked through at most this often
MAX_REPAIR_WAIT_SECONDS = 6 * 3600
REPAIR_TAG = "music/repair"
ROUND_TAG = "music/repair_round"  # the runs one evaluation requested
PROCESS_JOB = "process_tracks_job"
_ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
]  # fmt: skip


def any_run_in_flight(instance: dg.DagsterInstance) -> bool:
    """Any job's: `music-analyzer process`, the UI's "Materialize" and backfills make stages too."""
    return bool(instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1))


def repair_wait_seconds(instance: dg.DagsterInstance, now: float) -> float:
    """Seconds until the next repair round may be requested (0 when it may be now)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=PROCESS_JOB, tags={REPAIR_TAG: "true"}), limit=100
    )
    if not records:
        return 0.0
    rounds = [list(runs) for _, runs in groupby(records, key=lambda r: r.dagster_run.tags.get(ROUND_TAG))]
    failed_in_a_row = 0
    for runs in rounds:
        if not any(r.dagster_run.status in _ENDED_BADLY for r in runs):
            break
        failed_in_a_row += 1
    wait = min(MAX_REPAIR_WAIT_SECONDS, LOST_RUN_SECONDS * 2**failed_in_a_row)
    return max(0.0, records[0].create_timestamp.timestamp() + wait - now)


def scan_wait_seconds(instance: dg.DagsterInstance, now: float, scanned_at: float) -> float | None:
    """Seconds until unfinished tracks may be looked for; None while a run is in flight."""
    if any_run_in_flight(instance):
        return None
    return max(repair_wait_seconds(instance, now), scanned_at + SCAN_SECONDS - now, 0.0)


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
    stamp = repr(time.time() if now is None else now)  # every round's keys are new: never deduplicated
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
                        ROUND_TAG: stamp,
                        "music/from_stage": stage,
                    },
                )
            )
    return requests
