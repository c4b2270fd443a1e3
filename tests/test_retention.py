"""Retention as an operator uses it: preview, execute, rerun; nothing outside the rule is touched."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis

from music_core import vector_index
from music_core.cache_generation import GENERATION_KEY
from music_core.db.connection import connect
from music_core.db.locks import (
    release_exclusive_track_lock,
    shared_track_lock,
    try_exclusive_track_lock,
)
from music_core.embedded import ServiceEndpoints
from music_core.ingest import register_local_file
from music_core.naming import original_key, sidecar_key
from music_core.retention.options import RemovalOptions
from music_core.retention.removal import _delete_objects, _record_intent, execute_removals
from music_core.retention.rules import RetentionRule, plan_retention
from music_core.retention.run import run_retention
from music_core.stages import prepare_audio, stage_context
from music_core.storage import ObjectStore
from tests import media
from tests.retention_library import MODEL, Library, build_library, object_digests, rows_of


@pytest.fixture
def library(store: ObjectStore, db_url: str, tmp_path: Path) -> Library:
    return build_library(store, db_url, tmp_path / "lib")


def index_track_ids(store: ObjectStore, db_url: str) -> set[str]:
    manifest = vector_index.load_manifest(store, MODEL)
    assert manifest is not None
    ids = vector_index.index_ids(vector_index.load_index(store, manifest))
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, file_id FROM embeddings WHERE id = ANY(%s)", (ids.tolist(),)
        ).fetchall()
    assert len(rows) == len(ids), "the index holds vectors whose rows are gone"
    return {r[1] for r in rows}


def test_options_refuse_combinations_that_would_orphan_objects() -> None:
    with pytest.raises(ValueError, match="orphans"):
        RemovalOptions(delete_original=False)
    with pytest.raises(ValueError, match="unknown"):
        RemovalOptions.from_dict({"delete_everything": True})
    with pytest.raises(ValueError, match="nothing"):
        RemovalOptions(False, False, False, False, False, False)
    kept = RemovalOptions.keep_originals()
    assert not kept.delete_original and not kept.removes_track and kept.delete_converted
    for days in (-1, float("nan"), float("inf"), 1e10):
        with pytest.raises(ValueError, match="older_than_days must be between 0 and 100000"):
            RetentionRule(older_than_days=days)
    assert RetentionRule(older_than_days=100_000).older_than_days == 100_000


def test_preview_reports_the_old_tracks_and_changes_nothing(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    before_objects, before_rows = object_digests(store), rows_of(db_url, library.all)
    outcome = run_retention(db_url, store, RetentionRule(30), execute=False, performed_by="test")

    assert outcome.dry_run and outcome.file_count == len(library.old)
    assert {t["track_id"] for t in outcome.details["tracks"]} == set(library.old)
    with connect(db_url) as conn:
        expected_bytes = conn.execute(
            "SELECT sum(file_size + converted_size) FROM music_files WHERE id = ANY(%s)", (library.old,)
        ).fetchone()[0]
        log = conn.execute(
            "SELECT action, dry_run, file_count, space_freed, performed_by FROM cleanup_log"
        ).fetchall()
    assert outcome.bytes == expected_bytes > 0
    assert log == [("retention", True, len(library.old), expected_bytes, "test")]
    assert object_digests(store) == before_objects and rows_of(db_url, library.all) == before_rows


def test_execute_removes_old_tracks_everywhere_and_leaves_the_rest_byte_for_byte(
    library: Library, store: ObjectStore, db_url: str, services: ServiceEndpoints
) -> None:
    young_objects = {k: v for k, v in object_digests(store).items() if any(t in k for t in library.young)}
    young_rows = rows_of(db_url, library.young)
    cache = redis.Redis.from_url(services.redis_url)
    generation = int(cache.get(GENERATION_KEY) or 0)
    forgotten: list[str] = []

    outcome = run_retention(
        db_url, store, RetentionRule(30), execute=True, performed_by="test",
        cache_url=services.redis_url, forget=forgotten.extend,
    )  # fmt: skip

    assert not outcome.dry_run and outcome.file_count == len(library.old)
    assert sorted(forgotten) == sorted(library.old)  # Dagster partitions
    remaining = object_digests(store)
    assert not [k for k in remaining if any(t in k for t in library.old)]  # originals, converted, sidecars
    assert {k: v for k, v in remaining.items() if any(t in k for t in library.young)} == young_objects
    assert rows_of(db_url, library.young) == young_rows
    assert all(not rows for rows in rows_of(db_url, library.old).values())
    assert index_track_ids(store, db_url) == set(library.young)  # FAISS follows pgvector
    assert int(cache.get(GENERATION_KEY)) > generation  # API cache invalidated

    again = run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
    assert again.file_count == 0 and object_digests(store) == remaining  # idempotent


def test_keep_originals_drops_derived_data_only(library: Library, store: ObjectStore, db_url: str) -> None:
    rule = RetentionRule(30, RemovalOptions.keep_originals(), genre="Old")
    assert len(library.old) >= 2
    with connect(db_url) as conn:  # a run that stopped before it reached this track's vectors
        conn.execute("DELETE FROM track_stages WHERE file_id = %s AND stage = 'embedding'", (library.old[1],))
    outcome = run_retention(db_url, store, rule, execute=True, performed_by="test")
    assert outcome.file_count == len(library.old)
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, converted_path, original_removed_at FROM music_files WHERE id = ANY(%s)",
            (library.old,),
        ).fetchall()
        stages = dict(
            conn.execute(
                "SELECT stage, error FROM track_stages WHERE file_id = %s AND status = 'skipped'",
                (library.old[0],),
            ).fetchall()
        )
        leftovers = conn.execute(
            "SELECT (SELECT count(*) FROM embeddings WHERE file_id = ANY(%(ids)s)),"
            " (SELECT count(*) FROM transcriptions WHERE file_id = ANY(%(ids)s))",
            {"ids": library.old},
        ).fetchone()
    assert len(rows) == len(library.old) and all(r[1] is None and r[2] is None for r in rows)
    assert leftovers == (0, 0)
    assert "removed by retention" in stages["converted_audio"] and "embedding" in stages
    with connect(db_url) as conn:  # recorded as removed, so the track sensor does not make them again
        unreached = conn.execute(
            "SELECT status, error FROM track_stages WHERE file_id = %s AND stage = 'embedding'",
            (library.old[1],),
        ).fetchone()
    assert unreached is not None and unreached[0] == "skipped" and "removed by retention" in unreached[1]
    for track_id in library.old:
        assert store.stat(original_key(track_id)) is not None
    assert store.stat(sidecar_key(library.old[0], ".lrc")) is not None  # user-provided lyrics stay
    assert not [k for k in object_digests(store, ("converted/",)) if any(t in k for t in library.old)]
    assert index_track_ids(store, db_url) == set(library.young)
    assert run_retention(db_url, store, rule, execute=False, performed_by="test").file_count == 0


def test_a_removal_interrupted_after_deleting_objects_is_finished_by_the_next_run(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    rule = RetentionRule(30)
    with connect(db_url) as conn:
        plan = plan_retention(conn, rule)[0]
        _record_intent(conn, plan, rule.options, "crashed run")
    _delete_objects(store, plan.object_keys[:1])  # the process died here

    outcome = run_retention(db_url, store, rule, execute=True, performed_by="test")

    assert plan.track_id in outcome.details["resumed_interrupted"]
    assert outcome.file_count == len(library.old) - 1
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM removal_intents").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM music_files WHERE id = ANY(%s)", (library.old,)).fetchone()[0]
            == 0
        )
    assert not [k for k in object_digests(store) if any(t in k for t in library.old)]


def test_a_track_being_processed_is_deferred_not_removed(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    busy = library.old[0]
    before = object_digests(store)
    with psycopg.connect(db_url) as holder, shared_track_lock(holder, busy):  # a stage is working on it
        outcome = run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
        assert outcome.details["deferred_busy"] == [busy]
        assert {k: v for k, v in object_digests(store).items() if busy in k} == {
            k: v for k, v in before.items() if busy in k
        }
    later = run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
    assert later.file_count == 1
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM music_files WHERE id = %s", (busy,)).fetchone()[0] == 0


def test_a_stage_on_a_removed_track_is_skipped_cleanly(
    library: Library, store: ObjectStore, db_url: str
) -> None:
    run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
    with stage_context(store, db_url, run_id="late", timeout_seconds=60, workers=1) as ctx:
        outcomes = prepare_audio(ctx, library.old[0])
    assert [(o.status, o.error) for o in outcomes] == [("skipped", "track was removed")] * 2


def test_registration_during_a_removal_waits_and_stores_the_content_again(
    store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    path = media.clip(tmp_path / "again.flac", 2.5)
    track_id = register_local_file(store, db_url, path, "first.flac").track_id
    done = threading.Event()

    def upload_again() -> None:
        register_local_file(store, db_url, path, "second.flac")
        done.set()

    with psycopg.connect(db_url, autocommit=True) as remover:
        assert try_exclusive_track_lock(remover, track_id)
        worker = threading.Thread(target=upload_again)
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()  # registration waits for the removal to finish
        store.delete(original_key(track_id))
        remover.execute("DELETE FROM music_files WHERE id = %s", (track_id,))
        release_exclusive_track_lock(remover, track_id)
        worker.join(30)
    assert done.is_set()
    assert store.stat(original_key(track_id)) is not None
    with connect(db_url) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT original_name FROM file_aliases WHERE file_id = %s", (track_id,))
        ]
    assert names == ["second.flac"]


def test_age_counts_from_the_latest_upload(
    library: Library, store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    with connect(db_url) as conn:
        path = tmp_path / "reupload.flac"
        path.write_bytes(b"".join(store.iter_chunks(original_key(library.old[0]))))
    register_local_file(store, db_url, path, "Old/uploaded again.flac")
    with connect(db_url) as conn:
        planned = {p.track_id for p in plan_retention(conn, RetentionRule(30))}
    assert planned == set(library.old[1:])


@pytest.mark.parametrize("keep_originals", [False, True])
def test_uploading_again_after_a_crashed_removal_keeps_the_new_upload(
    library: Library, store: ObjectStore, db_url: str, tmp_path: Path, keep_originals: bool
) -> None:
    """A removal died after deleting objects; the same content is uploaded before the next cleanup
    run. That run must not finish the old removal on top of the new upload."""
    rule = RetentionRule(30, RemovalOptions.keep_originals() if keep_originals else RemovalOptions())
    track = library.old[0]
    path = tmp_path / "reupload.flac"
    path.write_bytes(b"".join(store.iter_chunks(original_key(track))))
    with connect(db_url) as conn:
        plan = next(p for p in plan_retention(conn, rule) if p.track_id == track)
        _record_intent(conn, plan, rule.options, "crashed run")
    _delete_objects(store, plan.object_keys)  # the process died here

    again = register_local_file(store, db_url, path, "Old/uploaded again.flac")

    assert again.track_id == track
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM removal_intents").fetchone()[0] == 0
        (names,) = conn.execute(
            "SELECT array_agg(original_name ORDER BY id) FROM file_aliases WHERE file_id = %s", (track,)
        ).fetchone()
        converted = conn.execute("SELECT converted_path FROM music_files WHERE id = %s", (track,)).fetchone()[
            0
        ]
    # The old removal was finished first: either the track was removed and is now new, or (keeping
    # originals) its derived data is gone and the rows say so; the new name is recorded either way.
    assert names[-1] == "Old/uploaded again.flac" and (len(names) > 1) is keep_originals
    assert converted is None
    outcome = run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
    assert outcome.details["resumed_interrupted"] == []
    assert track not in [planned["track_id"] for planned in outcome.details["tracks"]]
    assert b"".join(store.iter_chunks(original_key(track))) == path.read_bytes()


def test_content_uploaded_again_after_planning_is_not_removed(
    library: Library, store: ObjectStore, db_url: str, tmp_path: Path
) -> None:
    """A long run plans first and removes track by track: an upload in between makes a track young."""
    rule = RetentionRule(30)
    with connect(db_url) as conn:
        plans = plan_retention(conn, rule)
    assert {p.track_id for p in plans} == set(library.old)
    again = library.old[0]
    path = tmp_path / "reupload.flac"
    path.write_bytes(b"".join(store.iter_chunks(original_key(again))))
    before = {k: v for k, v in object_digests(store).items() if again in k}
    register_local_file(store, db_url, path, "Old/uploaded again.flac")  # the run is between tracks

    result = execute_removals(db_url, store, plans, rule.options, performed_by="test")

    assert result.renewed == [again] and sorted(result.removed) == sorted(library.old[1:])
    assert {k: v for k, v in object_digests(store).items() if again in k} == before
    kept = rows_of(db_url, [again])
    assert len(kept["music_files"]) == 1 and len(kept["transcriptions"]) == 1 and kept["embeddings"]
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM removal_intents").fetchone()[0] == 0


def test_index_vectors_match_rows_after_removal(library: Library, store: ObjectStore, db_url: str) -> None:
    run_retention(db_url, store, RetentionRule(30, genre="Old", limit=1), execute=True, performed_by="test")
    with connect(db_url) as conn:
        count = conn.execute("SELECT count(*) FROM embeddings WHERE model_id = %s", (MODEL,)).fetchone()[0]
    manifest = vector_index.load_manifest(store, MODEL)
    assert manifest is not None and manifest.count == count == 2 * (len(library.all) - 1)
    assert np.unique(vector_index.index_ids(vector_index.load_index(store, manifest))).size == count


def test_api_cleanup_preview_is_read_only_and_for_admins(
    library: Library, services: ServiceEndpoints, store: ObjectStore, db_url: str
) -> None:
    from fastapi.testclient import TestClient

    from music_api.main import create_app
    from music_core.passwords import hash_password
    from tests.test_api import AUTH, api_settings, flush_cache

    flush_cache(services)
    settings = api_settings(services, store.bucket, api_users=[f"reader:reader:{hash_password('readonly1')}"])
    before = object_digests(store)
    with TestClient(create_app(settings, warm_up=False)) as client:
        assert client.get("/storage/cleanup/preview", params={"older_than_days": 30},
                          auth=("reader", "readonly1")).status_code == 403  # fmt: skip
        preview = client.get("/storage/cleanup/preview", params={"older_than_days": 30}, headers=AUTH).json()
        kept = client.get(
            "/storage/cleanup/preview", params={"older_than_days": 30, "keep_originals": True}, headers=AUTH
        ).json()
        for bad in (
            {"older_than_days": -1},
            {"older_than_days": "x"},
            {},
            {"older_than_days": 1, "limit": 0},
        ):
            assert client.get("/storage/cleanup/preview", params=bad, headers=AUTH).status_code == 422
        assert object_digests(store) == before  # previews change nothing
        run_retention(db_url, store, RetentionRule(30), execute=True, performed_by="test")
        gone = client.get(f"/tracks/{library.old[0]}/audio", headers=AUTH)
    assert preview["tracks"] == len(library.old)
    assert {c["track_id"] for c in preview["candidates"]} == set(library.old)
    assert kept["bytes"] < preview["bytes"] and kept["options"]["delete_original"] is False
    assert gone.status_code == 404
