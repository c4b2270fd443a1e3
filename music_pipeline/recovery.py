"""Runs whose worker is gone are ended, so that nothing waits for them.

Dagster's DefaultRunLauncher cannot tell whether a run's worker is still alive (run monitoring only
times out runs that never started or never finished canceling). A run left STARTED by a killed
worker (Ctrl-C, a crash, the kernel's OOM killer) counts against the run queue's concurrency limit
for ever, and the track sensor never repairs its tracks while it looks in flight. Run workers record
their process ids ("Started process for run (pid: …)"); a run none of whose recorded processes is
alive has stopped. Checked by `music-analyzer up` when it starts, and every minute by
stopped_runs_sensor, which runs in the code location's process, where DefaultRunLauncher starts the
run workers.
"""

import os
from collections.abc import Callable, Sequence

import dagster as dg
from dagster._core.events import DagsterEventType

from music_core.procfs import started_at

INTERRUPTED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
STOPPED_MESSAGE = (
    "Stopped: none of its processes is alive any more (Ctrl-C, a crash, or the OOM killer); the "
    "tracks it left unfinished are requested again by new_tracks_sensor."
)
# A process that started more than this after a run logged its pid is another process with a reused id.
_START_SLACK_SECONDS = 2.0


def run_pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """Processes the run recorded as executing it, with the time each was recorded."""
    pids: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        value = data.metadata.get("pid") if data is not None else None
        if value is not None and str(value.value).isdigit():
            pids.setdefault(int(value.value), entry.timestamp)
    return pids


def pid_alive(pid: int, recorded_at: float) -> bool:
    """Whether the process that recorded ``pid`` at ``recorded_at`` still runs (not another process
    that got the same id later)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    started = started_at(pid)
    return started is None or started <= recorded_at + _START_SLACK_SECONDS


def end_stopped_runs(
    instance: dg.DagsterInstance,
    *,
    statuses: Sequence[dg.DagsterRunStatus] = INTERRUPTED,
    without_pids_stopped: bool = True,
    is_alive: Callable[[int, float], bool] = pid_alive,
) -> list[str]:
    """Mark runs in ``statuses`` none of whose recorded processes is alive as failed (canceled when
    they were being canceled); returns their ids. A run that recorded no process yet counts as
    stopped only with ``without_pids_stopped`` (true when nothing can be running: `up` starting)."""
    ended = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(statuses))):
        run = record.dagster_run
        pids = run_pids(instance, run.run_id)
        if (not pids and not without_pids_stopped) or any(is_alive(p, t) for p, t in pids.items()):
            continue
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, STOPPED_MESSAGE)
        else:
            instance.report_run_failed(run, STOPPED_MESSAGE)
        ended.append(run.run_id)
    return ended
