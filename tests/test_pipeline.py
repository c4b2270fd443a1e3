"""The Dagster layer end to end: sensors -> registration job -> batched per-track runs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
import redis

from music_core.cache_generation import GENERATION_KEY
from music_core.embedded import ServiceEndpoints
from music_core.naming import converted_key, original_key
from music_core.stages import STAGES
from music_core.storage import ObjectStore
from music_core.uploads import LocalFile, upload_to_inbox
from music_pipeline import definitions
from music_pipeline.defs.ingest import jobs as register_jobs
from music_pipeline.defs.ingest import repair, sensors
from music_pipeline.defs.ingest.sensors import inbox_sensor, new_tracks_sensor
from music_pipeline.oneshot import assets_for_stages
from tests import media

PREFIX = "inbox/"


def stage_rows(db_url: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT a.original_name, s.stage, s.status, s.error FROM track_stages s "
            "JOIN file_aliases a ON a.file_id = s.file_id"
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def run_sensors_to_completion(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """What the daemon does: tick the inbox sensor, run registrations, tick the track sensor, run batches."""
    register = defs.resolve_job_def("register_uploads_job")
    process = defs.resolve_job_def("process_tracks_job")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        result = inbox_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    for request in result.run_requests or []:
        assert register.execute_in_process(run_config=request.run_config, instance=instance).success
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        tracks_result = new_tracks_sensor(ctx)
    assert isinstance(tracks_result, dg.SensorResult)
    for request in tracks_result.run_requests or []:
        assert process.execute_in_process(instance=instance, tags=request.tags).success
    return list(tracks_result.run_requests or [])


def _track_tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as ctx:
        result = new_tracks_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    return result


def _idle(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> str:
    """The track sensor's skip reason; fails when it requested runs."""
    result = _track_tick(defs, instance, cursor)
    assert not result.run_requests and result.skip_reason, result
    return result.skip_reason.skip_message or ""


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(definitions.defs)
    assert {s.name for s in definitions.defs.sensors or []} == {
        "inbox_sensor",
        "new_tracks_sensor",
        "vector_index_sensor",
        "stopped_runs_sensor",
    }


def test_stage_ranges_select_the_assets_that_make_them() -> None:
    def names(assets: list[dg.AssetsDefinition]) -> list[list[str]]:
        return [sorted(k.to_user_string() for k in a.keys) for a in assets]

    made = [k for a in definitions.PER_TRACK_ASSETS for k in sorted(x.to_user_string() for x in a.keys)]
    assert sorted(made) == sorted(STAGES) and len(made) == len(STAGES)  # every stage, made once
    audio = ["audio_file", "converted_audio"]
    assert names(assets_for_stages()) == [audio, ["transcription"], ["embedding"], ["lyrics"], ["comparison"]]
    # Converted audio is made together with the probe: asking for it alone runs both.
    assert names(assets_for_stages("converted_audio", "converted_audio")) == [audio]
    assert names(assets_for_stages(until_stage="audio_file")) == [audio]
    assert names(assets_for_stages("converted_audio", "transcription")) == [audio, ["transcription"]]
    assert names(assets_for_stages("lyrics")) == [["lyrics"], ["comparison"]]
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        assets_for_stages("nope")


def test_inbox_sensor_batches_and_remembers_what_it_requested(
    defs: dg.Definitions, store: ObjectStore
) -> None:
    for i in range(6):
        upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, f"copy {i}.mp3"))
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "song.lrc"))  # a sidecar, not a track
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        first = inbox_sensor(ctx)
    assert isinstance(first, dg.SensorResult) and first.cursor
    batches = [r.run_config["ops"]["register_uploads"]["config"]["keys"] for r in first.run_requests or []]
    assert [len(b) for b in batches] == [4, 2]
    assert not any(k.endswith(".lrc") for b in batches for k in b)
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=first.cursor) as ctx:
        pending = inbox_sensor(ctx)
    assert not pending.run_requests and pending.skip_reason  # still pending: not requested twice
    # A re-upload with different content under a requested name is new work.
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_WAV, "copy 0.mp3"))
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=first.cursor) as ctx:
        again = inbox_sensor(ctx)
    assert isinstance(again, dg.SensorResult)
    assert [r.run_config["ops"]["register_uploads"]["config"]["keys"] for r in again.run_requests or []] == [
        ["inbox/copy 0.mp3"]
    ]
    assert set(json.loads(again.cursor or "{}")) == {f"inbox/copy {i}.mp3" for i in range(6)}


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as ctx:
        return inbox_sensor(ctx)


def _launch(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> bool:
    """What the daemon does with a request: a run tagged with its run key."""
    return defs.resolve_job_def("register_uploads_job").execute_in_process(
        run_config=request.run_config, instance=instance, tags={"dagster/run_key": request.run_key},
        raise_on_error=False,
    ).success  # fmt: skip


def test_objects_still_in_the_inbox_after_their_run_ended_are_requested_again(
    defs: dg.Definitions, store: ObjectStore, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "song.mp3"))
    real_register = register_jobs.register_inbox_object

    def broken(*_args: Any) -> Any:
        raise OSError("the S3 server went away")

    monkeypatch.setattr(register_jobs, "register_inbox_object", broken)
    first = _tick(defs, instance, None)
    assert [len(r.run_config["ops"]["register_uploads"]["config"]["keys"]) for r in first.run_requests] == [1]
    assert not _launch(defs, instance, first.run_requests[0])  # failed: the object stays in the inbox
    monkeypatch.setattr(register_jobs, "register_inbox_object", real_register)

    assert not _tick(defs, instance, first.cursor).run_requests  # a retry waits RETRY_SECONDS first
    monkeypatch.setattr(sensors, "RETRY_SECONDS", 0)
    retry = _tick(defs, instance, first.cursor)
    assert len(retry.run_requests) == 1 and retry.run_requests[0].run_key != first.run_requests[0].run_key
    assert json.loads(retry.cursor or "{}")["inbox/song.mp3"]["attempt"] == 2  # the next wait doubles
    assert _launch(defs, instance, retry.run_requests[0])
    assert list(store.list(PREFIX)) == []

    # The same bytes under the same name again: the etag is the one already requested.
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "song.mp3"))
    again = _tick(defs, instance, retry.cursor)
    assert len(again.run_requests) == 1 and _launch(defs, instance, again.run_requests[0])
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT upload_count FROM file_aliases").fetchall() == [(2,)]
    done = _tick(defs, instance, again.cursor)
    assert not done.run_requests and json.loads(done.cursor or "{}") == {}  # forgotten once gone


def test_a_request_whose_run_never_appeared_is_made_again_after_an_hour(
    defs: dg.Definitions, store: ObjectStore
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, "song.mp3"))
    first = _tick(defs, instance, None)
    assert not _tick(defs, instance, first.cursor).run_requests  # not launched yet: waiting
    saved = json.loads(first.cursor or "{}")
    saved["inbox/song.mp3"]["at"] -= sensors.LOST_REQUEST_SECONDS + 1
    assert len(_tick(defs, instance, json.dumps(saved)).run_requests) == 1
    old_style = json.dumps({"inbox/song.mp3": saved["inbox/song.mp3"]["etag"]})  # an earlier release's cursor
    assert len(_tick(defs, instance, old_style).run_requests) == 1


def test_good_and_bad_files_flow_through_in_batched_runs(
    defs: dg.Definitions, store: ObjectStore, db_url: str, media_dir: Path
) -> None:
    good = {
        f"Speech/jfk.{ext}": media.encode(media_dir / f"pipe.{ext}") for ext in ("mp3", "ogg", "m4a", "mkv")
    }
    bad = media.bad_inputs(media_dir / "pipeline-bad")
    uploads = {**good, **{f"bad/{p.name}": p for p in bad.values()}}
    for name, path in uploads.items():
        upload_to_inbox(store, PREFIX, LocalFile(path, name))
    instance = dg.DagsterInstance.ephemeral()

    requests = run_sensors_to_completion(defs, instance)

    assert len(requests) == 1  # every new track in one run, not one run per file
    rows = stage_rows(db_url)
    for name in good:
        assert rows[(name, "audio_file")] == ("done", None)
        assert rows[(name, "converted_audio")][0] == "done"
    expected_failures = {
        "bad/empty.mp3": "empty file",
        "bad/notes.mp3": "not a readable",
        "bad/cover.flac": "no audio stream",
        "bad/silent-film.mp4": "no audio stream",
    }
    for name, reason in expected_failures.items():
        status, error = rows[(name, "audio_file")]
        assert status == "failed" and reason in (error or ""), (name, error)
        assert rows[(name, "converted_audio")] == ("skipped", "audio_file is failed")
    assert rows[("bad/truncated.mp3", "converted_audio")][0] == "done"

    with psycopg.connect(db_url) as conn:
        tracks = conn.execute("SELECT id, genre, converted_duration, duration FROM music_files").fetchall()
    for track_id, *_ in tracks:
        assert store.stat(original_key(track_id)) is not None  # no original is ever deleted
    converted = [t for t in tracks if t[2] is not None]
    assert len(converted) == len(good) + 1
    for track_id, genre, conv, dur in converted:
        assert store.stat(converted_key(track_id)) is not None
        if genre == "Speech":  # folder name as the genre when there is no tag
            assert conv == pytest.approx(dur, abs=0.1)
    assert list(store.list(PREFIX)) == []

    # The UI shows per-track outcomes as run metadata, and the duration check result.
    record = instance.get_latest_materialization_event(dg.AssetKey("converted_audio"))
    assert record is not None
    assert record.asset_materialization.metadata["done"].value == len(good) + 1
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("converted_audio"), "duration_matches_original")]
    )
    assert check


def test_one_registration_run_registers_its_objects_concurrently_without_duplicates(
    defs: dg.Definitions,
    store: ObjectStore,
    db_url: str,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    services: ServiceEndpoints,
) -> None:
    active, most = [0], [0]
    lock = threading.Lock()
    real_register = register_jobs.register_inbox_object

    def register(*args: Any) -> Any:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.2)  # long enough that a concurrent registration certainly overlaps
            return real_register(*args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(register_jobs, "register_inbox_object", register)
    copies = [f"inbox/Album {i}/copy {i}.mp3" for i in range(6)]
    for key in copies:
        upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_MP3, key.removeprefix(PREFIX)))
    other = media.encode(media_dir / "other.ogg")
    upload_to_inbox(store, PREFIX, LocalFile(other, "other.ogg"))
    keys = [*copies, "inbox/other.ogg", "inbox/vanished.mp3"]  # the last one left the inbox already
    instance = dg.DagsterInstance.ephemeral()
    cache = redis.Redis.from_url(services.redis_url)
    generation = int(cache.get(GENERATION_KEY) or 0)
    result = defs.resolve_job_def("register_uploads_job").execute_in_process(
        run_config={"ops": {"register_uploads": {"config": {"keys": keys}}}}, instance=instance
    )

    assert result.success
    assert most[0] > 1
    assert int(cache.get(GENERATION_KEY) or 0) > generation  # cached API lists show the new tracks
    registered = result.output_for_node("register_uploads")
    assert len(registered) == 7 and len(set(registered)) == 2  # in input order, one id per object
    with psycopg.connect(db_url) as conn:
        tracks = conn.execute(
            "SELECT f.id, count(a.*) FROM music_files f JOIN file_aliases a ON a.file_id = f.id GROUP BY f.id"
        ).fetchall()
    assert sorted(n for _, n in tracks) == [1, 6]
    assert set(instance.get_dynamic_partitions("tracks")) == set(registered)
    assert list(store.list(PREFIX)) == []
    for track_id in set(registered):
        assert store.stat(original_key(track_id)) is not None


def test_rerun_is_idempotent(defs: dg.Definitions, store: ObjectStore, db_url: str) -> None:
    upload_to_inbox(store, PREFIX, LocalFile(media.SPEECH_WAV, "one.wav"))
    instance = dg.DagsterInstance.ephemeral()
    run_sensors_to_completion(defs, instance)
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*), max(converted_size) FROM music_files").fetchone()
    track_id = instance.get_dynamic_partitions("tracks")[0]
    process = defs.resolve_job_def("process_tracks_job")
    assert process.execute_in_process(
        instance=instance, partition_key=track_id
    ).success  # reprocess from "UI"
    with psycopg.connect(db_url) as conn:
        after = conn.execute("SELECT count(*), max(converted_size) FROM music_files").fetchone()
        attempts = conn.execute(
            "SELECT attempts FROM track_stages WHERE stage = 'converted_audio'"
        ).fetchone()
    assert before == after
    assert attempts[0] == 2
    assert len([o for o in store.list("converted/")]) == 1


def test_track_sensor_repairs_missing_partitions(
    defs: dg.Definitions, store: ObjectStore, db_url: str
) -> None:
    from music_core.ingest import register_local_file

    reg = register_local_file(store, db_url, media.SPEECH_WAV, "orphan.wav")  # row, but no partition yet
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        result = new_tracks_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    assert result.dynamic_partitions_requests and list(
        result.dynamic_partitions_requests[0].partition_keys
    ) == [reg.track_id]
    assert (
        result.run_requests
        and result.run_requests[0].tags["dagster/asset_partition_range_start"] == reg.track_id
    )
    assert result.cursor
    assert _idle(defs, instance, result.cursor)


def test_tracks_whose_run_was_lost_are_requested_again_once_nothing_is_in_flight(
    defs: dg.Definitions, store: ObjectStore, db_url: str
) -> None:
    """A process run stopped before it started its tracks (Ctrl-C while queued, a crash) leaves them
    behind the cursor with no stage status: once no process run is queued or running and they have
    waited long enough, they are requested again."""
    from music_core.ingest import register_local_file

    track = register_local_file(store, db_url, media.SPEECH_WAV, "lost.wav").track_id
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        first = new_tracks_sensor(ctx)
    assert isinstance(first, dg.SensorResult) and first.cursor
    assert _idle(defs, instance, first.cursor)  # just requested: not yet lost
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE music_files SET uploaded_at = now() - make_interval(secs => %s) WHERE id = %s",
            (repair.LOST_RUN_SECONDS + 60, track),
        )
    queued = instance.create_run_for_job(defs.resolve_job_def("process_tracks_job"))  # not started yet
    assert _idle(defs, instance, first.cursor)  # a run in the queue may still take it
    instance.delete_run(queued.run_id)
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=first.cursor) as ctx:
        again = new_tracks_sensor(ctx)
    assert isinstance(again, dg.SensorResult) and len(again.run_requests or []) == 1
    assert again.run_requests[0].tags["dagster/asset_partition_range_start"] == track
    assert again.run_requests[0].run_key != first.run_requests[0].run_key  # never deduplicated away
    assert json.loads(again.cursor or "")["after"] == json.loads(first.cursor)["after"]


def _age(db_url: str, seconds: float) -> None:
    """As if every track and stage outcome were last touched ``seconds`` ago."""
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE music_files SET uploaded_at = now() - make_interval(secs => %s)", (seconds,))
        conn.execute("UPDATE track_stages SET updated_at = now() - make_interval(secs => %s)", (seconds,))


def test_a_stopped_run_is_resumed_from_each_tracks_first_unfinished_stage(
    defs: dg.Definitions, store: ObjectStore, db_url: str
) -> None:
    """Ctrl-C or a crash stops a run halfway: one track's conversion was running, the other's audio
    was done and nothing after it had started. Once nothing is in flight and they sat untouched, each
    is requested again from its first unfinished stage; finished stages are not redone."""
    from music_core.db import tracks
    from music_core.ingest import register_local_file

    a = register_local_file(store, db_url, media.SPEECH_WAV, "a.wav").track_id
    b = register_local_file(store, db_url, media.SPEECH_MP3, "b.mp3").track_id
    instance = dg.DagsterInstance.ephemeral()
    process = defs.resolve_job_def("process_tracks_job")
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        first = new_tracks_sensor(ctx)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests or []) == 1
    for added in first.dynamic_partitions_requests or []:  # what the daemon does with the result
        instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys or []))
    audio = [dg.AssetKey(stage) for stage in STAGES[:2]]
    assert process.execute_in_process(
        instance=instance, tags=first.run_requests[0].tags, asset_selection=audio
    ).success
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE track_stages SET status = 'running' WHERE file_id = %s AND stage = 'converted_audio'",
            (a,),
        )
    assert _idle(defs, instance, first.cursor)  # touched just now: may still be in hand
    _age(db_url, repair.LOST_RUN_SECONDS + 60)
    busy = instance.create_run_for_job(process, status=dg.DagsterRunStatus.STARTED)
    assert _idle(defs, instance, first.cursor)  # a run in flight may still have them
    instance.delete_run(busy.run_id)

    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=first.cursor) as ctx:
        resumed = new_tracks_sensor(ctx)
    assert isinstance(resumed, dg.SensorResult) and resumed.cursor
    assert json.loads(resumed.cursor)["after"] == json.loads(first.cursor or "")["after"]
    by_start = {r.tags["dagster/asset_partition_range_start"]: r for r in resumed.run_requests or []}
    assert set(by_start) == {a, b}
    # The conversion is made in one step with the probe: a's run takes that step and all after it.
    assert by_start[a].tags["music/from_stage"] == "converted_audio"
    assert set(by_start[a].asset_selection or []) == {dg.AssetKey(s) for s in STAGES}
    assert set(by_start[b].asset_selection or []) == {dg.AssetKey(s) for s in STAGES[2:]}
    assert len({r.tags[repair.ROUND_TAG] for r in by_start.values()}) == 1  # one round
    for request in by_start.values():
        assert request.tags[repair.REPAIR_TAG] == "true"
        assert process.execute_in_process(
            instance=instance, tags=request.tags, asset_selection=request.asset_selection
        ).success

    with psycopg.connect(db_url) as conn:
        assert tracks.unfinished_tracks(conn, STAGES, 0, 10) == []  # every stage has an outcome
        attempts = dict(
            conn.execute(
                "SELECT file_id, attempts FROM track_stages WHERE stage = 'audio_file' AND file_id = ANY(%s)",
                ([a, b],),
            ).fetchall()
        )
    assert attempts == {a: 2, b: 1}  # b's audio was not redone
    _age(db_url, repair.LOST_RUN_SECONDS + 60)
    assert "looked for in" in _idle(defs, instance, first.cursor)  # the next round waits
    for run in instance.get_runs(filters=dg.RunsFilter(tags={repair.REPAIR_TAG: "true"})):
        instance.delete_run(run.run_id)
    idle = _track_tick(defs, instance, first.cursor)
    assert not idle.run_requests and idle.skip_reason
    assert idle.skip_reason.skip_message == "no new tracks, and none unfinished"
    # The scan is remembered: the next one waits SCAN_SECONDS, however often the sensor ticks.
    assert "looked for in" in _idle(defs, instance, idle.cursor)


@dg.op
def _nothing() -> None:
    pass


@dg.job(name=repair.PROCESS_JOB)
def process_job_stand_in() -> None:
    """Run records of the process job's name, without its resources' configuration."""
    _nothing()


def test_repairs_back_off_while_they_keep_failing() -> None:
    instance = dg.DagsterInstance.ephemeral()
    job = process_job_stand_in
    assert repair.repair_wait_seconds(instance, time.time()) == 0  # no repair yet

    rounds = iter(range(100))

    def repair_run(*statuses: dg.DagsterRunStatus) -> float:
        """One round of repair runs (one sensor evaluation)."""
        tags = {repair.REPAIR_TAG: "true", repair.ROUND_TAG: str(next(rounds))}
        for status in statuses:
            run = instance.create_run_for_job(job, status=status, tags=tags)
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None
        return record.create_timestamp.timestamp()

    made = repair_run(dg.DagsterRunStatus.SUCCESS)
    assert repair.repair_wait_seconds(instance, made) == pytest.approx(repair.LOST_RUN_SECONDS)
    assert repair.repair_wait_seconds(instance, made + repair.LOST_RUN_SECONDS + 1) == 0
    for failures in (1, 2):  # a round fails when one of its runs does; it counts once
        made = repair_run(
            dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.FAILURE
        )
        assert repair.repair_wait_seconds(instance, made) == pytest.approx(
            repair.LOST_RUN_SECONDS * 2**failures
        )
    for _ in range(5):
        made = repair_run(dg.DagsterRunStatus.CANCELED)
    assert repair.repair_wait_seconds(instance, made) == pytest.approx(repair.MAX_REPAIR_WAIT_SECONDS)
    made = repair_run(dg.DagsterRunStatus.STARTED)  # not failed (yet): the doubling starts again
    assert repair.repair_wait_seconds(instance, made) == pytest.approx(repair.LOST_RUN_SECONDS)


def test_vector_index_follows_the_vectors(defs: dg.Definitions, store: ObjectStore, db_url: str) -> None:
    from music_core import vector_index as faiss_index
    from music_core.embed.embedder import describe_model
    from music_pipeline.defs.index.sensors import vector_index_sensor

    for name, path in (("jfk.wav", media.SPEECH_WAV), ("librivox.wav", media.DEMO / "librivox_0870.wav")):
        upload_to_inbox(store, PREFIX, LocalFile(path, name))
    instance = dg.DagsterInstance.ephemeral()
    run_sensors_to_completion(defs, instance)
    index_job = defs.resolve_job_def("vector_index_job")

    def tick(cursor: str | None) -> tuple[dg.RunRequest | dg.SkipReason, str | None]:
        with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as ctx:
            result = vector_index_sensor(ctx)
            return result, ctx.cursor

    request, cursor = tick(None)
    assert isinstance(request, dg.RunRequest)
    failed = instance.create_run_for_job(index_job)
    assert isinstance(tick(cursor)[0], dg.SkipReason)  # its run is on its way: not requested twice
    instance.report_run_failed(failed)  # the requested run failed (or was stopped)
    retry, cursor = tick(cursor)
    assert isinstance(retry, dg.RunRequest) and retry.run_key != request.run_key
    assert index_job.execute_in_process(instance=instance).success
    model_id = describe_model(None)
    manifest = faiss_index.load_manifest(store, model_id)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert manifest is not None and manifest.count == rows >= 2
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("vector_index"), "index_count_matches_database")]
    )
    assert check

    assert isinstance(tick(cursor)[0], dg.SkipReason)  # nothing changed
    with psycopg.connect(db_url) as conn:  # a track goes away (retention, later)
        conn.execute("DELETE FROM music_files WHERE original_filename = 'jfk.wav'")
    request, cursor = tick(cursor)
    assert isinstance(request, dg.RunRequest)
    assert index_job.execute_in_process(instance=instance).success
    updated = faiss_index.load_manifest(store, model_id)
    with psycopg.connect(db_url) as conn:
        remaining = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert updated is not None and updated.version == 2 and updated.count == remaining < rows
