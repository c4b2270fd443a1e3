"""Runs a stop or a crash left looking in flight are ended when `up` starts again."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
from dagster._core.events import EngineEventData

from music_pipeline.recovery import STOPPED_MESSAGE, end_stopped_runs, run_pids


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


def test_runs_without_a_live_process_are_ended_and_live_or_unlaunched_ones_kept() -> None:
    instance = dg.DagsterInstance.ephemeral()

    def run(status: dg.DagsterRunStatus, pid: int | None = None) -> str:
        made = instance.create_run_for_job(job, status=status)
        if pid is not None:  # as the run worker records itself
            instance.report_engine_event(
                f"Started process for run (pid: {pid}).", made, EngineEventData.in_process(pid)
            )
        return made.run_id

    live = run(dg.DagsterRunStatus.STARTED, os.getpid())
    killed = run(dg.DagsterRunStatus.STARTED, _dead_pid())
    never_started = run(dg.DagsterRunStatus.STARTING)
    canceling = run(dg.DagsterRunStatus.CANCELING, _dead_pid())
    not_launched = run(dg.DagsterRunStatus.NOT_STARTED)
    finished = run(dg.DagsterRunStatus.SUCCESS)
    assert run_pids(instance, live) == {os.getpid()}

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
