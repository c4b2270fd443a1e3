"""After a stop or a crash: runs whose worker is gone are ended, so that nothing waits for them.

Dagster's DefaultRunLauncher cannot tell whether a run's worker is still alive (run monitoring only
times out runs that never started). A run left STARTED by a killed worker counts against the run
queue's concurrency limit forever, and the track sensor never repairs its tracks while it looks in
flight. `music-analyzer up` calls this before it starts the daemon: on a single host, a run none of
whose recorded processes is alive has stopped.
"""

import os
from collections.abc import Callable

import dagster as dg
from dagster._core.events import DagsterEventType

INTERRUPTED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
STOPPED_MESSAGE = (
    "Stopped with its run worker (Ctrl-C, or a crash of `music-analyzer up`); the tracks it left "
    "unfinished are requested again by new_tracks_sensor."
)


def run_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """Processes the run recorded as executing it ("Started process for run (pid: …)" and the like)."""
    pids = set()
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        value = data.metadata.get("pid") if data is not None else None
        if value is not None and str(value.value).isdigit():
            pids.add(int(value.value))
    return pids


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def end_stopped_runs(instance: dg.DagsterInstance, is_alive: Callable[[int], bool] = pid_alive) -> list[str]:
    """Mark runs that look in flight but have no live process as failed (canceled when they were
    being canceled). Returns their run ids."""
    ended = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=INTERRUPTED)):
        run = record.dagster_run
        if any(is_alive(pid) for pid in run_pids(instance, run.run_id)):
            continue
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, STOPPED_MESSAGE)
        else:
            instance.report_run_failed(run, STOPPED_MESSAGE)
        ended.append(run.run_id)
    return ended
