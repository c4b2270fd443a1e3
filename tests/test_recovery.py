"""Runs a stop or a crash left looking in flight are ended when `up` starts again."""

from __future__ import annotations

import os
import subprocess
import time

import dagster as dg
from dagster._core.events import EngineEventData

from music_pipeline.defs.housekeeping.sensors import stopped_runs_sensor
from music_pipeline.recovery import STOPPED_MESSAGE, end_stopped_runs, pid_alive, run_pids


@dg.op
def step() -> None:
    pass


@dg.job(name="process_tracks_job")
def job() -> None:
    step()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, pid: int | None = None) -> str:
    made = instance.create_run_for_job(job, status=status)
    if pid is not None:  # as the run worker records itself
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", made, EngineEventData.in_process(pid)
        )
    return made.run_id


def test_a_process_id_used_again_by_a_later_process_is_not_the_runs() -> None:
    now = time.time()
    assert pid_alive(os.getpid(), now)
    assert not pid_alive(_dead_pid(), now)
    # This process started long after that: it only got the id a run's worker once had.
    assert not pid_alive(os.getpid(), now - 10 * 24 * 3600)


def test_the_sensor_ends_started_runs_whose_processes_died_while_up_runs() -> None:
    instance = dg.DagsterInstance.ephemeral()
    killed = _run(instance, dg.DagsterRunStatus.STARTED, _dead_pid())
    no_pid_yet = _run(instance, dg.DagsterRunStatus.STARTED)  # its worker is still starting up
    starting = _run(instance, dg.DagsterRunStatus.STARTING)  # run monitoring's start timeout
    live = _run(instance, dg.DagsterRunStatus.STARTED, os.getpid())
    with dg.build_sensor_context(instance=instance) as ctx:
        result = stopped_runs_sensor(ctx)
    assert isinstance(result, dg.SkipReason) and result.skip_message == "ended 1 stopped run(s)"
    status = {rid: instance.get_run_by_id(rid).status for rid in (killed, no_pid_yet, starting, live)}  # type: ignore[union-attr]
    assert status == {
        killed: dg.DagsterRunStatus.FAILURE,
        no_pid_yet: dg.DagsterRunStatus.STARTED,
        starting: dg.DagsterRunStatus.STARTING,
        live: dg.DagsterRunStatus.STARTED,
    }


def test_runs_without_a_live_process_are_ended_and_live_or_unlaunched_ones_kept() -> None:
    instance = dg.DagsterInstance.ephemeral()

    def run(status: dg.DagsterRunStatus, pid: int | None = None) -> str:
        return _run(instance, status, pid)

    live = run(dg.DagsterRunStatus.STARTED, os.getpid())
    killed = run(dg.DagsterRunStatus.STARTED, _dead_pid())
    never_started = run(dg.DagsterRunStatus.STARTING)
    canceling = run(dg.DagsterRunStatus.CANCELING, _dead_pid())
    not_launched = run(dg.DagsterRunStatus.NOT_STARTED)
    finished = run(dg.DagsterRunStatus.SUCCESS)
    assert set(run_pids(instance, live)) == {os.getpid()}

    ended = end_stopped_runs(instance)

    assert sorted(ended) == sorted([killed, never_started, canceling])
    status = {
        rid: instance.get_run_by_id(rid).status
        for rid in (live, killed, never_started, canceling, not_launched, finished)
    }  # type: ignore[union-attr]
    assert status == {
        live: dg.DagsterRunStatus.STARTED,
        killed: dg.DagsterRunStatus.FAILURE,
        never_started: dg.DagsterRunStatus.FAILURE,
        canceling: dg.DagsterRunStatus.CANCELED,
        not_launched: dg.DagsterRunStatus.NOT_STARTED,
        finished: dg.DagsterRunStatus.SUCCESS,
    }
    messages = [e.message for e in instance.all_logs(killed) if e.message]
    assert any(STOPPED_MESSAGE in m for m in messages)  # the UI says why
    assert end_stopped_runs(instance) == []  # once
