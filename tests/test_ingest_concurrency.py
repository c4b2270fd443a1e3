"""Ingest throughput features: audio stages run more threads than decode slots, registration shares
connections, and a one-shot run reuses Dagster's storage connections; none of it loses a failure."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from music_core import stages
from music_core.db.locks import release_exclusive_track_lock, try_exclusive_track_lock
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.naming import converted_key
from music_core.storage import ObjectStore
from music_pipeline.definitions import build_resources
from music_pipeline.instance import PROJECT_ROOT
from music_pipeline.oneshot import process_paths
from tests import media
from tests.conftest import service_settings


@pytest.fixture(scope="module")
def tracks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four files of different content (a per-file gain) in four formats."""
    folder = tmp_path_factory.mktemp("concurrency")
    for i, ext in enumerate(("mp3", "ogg", "flac", "wav")):
        media.encode(folder / f"take{i}.{ext}", extra=("-af", f"volume={0.6 + i / 10:.2f}"))
    return folder


def register_all(store: ObjectStore, db_url: str, folder: Path) -> list[str]:
    return [register_local_file(store, db_url, p, p.name).track_id for p in sorted(folder.iterdir())]


def statuses(db_url: str, stage: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT file_id, status, error FROM track_stages WHERE stage = %s", (stage,))
        return {r[0]: (r[1], r[2]) for r in rows.fetchall()}


class Intervals:
    """Thread-safe record of (label, track, start, end) spans."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[str, str, float, float]] = []
        self.active = 0
        self.max_active = 0

    def enter(self) -> float:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        return time.monotonic()

    def leave(self, label: str, key: str, start: float) -> None:
        with self.lock:
            self.active -= 1
            self.spans.append((label, key, start, time.monotonic()))


def test_decodes_stay_within_workers_while_other_tracks_upload(
    store: ObjectStore, db_url: str, tracks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = register_all(store, db_url, tracks_dir)
    decodes, uploads = Intervals(), Intervals()
    real_convert, real_put = stages.convert_to_mono_16k, ObjectStore.put_file

    def convert(source: str, workdir: Path, timeout: float = 3600) -> Any:
        start = decodes.enter()
        try:
            result = real_convert(source, workdir, timeout)
            time.sleep(0.3)  # a longer decode, so that waiting threads are certainly queued for the slot
            return result
        finally:
            decodes.leave("decode", source, start)

    def put_file(self: ObjectStore, key: str, path: Path, content_type: str, metadata: Any = None) -> None:
        start = uploads.enter()
        try:
            real_put(self, key, path, content_type, metadata)
        finally:
            uploads.leave("upload", key, start)

    monkeypatch.setattr(stages, "convert_to_mono_16k", convert)
    monkeypatch.setattr(ObjectStore, "put_file", put_file)
    with stages.stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=1) as ctx:
        threads = stages.io_threads(1)
        assert threads > 1
        pairs = stages.run_batch(ctx, stages.prepare_audio, ids, threads)

    assert [facts.status for facts, _ in pairs] == ["done"] * len(ids)
    assert [c.status for _, c in pairs] == ["done"] * len(ids), [c.error for _, c in pairs]
    assert decodes.max_active == 1  # one worker: never two FFmpeg decodes at once
    # ...but a finished track's upload runs while the next track decodes.
    overlapping = [
        (u, d)
        for u in uploads.spans
        for d in decodes.spans
        if u[1].endswith(".flac") and u[2] < d[3] and d[2] < u[3]
    ]
    assert overlapping, (uploads.spans, decodes.spans)
    for track_id in ids:
        assert store.stat(converted_key(track_id)) is not None


def test_a_track_failing_mid_batch_is_recorded_while_the_others_finish(
    store: ObjectStore, db_url: str, tracks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = register_all(store, db_url, tracks_dir)
    doomed = ids[1]
    real_put = ObjectStore.put_file

    def put_file(self: ObjectStore, key: str, path: Path, content_type: str, metadata: Any = None) -> None:
        if key == converted_key(doomed):
            raise ConnectionResetError("the object store went away")
        real_put(self, key, path, content_type, metadata)

    monkeypatch.setattr(ObjectStore, "put_file", put_file)
    with stages.stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=2) as ctx:
        pairs = stages.run_batch(ctx, stages.prepare_audio, ids, stages.io_threads(2))

    by_id = {c.track_id: c for _, c in pairs}
    assert by_id[doomed].status == "failed"
    assert "ConnectionResetError" in (by_id[doomed].error or "")
    recorded = statuses(db_url, "converted_audio")
    assert recorded[doomed][0] == "failed" and "went away" in (recorded[doomed][1] or "")
    for track_id in ids:
        if track_id != doomed:
            assert recorded[track_id] == ("done", None)
            assert store.stat(converted_key(track_id)) is not None
    assert store.stat(converted_key(doomed)) is None
    # Every track lock was released, the failed one included: a removal could go ahead now.
    with psycopg.connect(db_url, autocommit=True) as conn:
        for track_id in ids:
            assert try_exclusive_track_lock(conn, track_id)
            release_exclusive_track_lock(conn, track_id)

    # A rerun with the store back converts the failed track and leaves the others as they were.
    monkeypatch.setattr(ObjectStore, "put_file", real_put)
    with stages.stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=2) as ctx:
        again = stages.run_batch(ctx, stages.prepare_audio, [doomed], stages.io_threads(2))
    assert [o.status for o in again[0]] == ["done", "done"]
    assert store.stat(converted_key(doomed)) is not None


def advisory_locks(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
        return int(row[0]) if row else 0


def test_one_download_serves_probe_and_conversion_and_huge_originals_stream(
    store: ObjectStore, db_url: str, tracks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = register_all(store, db_url, tracks_dir)
    local, streamed = ids[0], ids[1]
    downloads: list[str] = []
    sources: list[str] = []
    real_download, real_probe = ObjectStore.download, stages.probe

    def download(self: ObjectStore, key: str, path: Path) -> bool:
        downloads.append(key)
        return real_download(self, key, path)

    def probe(source: str) -> Any:
        sources.append(source)
        return real_probe(source)

    monkeypatch.setattr(ObjectStore, "download", download)
    monkeypatch.setattr(stages, "probe", probe)
    with stages.stage_context(store, db_url, run_id=None, timeout_seconds=60, workers=1) as ctx:
        assert [o.status for o in stages.prepare_audio(ctx, local)] == ["done", "done"]
        assert len(downloads) == 1 and sources[-1].endswith("/original")
        # Above the local-copy limit FFmpeg and the probe read the bucket directly (no temp copy).
        monkeypatch.setattr(stages, "LOCAL_COPY_LIMIT", 0)
        assert [o.status for o in stages.prepare_audio(ctx, streamed)] == ["done", "done"]
        assert len(downloads) == 1 and sources[-1].startswith("http")
        # An original that vanished from the bucket is a recorded failure, and nothing is converted.
        store.delete(converted_key(local))
        with psycopg.connect(db_url) as conn:
            key = conn.execute("SELECT storage_path FROM music_files WHERE id = %s", (local,)).fetchone()[0]
        store.delete(key)
        monkeypatch.setattr(stages, "LOCAL_COPY_LIMIT", 2**40)
        facts, converted = stages.prepare_audio(ctx, local)
    assert (facts.status, facts.error) == ("failed", "the original is missing from the bucket")
    assert (converted.status, converted.error) == ("skipped", "audio_file is failed")
    assert statuses(db_url, "converted_audio")[local] == ("skipped", "audio_file is failed")
    assert store.stat(converted_key(local)) is None


def test_registration_shares_connections_and_reruns_add_nothing(
    store: ObjectStore, db_url: str, services: ServiceEndpoints, tracks_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    shutil.copytree(tracks_dir, folder)
    shutil.copy(folder / "take0.mp3", folder / "again.mp3")  # same content, second name
    (folder / "notes.mp3").write_text("not audio\n" * 50)
    resources = build_resources(service_settings(tmp_path / "data", bucket=store.bucket))
    instance = dg.DagsterInstance.ephemeral()

    def run() -> dict[str, dict[str, Any]]:
        rows = process_paths([str(folder), str(tmp_path / "missing.mp3")], store=store, database_url=db_url,
                             instance=instance, resources=resources, batch=50, workers=2,
                             until_stage="converted_audio")  # fmt: skip
        return {Path(r["file"]).name: r for r in rows}

    first = run()
    assert first["missing.mp3"]["error"] == "no such file or directory"
    # The same content under two names: registered concurrently, whichever name committed first is
    # the track's name and the other is its duplicate.
    pair = {first["again.mp3"]["duplicate_of"], first["take0.mp3"]["duplicate_of"]}
    assert pair in ({None, "take0.mp3"}, {None, "again.mp3"})
    assert first["again.mp3"]["track_id"] == first["take0.mp3"]["track_id"]
    assert first["notes.mp3"]["stages"]["audio_file"] == "failed"
    assert "not a readable" in (first["notes.mp3"]["error"] or "")
    for name in ("take0.mp3", "take1.ogg", "take2.flac", "take3.wav"):
        assert first[name]["stages"]["converted_audio"] == "done", first[name]
    assert advisory_locks(db_url) == 0  # pooled connections gave their track locks back

    with psycopg.connect(db_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM music_files), (SELECT count(*) FROM file_aliases)"
        )
        before = counts.fetchone()
    runs_before = len(instance.get_run_records())
    second = run()
    with psycopg.connect(db_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM music_files), (SELECT count(*) FROM file_aliases)"
        )
        assert counts.fetchone() == before == (5, 6)
    # Only the failed track is tried again; finished ones are not redone.
    assert len(instance.get_run_records()) == runs_before + 1
    assert {k: v["stages"] for k, v in second.items()} == {k: v["stages"] for k, v in first.items()}


@pytest.fixture
def pg_instance(services: ServiceEndpoints, tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on PostgreSQL, configured as `music-analyzer process` configures it."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()


def dagster_sessions(services: ServiceEndpoints) -> int:
    with psycopg.connect(services.dagster_database_url.replace("+psycopg2", "")) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


def test_a_one_shot_run_reuses_dagster_storage_connections(
    store: ObjectStore,
    db_url: str,
    services: ServiceEndpoints,
    tracks_dir: Path,
    tmp_path: Path,
    pg_instance: dg.DagsterInstance,
) -> None:
    resources = build_resources(service_settings(tmp_path / "data", bucket=store.bucket))
    runs_before = {r.dagster_run.run_id for r in pg_instance.get_run_records()}
    before = dagster_sessions(services)
    rows = process_paths([str(tracks_dir)], store=store, database_url=db_url, instance=pg_instance,
                         resources=resources, batch=50, workers=2, until_stage="converted_audio")  # fmt: skip
    opened = dagster_sessions(services) - before
    ids = {r["track_id"] for r in rows}
    assert all(r["stages"]["converted_audio"] == "done" for r in rows), rows
    new_runs = {r.dagster_run.run_id for r in pg_instance.get_run_records()} - runs_before
    assert len(new_runs) == 1
    # Every partition's materialization of both assets is in this run's event log...
    for asset in ("audio_file", "converted_audio"):
        records = pg_instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        assert {r.partition_key for r in records if r.run_id in new_runs} == ids
    # ...and storing them did not open a connection per event (2 assets x 4 tracks x several events).
    assert opened < 10, opened
