"""Run housekeeping the daemon does not do for DefaultRunLauncher."""

import dagster as dg

from music_pipeline.recovery import end_stopped_runs


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ends started runs none of whose processes is alive any more (a run worker that was "
    "killed), so that they hold no run-queue slot and new_tracks_sensor resumes their tracks.",
)
def stopped_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    # Evaluated in the code location's process, where DefaultRunLauncher starts the run workers: their
    # process ids are visible here. Runs that recorded no process yet are left to run monitoring.
    ended = end_stopped_runs(
        context.instance, statuses=[dg.DagsterRunStatus.STARTED], without_pids_stopped=False
    )
    for run_id in ended:
        context.log.warning(f"run {run_id} was still marked started without a live process: marked failed")
    return dg.SkipReason(
        f"ended {len(ended)} stopped run(s)" if ended else "every started run has a live process"
    )
